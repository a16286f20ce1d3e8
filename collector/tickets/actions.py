"""What operators do to tickets: acknowledge, comment, resolve, close.

DOMAIN.md's rule: a ticket whose problem persists must not be closed; it goes
back to diagnosis. So resolving or closing while the check still fails is refused
unless the operator forces it (a won't-fix decision), and that is recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from patrol.collector.model import Ticket, TicketStatus, TimelineEntry
from patrol.collector.store.base import ConcurrentUpdate
from patrol.collector.tickets.archive import archive

if TYPE_CHECKING:
    from patrol.collector.engine import Engine

TicketAction = Literal["acknowledge", "comment", "resolve", "close"]


class TicketRefused(Exception):
    """The action does not fit the ticket's state; the message says why."""


def _apply(ticket: Ticket, action: str, author: str, text: str, force: bool,
           now: float) -> TimelineEntry:
    failing = ticket.check_status != "OK"
    if action == "acknowledge":
        if not ticket.status.is_open:
            raise TicketRefused(f"{ticket.number} is {ticket.status}; only open tickets can "
                                "be acknowledged")
        if ticket.acknowledged_at is None:
            ticket.acknowledged_at = now
        ticket.status = TicketStatus.IN_PROGRESS
        return TimelineEntry(now, "acknowledged", text or f"acknowledged by {author}", author)
    if action == "comment":
        if not text.strip():
            raise TicketRefused("a comment needs text")
        return TimelineEntry(now, "comment", text, author)
    if action in ("resolve", "close"):
        if ticket.status is TicketStatus.CLOSED:
            raise TicketRefused(f"{ticket.number} is already closed")
        if failing and not force:
            raise TicketRefused(
                f"{ticket.check} still reports {ticket.check_status} on {ticket.host}; "
                f"{action} it after the check recovers, or pass force=true to record a "
                "won't-fix decision")
        note = text or f"{action}d by {author}"
        if failing:
            note += f" (forced while the check reports {ticket.check_status})"
        if action == "resolve":
            ticket.status = TicketStatus.RESOLVED
            ticket.resolved_at = now
        else:
            ticket.status = TicketStatus.CLOSED
            ticket.closed_at = now
            ticket.resolved_at = ticket.resolved_at or now
        ticket.resolution = note
        return TimelineEntry(now, "resolved" if action == "resolve" else "closed", note,
                             author)
    raise TicketRefused(f"unknown action {action!r}")


def act(engine: Engine, number: str, action: str, author: str, text: str = "",
        force: bool = False) -> Ticket:
    """Apply an operator action atomically; raises LookupError or TicketRefused."""
    for _ in range(20):
        try:
            with engine.store.transaction() as tx:
                found = engine.store.get_ticket(number) if engine.store.backend == "sqlite" \
                    else tx.get_ticket(number)
                if found is None:
                    raise LookupError(number)
                ticket = tx.get_ticket_by_id(found.stored_id)
                if ticket is None:  # tickets are never deleted
                    raise LookupError(number)
                entry = _apply(ticket, action, author, text, force, engine.clock())
                if action in ("resolve", "close"):
                    archive(tx, ticket, text, author, entry.at)  # a person's note only
                tx.add_timeline(ticket.stored_id, entry)
                tx.update_ticket(ticket)
                outward = {"comment": "comment", "resolve": "resolve", "close": "resolve",
                           "acknowledge": "comment"}[action]
                engine.notify(tx, ticket, outward, f"{author} in Patrol: {entry.text}",
                              entry.at)
                return ticket
        except ConcurrentUpdate:
            continue
    raise TicketRefused(f"{number} is changing too fast to {action}; try again")
