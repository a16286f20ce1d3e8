"""Respond-by and resolve-by outcomes, per ticket, as a retrospective counts them.

Each deadline of a ticket is *met*, *breached* or still *pending* at ``now``:

* met: answered (respond) or resolved (resolve) at or before the deadline;
* breached: answered or resolved after it, or not yet and the deadline has passed;
* pending: not yet, and the deadline is still ahead: left out of compliance, since
  its outcome is unknown.

Deadlines are the ticket's own ``respond_by``/``resolve_by``: a severity change
recomputes them from the opening and a reopen restarts them, exactly as the SLA
watchdog and the ticket page count them. Compliance is met / (met + breached).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from patrol.collector.model import Priority
from patrol.collector.reports.facts import TicketFacts

Verdict = Literal["met", "breached", "pending"]
DEADLINES = ("respond", "resolve")


@dataclass(frozen=True)
class Outcome:
    facts: TicketFacts
    deadline: str  # "respond" or "resolve"
    due_at: float
    done_at: float | None
    verdict: Verdict

    def late_seconds(self, now: float) -> float | None:
        """How far past the deadline it was answered/resolved, or is by ``now``."""
        if self.verdict != "breached":
            return None
        return (self.done_at if self.done_at is not None else now) - self.due_at


def _verdict(due: float, done: float | None, now: float) -> Verdict:
    if done is not None:
        return "met" if done <= due else "breached"
    return "breached" if now > due else "pending"


def outcomes(facts: TicketFacts, now: float) -> list[Outcome]:
    """The ticket's respond and resolve outcomes at ``now``."""
    ticket = facts.ticket
    resolved = ticket.resolved_at if ticket.resolved_at is not None else ticket.closed_at
    pairs = (("respond", ticket.respond_by, facts.responded_at),
             ("resolve", ticket.resolve_by, resolved))
    return [Outcome(facts, name, due, done, _verdict(due, done, now))
            for name, due, done in pairs]


def ratio(met: int, breached: int) -> float | None:
    return met / (met + breached) if met + breached else None


def compliance(all_facts: Iterable[TicketFacts], now: float) -> dict[str, Any]:
    """Per priority (all four, always) and in total: met, breached, pending and the
    compliance ratio for each deadline; plus every breach, most urgent first."""
    counts = {p.value: {d: {"met": 0, "breached": 0, "pending": 0} for d in DEADLINES}
              for p in Priority}
    totals = {d: {"met": 0, "breached": 0, "pending": 0} for d in DEADLINES}
    breaches: list[Outcome] = []
    for facts in all_facts:
        for outcome in outcomes(facts, now):
            counts[facts.ticket.priority.value][outcome.deadline][outcome.verdict] += 1
            totals[outcome.deadline][outcome.verdict] += 1
            if outcome.verdict == "breached":
                breaches.append(outcome)

    def summary(by_deadline: dict[str, dict[str, int]]) -> dict[str, Any]:
        return {d: {**c, "compliance": ratio(c["met"], c["breached"])}
                for d, c in by_deadline.items()}

    breaches.sort(key=lambda o: (o.facts.ticket.priority.rank, o.due_at,
                                 o.facts.ticket.number, o.deadline))
    return {
        "by_priority": [{"priority": p, **summary(c)} for p, c in counts.items()],
        "total": summary(totals),
        "breaches": [{
            "ticket": o.facts.ticket.number, "priority": o.facts.ticket.priority.value,
            "title": o.facts.ticket.title, "host": o.facts.ticket.host,
            "check": o.facts.ticket.check, "deadline": o.deadline,
            "due_at": o.due_at, "done_at": o.done_at,
            "late_seconds": o.late_seconds(now)} for o in breaches],
    }
