"""A fleet incident is one helpdesk ticket: what the helpdesks hear of grouped tickets.

The engine groups hosts failing the same check together (:mod:`collector.policy.grouping`);
this module turns the applier's notices into dispatch outbox rows so that the on-call
engineer's helpdesk holds ONE ticket per incident, always current:

- **Held opens.** The ``open`` of a ticket that could still join a group (it carries
  the grouping label) and of a group's parent waits ``group_hold`` seconds in the
  outbox (its row's ``next_at``). When the ticket becomes a group member meanwhile,
  the held open is withdrawn: the helpdesk never hears of it. The parent's open is
  delivered after the burst, and a delivery always renders the ticket as it is then
  (every host, the scope, the priority).
- **Members stay in Patrol**, linked to the parent, unless a route says
  ``group_members: true`` (:mod:`collector.dispatch.routing`).
- **Merge policy.** A member whose ticket already reached a helpdesk before the group
  formed gets a note there naming the parent and is closed there ("merged into
  TS..."), so the helpdesk ends with one open ticket per incident; Patrol keeps the
  member open and follows it through the parent.
- **Parent updates.** A host joining, the priority changing (with the scope, or with
  the worst member's severity), a member recovering or resolving: the parent's
  helpdesk copy gets one "priority" action (set the priority, add a note stating the
  incident as it is now). Updates gather ``group_hold`` seconds
  and a newer one replaces a queued one, so 30 joins in 3 s are one update, not 30;
  none is queued while the parent's own open is still unsent (it carries them).
- The parent resolves in Patrol and in the helpdesk after the last member's verified
  recovery (:mod:`collector.watchdog.timers`): one resolve.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from patrol.collector.dispatch.routing import destinations
from patrol.collector.model import Ticket, TimelineEntry
from patrol.collector.tickets.body import measured

if TYPE_CHECKING:
    from patrol.collector.dispatch.dispatcher import Dispatcher
    from patrol.collector.store.base import Transaction

UPDATE = "priority"  # the dispatch action that carries an update: priority + a note
# Notices the applier raises for this module only; never forwarded as they are.
INTERNAL = frozenset({"recovering", "grouped", "group_update"})
MEMBER_CHANGES = frozenset({"recovering", "resolve", "reopen"})


class FleetNotices:
    """Routes the applier's notices to the dispatcher (see the module docstring).

    ``group_label``: the grouping label; a ticket carrying it could still join a
    group, so its open is held."""

    def __init__(self, dispatcher: Dispatcher, group_label: str) -> None:
        self.dispatcher = dispatcher
        self.group_label = group_label

    @property
    def hold(self) -> float:
        return float(self.dispatcher.settings.group_hold)

    def notify(self, tx: Transaction, ticket: Ticket, action: str, text: str, now: float) -> None:
        """Queue helpdesk work for ``action`` on ``ticket`` in the caller's transaction."""
        if ticket.id is None:
            return
        if ticket.parent_id is not None:
            parent = tx.get_ticket_by_id(ticket.parent_id)
            if parent is not None and action == "grouped":
                self._merge(tx, ticket, parent, now)
            elif parent is not None and action in MEMBER_CHANGES:
                self._update_parent(tx, parent, now)
            if not destinations(ticket, self.dispatcher.settings.routes):
                return  # the member stays in Patrol: its parent speaks for it
        if action == "group_update" or (action == "priority" and ticket.is_group):
            self._update_parent(tx, ticket, now)
        elif action == "resolve" and ticket.is_group:
            self._resolve_parent(tx, ticket, text, now)
        elif action == "open" or (action == "reopen" and not self._opened(tx, ticket)):
            # (a reopen of a ticket no helpdesk has, e.g. a member that left its closed
            # fleet incident, is its first appearance there)
            held = ticket.is_group or (ticket.parent_id is None
                                       and bool(ticket.labels.get(self.group_label)))
            self.dispatcher.enqueue(tx, ticket, "open", text,
                                    now + self.hold if held else now)
        elif action not in INTERNAL:
            self.dispatcher.enqueue(tx, ticket, action, text, now)

    def _merge(self, tx: Transaction, member: Ticket, parent: Ticket, now: float) -> None:
        """Withdraw the member's unsent opens; close the copies already sent."""
        keep = {d.helpdesk for d in destinations(member, self.dispatcher.settings.routes)}
        reached = sorted({row["helpdesk"] for row in tx.dispatch_rows(member.id)
                          if row["action"] == "open" and row["state"] != "failed"
                          and row["helpdesk"] not in keep})
        for helpdesk in reached:
            if tx.cancel_unsent_open(member.stored_id, helpdesk):
                continue
            text = (f"Patrol: merged into fleet incident {parent.number} ({parent.title}). "
                    f"Patrol follows {member.host} there; this ticket is closed here so "
                    "that the incident has one open ticket.")
            tx.enqueue_dispatch(member.stored_id, helpdesk, "resolve", {"text": text}, now)
            tx.add_timeline(member.stored_id, TimelineEntry(
                now, "helpdesk", f"merged into {parent.number}: closing it in {helpdesk}",
                data={"helpdesk": helpdesk, "parent": parent.number}))
        self.dispatcher.wakeup.set()

    def _resolve_parent(self, tx: Transaction, parent: Ticket, text: str, now: float) -> None:
        """The resolve replaces an update still waiting: it says the last word."""
        for helpdesk in self._opened(tx, parent):
            queued = self._queued_update(tx, parent, helpdesk)
            if queued is None or not tx.amend_unsent_dispatch(
                    queued["id"], {"text": text}, action="resolve"):
                tx.enqueue_dispatch(parent.stored_id, helpdesk, "resolve", {"text": text}, now)
        self.dispatcher.wakeup.set()

    @staticmethod
    def _opened(tx: Transaction, ticket: Ticket) -> list[str]:
        """The helpdesks where the ticket is, or is being, opened."""
        return sorted({row["helpdesk"] for row in tx.dispatch_rows(ticket.id)
                       if row["action"] == "open" and row["state"] != "failed"})

    @staticmethod
    def _queued_update(tx: Transaction, parent: Ticket, helpdesk: str) -> dict[str, Any] | None:
        queued = [row for row in tx.unsent_dispatch(parent.stored_id, helpdesk)
                  if row["action"] == UPDATE and row["payload"].get("fleet")]
        return queued[-1] if queued else None

    def _update_parent(self, tx: Transaction, parent: Ticket, now: float) -> None:
        if not parent.status.is_open:
            return
        members = tx.children(parent.stored_id)
        if members and all(not m.status.is_open for m in members):
            return  # the parent resolves next; its resolve says so
        payload = {"text": update_text(parent, members), "fleet": True}
        for helpdesk in self._opened(tx, parent):
            if any(row["action"] == "open"
                   for row in tx.unsent_dispatch(parent.stored_id, helpdesk)):
                continue  # the open is still to be sent, and renders the parent as it is
            queued = self._queued_update(tx, parent, helpdesk)
            if queued is not None and tx.amend_unsent_dispatch(queued["id"], payload):
                continue
            tx.enqueue_dispatch(parent.stored_id, helpdesk, UPDATE, payload, now + self.hold)


def update_text(parent: Ticket, members: list[Ticket]) -> str:
    """The incident as it is now, for a note on the parent's helpdesk ticket."""
    failing = [m.host for m in members if m.status.is_open and m.recovered_at is None]
    recovering = [m.host for m in members if m.status.is_open and m.recovered_at is not None]
    recovered = [m.host for m in members if not m.status.is_open]
    lines = [f"Patrol: {parent.title}; priority {parent.priority}.",
             f"Failing ({len(failing)}): {', '.join(failing) or '-'}"]
    if recovering:
        lines.append(f"Recovering, being verified ({len(recovering)}): "
                     f"{', '.join(recovering)}")
    if recovered:
        lines.append(f"Recovered ({len(recovered)}): {', '.join(recovered)}")
    worst = worst_values([m for m in members if m.host in failing])
    if worst:
        lines.append("Worst values: " + "; ".join(worst))
    return "\n".join(lines)


def worst_values(members: list[Ticket]) -> list[str]:
    """Per measurement (name and item), the highest value among ``members`` and where:
    ``used_ratio /var 97.1% on web-07``."""
    best: dict[tuple[str, str], tuple[float, str]] = {}
    for member in members:
        for m in member.measurements:
            value = m.get("value")
            if not isinstance(value, int | float):
                continue
            key = (str(m.get("name")), str(m.get("item") or ""))
            if key not in best or value > best[key][0]:
                best[key] = (float(value), member.host)
    return [f"{name}{' ' + item if item else ''} {measured(name, value)} on {host}"
            for (name, item), (value, host) in sorted(best.items())]

