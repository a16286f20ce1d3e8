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

from patrol.collector.model import Ticket, TimelineEntry

PATROL = "patrol"
RESPONSE_KINDS = frozenset({"acknowledged", "resolved", "closed", "reopened"})
RESOLUTION_KINDS = frozenset({"resolved", "closed"})


@dataclass(frozen=True)
class TicketFacts:
    ticket: Ticket
    reopened_at: tuple[float, ...]
    resolved_at: tuple[float, ...]  # every resolution and close, oldest first
    first_resolved_at: float | None
    responded_at: float | None
    human: bool
    flapped: bool

    @property
    def reopens(self) -> int:
        return len(self.reopened_at)

    def open_at(self, moment: float) -> bool:
        """Whether the ticket was open at ``moment``: opened before it, and not resolved
        since its opening or its latest reopen before ``moment``."""
        if self.ticket.opened_at >= moment:
            return False
        resolved = max((t for t in self.resolved_at if t < moment), default=None)
        reopened = max((t for t in self.reopened_at if t < moment), default=None)
        return resolved is None or (reopened is not None and reopened >= resolved)

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
    resolutions = sorted({t for t in (ticket.resolved_at, ticket.closed_at,
                                      *(e.at for e in timeline if e.kind in RESOLUTION_KINDS))
                          if t is not None})
    responded = _earliest([ticket.acknowledged_at,
                           *(e.at for e in timeline if e.kind in RESPONSE_KINDS)])
    return TicketFacts(
        ticket=ticket,
        reopened_at=tuple(sorted(e.at for e in timeline if e.kind == "reopened")),
        resolved_at=tuple(resolutions),
        first_resolved_at=resolutions[0] if resolutions else None,
        responded_at=responded,
        human=ticket.acknowledged_at is not None or any(e.author != PATROL for e in timeline),
        flapped=ticket.flapping or any(e.kind == "flapping" for e in timeline),
    )
