"""Two-way sync: read the status of linked tickets back from their helpdesks.

An acknowledgement or assignment there marks the Patrol ticket in progress (for MTTA);
a close there while the check still fails is handled by ``on_remote_close``:
``reopen`` it with a comment, or ``respect`` it (a won't-fix resolution is always
respected). Every collector replica runs this pass; a reopen already queued by another
replica's pass is not queued twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from patrol.collector.dispatch.routing import TicketingSettings
from patrol.collector.model import Ticket, TicketStatus, TimelineEntry
from patrol.collector.tickets.archive import archive
from patrol.ticketing_bridge.protocol import (
    ExternalRef,
    PermanentError,
    RemoteStatus,
    TemporaryError,
)

if TYPE_CHECKING:
    from patrol.collector.store.base import TicketStore
    from patrol.ticketing_bridge.protocol import Helpdesk


def sync_once(store: TicketStore, settings: TicketingSettings, helpdesks: dict[str, Helpdesk],
              clock: Callable[[], float]) -> int:
    """Read the status of every linked, still active ticket; returns changes made."""
    changes = 0
    for link in store.links():
        adapter = helpdesks.get(link["helpdesk"])
        ticket = store.get_ticket_by_id(link["ticket_id"])
        if adapter is None or ticket is None or ticket.status is TicketStatus.CLOSED:
            continue
        ref = ExternalRef(link["helpdesk"], link["external_id"], link["url"])
        try:
            remote = adapter.status(ref)
        except (TemporaryError, PermanentError) as exc:
            with store.transaction() as tx:
                tx.set_link_state(ticket.stored_id, ref.helpdesk, link["remote_state"],
                                  link["remote_assignee"], clock(), str(exc))
            continue
        changes += _reconcile(store, settings, clock(), ticket, link, remote)
    return changes


def _reconcile(store: TicketStore, settings: TicketingSettings, now: float, ticket: Ticket,
               link: dict[str, Any], remote: RemoteStatus) -> int:
    """Apply what the helpdesk says to the ticket, re-read and locked in one unit of
    work (the engine may have changed it since the pass read it); 1 if it changed."""
    name = link["helpdesk"]
    changed = 0
    with store.transaction() as tx:
        fresh = tx.get_ticket_by_id(ticket.stored_id)
        if fresh is None:  # tickets are never deleted
            raise LookupError(f"ticket {ticket.number} vanished during helpdesk sync")
        tx.set_link_state(fresh.stored_id, name, remote.state, remote.assignee, now)
        who = f" by {remote.assignee}" if remote.assignee else ""
        if remote.state == "acknowledged" and fresh.acknowledged_at is None \
                and fresh.status.is_open:
            fresh.acknowledged_at = now
            fresh.status = TicketStatus.IN_PROGRESS
            tx.add_timeline(fresh.stored_id, TimelineEntry(
                now, "acknowledged", f"taken in {name}{who}", author=remote.assignee
                or name))
            tx.update_ticket(fresh)
            changed = 1
        elif remote.state in ("resolved", "closed") and fresh.status.is_open \
                and fresh.parent_id is None:  # a member: merged into its fleet incident
            failing = fresh.check_status != "OK"
            if failing and not remote.wont_fix and settings.on_remote_close == "reopen":
                if any(row["helpdesk"] == name and row["action"] == "reopen"
                       for row in tx.dispatch_rows(fresh.id, state="pending")):
                    return 0  # another replica's sync pass already asked for it
                text = (f"Patrol: {fresh.check} still reports {fresh.check_status} on "
                        f"{fresh.host}; reopening. Resolve it once the check recovers.")
                tx.enqueue_dispatch(fresh.stored_id, name, "reopen", {"text": text}, now)
                tx.add_timeline(fresh.stored_id, TimelineEntry(
                    now, "helpdesk", f"closed in {name}{who} while the check still "
                    "fails: reopening it there"))
            else:
                why = "won't fix" if remote.wont_fix else f"closed in {name}"
                fresh.status = TicketStatus.CLOSED if failing else TicketStatus.RESOLVED
                fresh.resolved_at = fresh.resolved_at or now
                if failing:
                    fresh.closed_at = now
                fresh.resolution = f"{why}{who}"
                note = getattr(remote, "note", None)
                if note:  # a person's resolution note, read back: archived
                    archive(tx, fresh, note, getattr(remote, "note_author", None)
                            or remote.assignee or name, now)
                tx.add_timeline(fresh.stored_id, TimelineEntry(
                    now, "closed" if failing else "resolved",
                    f"{why}{who}" + (" while the check still fails" if failing else "")))
                tx.update_ticket(fresh)
            changed = 1
    return changed
