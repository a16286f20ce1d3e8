"""What one ticket's record says for reports, beyond its current row.

The ticket row holds the *latest* state: a reopen clears ``resolved_at`` and restarts
the SLA clocks, and the flapping flag clears once the bounces stop. The timeline keeps
the history, so a report reads both: when the ticket was first resolved, how often it
was reopened, whether a person ever touched it, whether it ever flapped.

Decisions:

* A person touched a ticket when any timeline entry has an author other than
  ``patrol`` (an operator's acknowledgement, comment, resolve or close, or an
  assignment synced back from a helpdesk), or it has ``acknowledged_at``.
* The respond clock stops at the first acknowledgement, or at the first resolution
  when the problem ended before anyone answered (no response is owed after that),
  or at a reopen (the ticket is then in progress, as the SLA watchdog counts it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from collector.model import Ticket, TimelineEntry

PATROL = "patrol"
RESPONSE_KINDS = frozenset({"acknowledged", "resolved", "closed", "reopened"})
RESOLUTION_KINDS = frozenset({"resolved", "closed"})


@dataclass(frozen=True)
class TicketFacts:
    ticket: Ticket
    reopened_at: tuple[float, ...]
    first_resolved_at: float | None
    responded_at: float | None
    human: bool
    flapped: bool

    @property
    def reopens(self) -> int:
        return len(self.reopened_at)

    @property
    def ever_resolved(self) -> bool:
        return self.first_resolved_at is not None

    @property
    def team(self) -> str:
        return self.ticket.labels.get("team") or "(no team)"


def _earliest(times: Iterable[float | None]) -> float | None:
    present = [t for t in times if t is not None]
    return min(present) if present else None


def facts_of(ticket: Ticket, timeline: list[TimelineEntry]) -> TicketFacts:
    """Combine the row and its timeline (entries in any order)."""
    first_resolved = _earliest([ticket.resolved_at, ticket.closed_at,
                                *(e.at for e in timeline if e.kind in RESOLUTION_KINDS)])
    responded = _earliest([ticket.acknowledged_at,
                           *(e.at for e in timeline if e.kind in RESPONSE_KINDS)])
    return TicketFacts(
        ticket=ticket,
        reopened_at=tuple(sorted(e.at for e in timeline if e.kind == "reopened")),
        first_resolved_at=first_resolved,
        responded_at=responded,
        human=ticket.acknowledged_at is not None or any(e.author != PATROL for e in timeline),
        flapped=ticket.flapping or any(e.kind == "flapping" for e in timeline),
    )
