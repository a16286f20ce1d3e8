"""Apply lifecycle actions (decisions as data) to tickets inside one transaction.

:mod:`collector.policy.correlate` and :mod:`collector.policy.lifecycle` decide; this module does,
and writes one timeline entry per meaningful change. Repeats change counters only:
no timeline entry, no ticket churn.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from patrol.collector.model import Ticket, TicketStatus, TimelineEntry
from patrol.collector.policy.correlate import Step
from patrol.collector.policy.grouping import AddMember, CreateGroup, LeaveGroup
from patrol.collector.policy.lifecycle import (
    CancelRecovery,
    ChangeSeverity,
    Close,
    FlapAnnotate,
    FlapCleared,
    Ignore,
    MarkRecovering,
    OpenTicket,
    Reopen,
    Repeat,
    Resolve,
    StateChanges,
    Suppress,
)
from patrol.contract.units import approx_duration

if TYPE_CHECKING:
    from patrol.collector.store.base import Transaction

log = logging.getLogger("patrol.collector")


class Applier:
    """Applies actions for one unit of work; tickets are loaded once and saved once.

    ``render`` re-renders a ticket's body (after it opens, reopens or changes
    severity), given the transaction, the ticket and the timeline entries about to be
    written for it (a ticket not yet created has no stored timeline).
    """

    def __init__(self, tx: Transaction, now: float, render: Callable[..., str],
                 notify: Callable[..., None] | None = None) -> None:
        self.tx = tx
        self.now = now
        self.render = render
        # ``notify(tx, ticket, action, text, now)`` queues helpdesk work in this same
        # transaction (the dispatch outbox); None when no helpdesk is configured.
        self.notify = notify
        self.notices: list[tuple[int, str, str]] = []
        self.tickets: dict[int, Ticket] = {}
        self.dirty: set[int] = set()
        self.rerender: set[int] = set()
        self.opened: list[Ticket] = []
        self.outcome = "ignored"
        self.note = ""

    def track(self, ticket: Ticket) -> Ticket:
        assert ticket.id is not None
        return self.tickets.setdefault(ticket.id, ticket)

    def _get(self, ticket_id: int | None) -> Ticket:
        if ticket_id is not None and ticket_id in self.tickets:
            return self.tickets[ticket_id]
        found = self.tx.get_ticket_by_id(ticket_id) if ticket_id is not None else None
        if found is None or ticket_id is None:
            raise LookupError(f"ticket id {ticket_id} vanished during the unit of work")
        self.tickets[ticket_id] = found
        return found

    def timeline(self, ticket: Ticket, kind: str, text: str, **data: Any) -> None:
        self.tx.add_timeline(ticket.stored_id, TimelineEntry(self.now, kind, text, data=data))

    def apply(self, actions: Iterable[Step]) -> None:
        for action in actions:
            handler = getattr(self, f"_on_{type(action).__name__}")
            handler(action)

    def finish(self) -> None:
        """Save every changed ticket (body re-rendered where needed), then queue the
        helpdesk notices for what changed."""
        for ticket_id in sorted(self.dirty):
            ticket = self.tickets[ticket_id]
            if ticket_id in self.rerender:
                ticket.body = self.render(self.tx, ticket)
            self.tx.update_ticket(ticket)
        if self.notify is not None:
            for ticket_id, action, text in self.notices:
                self.notify(self.tx, self.tickets[ticket_id], action, text, self.now)

    def announce(self, ticket: Ticket, action: str, text: str = "") -> None:
        """A change the ticket's helpdesks should hear about."""
        self.notices.append((ticket.stored_id, action, text))

    def _touch(self, ticket: Ticket, rerender: bool = False) -> None:
        self.dirty.add(ticket.stored_id)
        if rerender:
            self.rerender.add(ticket.stored_id)

    # -- one handler per action type --------------------------------------------------

    def _on_OpenTicket(self, action: OpenTicket) -> None:
        ticket = action.ticket
        text = f"opened as {ticket.priority}: {ticket.title} ({action.reason})"
        if ticket.previous_id is not None:
            previous = self.tx.get_ticket_by_id(ticket.previous_id)
            if previous is not None:
                text += f"; the same problem was ticketed before as {previous.number}"
        opening = TimelineEntry(self.now, "opened", text, data={"priority": str(ticket.priority)})
        # Rendered before the INSERT, from the entry about to be written: the body goes
        # in with the row instead of in an UPDATE after it (the body does not show the
        # ticket's own number). A later change in this unit re-renders as usual.
        ticket.body = self.render(self.tx, ticket, [opening])
        ticket = self.tx.create_ticket(ticket)
        self.track(ticket)
        self.opened.append(ticket)
        self.tx.add_timeline(ticket.stored_id, opening)
        self.announce(ticket, "open")
        self.outcome = "opened"

    def _on_Repeat(self, action: Repeat) -> None:
        ticket = self._get(action.ticket_id)
        ticket.occurrences += 1
        ticket.last_seen = action.at
        ticket.check_status = action.check_status
        # The body states how often and how recently it was seen: keep it true. Repeats
        # are rare (agents send events on hard state changes only), so this is cheap.
        self._touch(ticket, rerender=True)
        self.outcome = self.outcome if self.outcome != "ignored" else "repeated"

    def _on_ChangeSeverity(self, action: ChangeSeverity) -> None:
        ticket = self._get(action.ticket_id)
        ticket.severity = action.new
        ticket.priority = action.new_priority
        ticket.respond_by, ticket.resolve_by = action.respond_by, action.resolve_by
        self.timeline(ticket, "severity", action.text, old=action.old, new=action.new,
                      old_priority=str(action.old_priority),
                      new_priority=str(action.new_priority))
        self._touch(ticket, rerender=True)
        self.announce(ticket, "priority", f"Patrol: {action.text}")
        self.outcome = "updated"

    def _on_Reopen(self, action: Reopen) -> None:
        ticket = self._get(action.ticket_id)
        ticket.status = TicketStatus.IN_PROGRESS
        ticket.severity, ticket.priority = action.severity, action.priority
        ticket.respond_by, ticket.resolve_by = action.respond_by, action.resolve_by
        ticket.recovered_at = ticket.resolved_at = ticket.closed_at = None
        ticket.resolution = None
        ticket.escalation = 0
        ticket.occurrences += 1
        ticket.last_seen = action.at
        ticket.check_status = "CRITICAL" if action.severity == "critical" else "WARNING"
        self.timeline(ticket, "reopened", f"reopened as {action.priority}: {action.reason}")
        self._touch(ticket, rerender=True)
        self.announce(ticket, "reopen", f"Patrol reopened this ticket: {action.reason}")
        self.outcome = "reopened"

    def _on_MarkRecovering(self, action: MarkRecovering) -> None:
        ticket = self._get(action.ticket_id)
        ticket.recovered_at = action.at
        ticket.check_status = "OK"
        self.timeline(ticket, "recovering", "the check is OK again; verifying that it "
                      "stays OK before resolving")
        self._touch(ticket, rerender=True)
        # Nothing for the ticket's own helpdesk copy yet; a fleet incident's parent
        # ticket shows which hosts are recovering (see collector.tickets.fleet).
        self.announce(ticket, "recovering")
        self.outcome = "recovering"

    def _on_CancelRecovery(self, action: CancelRecovery) -> None:
        ticket = self._get(action.ticket_id)
        since = ticket.recovered_at
        ticket.recovered_at = None
        held = f" after {approx_duration(action.at - since)}" if since is not None else ""
        self.timeline(ticket, "verification_failed",
                      f"verification failed: the check broke again{held}; ticket stays open")
        self._touch(ticket)

    def _on_StateChanges(self, action: StateChanges) -> None:
        ticket = self._get(action.ticket_id)
        ticket.state_changes = list(action.changes)
        ticket.flapping = action.flapping
        self._touch(ticket)

    def _on_FlapAnnotate(self, action: FlapAnnotate) -> None:
        ticket = self._get(action.ticket_id)
        self.timeline(ticket, "flapping", action.text)
        self._touch(ticket)

    def _on_FlapCleared(self, action: FlapCleared) -> None:
        ticket = self._get(action.ticket_id)
        ticket.flapping = False
        ticket.state_changes = []
        self.timeline(ticket, "flapping", action.text)
        self._touch(ticket)

    def _on_Resolve(self, action: Resolve) -> None:
        ticket = self._get(action.ticket_id)
        ticket.status = TicketStatus.RESOLVED
        ticket.resolved_at = action.at
        ticket.resolution = action.reason
        self.timeline(ticket, "resolved", action.reason)
        self._touch(ticket)
        self.announce(ticket, "resolve", f"Patrol verified the recovery: {action.reason}")
        self.outcome = "resolved"

    def _on_Close(self, action: Close) -> None:
        ticket = self._get(action.ticket_id)
        ticket.status = TicketStatus.CLOSED
        ticket.closed_at = action.at
        if ticket.resolution is None:
            ticket.resolution = action.reason
        self.timeline(ticket, "closed", action.reason)
        # Written at once: a new ticket for the same key may be opened next in this
        # unit of work, and only one ticket per key may be active.
        self.tx.update_ticket(ticket)
        self.dirty.discard(ticket.stored_id)
        self.outcome = "closed" if self.outcome == "ignored" else self.outcome

    def _on_CreateGroup(self, action: CreateGroup) -> None:
        parent = self.tx.create_ticket(action.parent)
        self.track(parent)
        self.timeline(parent, "opened", f"opened as {parent.priority}: {parent.title} "
                      f"({action.reason})", priority=str(parent.priority))
        self._touch(parent, rerender=True)
        for member in action.members:
            self._link_member(member, parent)
        self.announce(parent, "open")

    def _member(self, ref: Ticket) -> Ticket:
        """The stored ticket a grouping action names: by id, or, for the unsaved
        ticket of an :class:`OpenTicket` in the same decision, the ticket this unit
        opened for its key."""
        if ref.id is not None:
            return self._get(ref.id)
        opened = next((t for t in self.opened if t.dedup_key == ref.dedup_key), None)
        if opened is None:
            raise LookupError(f"{ref.dedup_key} is to join a group but was not opened")
        return opened

    def _link_member(self, ref: Ticket, parent: Ticket) -> None:
        """The member's body names its group ticket; its helpdesk copy, if any, is
        merged into the parent's (``grouped``, see :mod:`collector.tickets.fleet`)."""
        member = self._member(ref)
        member.parent_id = parent.id
        self.timeline(member, "grouped", f"part of {parent.number}: {parent.title}")
        self._touch(member, rerender=True)
        self.announce(member, "grouped")

    def _on_AddMember(self, action: AddMember) -> None:
        parent = self._get(action.parent_id)
        parent.hosts = list(action.hosts)
        parent.host = ",".join(parent.hosts)
        parent.title = action.title
        parent.last_seen = self.now
        if action.priority is not None:
            # grouping sets the deadlines whenever it sets a priority
            assert action.respond_by is not None and action.resolve_by is not None
            parent.priority = action.priority
            parent.respond_by, parent.resolve_by = action.respond_by, action.resolve_by
            self.timeline(parent, "priority", f"priority {action.old_priority} -> "
                          f"{action.priority} ({action.reason})",
                          old_priority=str(action.old_priority),
                          new_priority=str(action.priority))
        self.timeline(parent, "grouped", f"{action.host} joined: now {len(action.hosts)} "
                      "hosts")
        self._touch(parent, rerender=True)
        self._link_member(action.member, parent)
        self.announce(parent, "group_update")

    def _on_LeaveGroup(self, action: LeaveGroup) -> None:
        member = self._get(action.member)
        member.parent_id = None
        self.timeline(member, "grouped", f"no longer part of {action.parent_number}, which "
                      "is closed: this failure is its own incident")
        self._touch(member, rerender=True)

    def _on_Suppress(self, action: Suppress) -> None:
        log.info("suppressed: %s", action.reason)
        self.outcome, self.note = "suppressed", action.reason

    def _on_Ignore(self, action: Ignore) -> None:
        self.note = action.reason
