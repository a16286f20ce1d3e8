"""Deliver ticket changes to helpdesks through the dispatch outbox, and read their
status back.

Every helpdesk action is a row written in the same transaction as the ticket
change that caused it (:meth:`Dispatcher.enqueue`), so a collector crash can delay
it but never lose it. Workers claim due rows (the oldest per ticket and helpdesk,
so actions arrive in order), call the adapter, and then:

- success: the row is done; for ``open`` the external reference is stored at once;
- :class:`TemporaryError`: retried with exponential backoff and jitter (1 s doubling
  to 5 min), or exactly after the helpdesk's ``Retry-After``;
- :class:`PermanentError`: the row is kept as ``failed``, the error shows on the
  ticket's timeline and in ``/metrics``; fix the config, then re-queue.

Before creating, the adapter's ``find`` looks for a ticket already carrying this
ticket's fingerprint: if the collector died between "created in the helpdesk" and
"stored here", the retry adopts that ticket instead of making a second one.

Two-way: :meth:`Dispatcher.sync_once` reads the status of linked tickets. An
acknowledgement or assignment there marks the Patrol ticket in progress (for MTTA);
a close there while the check still fails is handled by ``on_remote_close``:
``reopen`` it with a comment, or ``respect`` it (a won't-fix resolution is always
respected).
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import signal
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

from collector.model import Ticket, TicketStatus, TimelineEntry
from collector.routing import TicketingSettings, destinations
from ticketing_bridge.protocol import (
    Destination,
    ExternalRef,
    PermanentError,
    TemporaryError,
    TicketView,
)

log = logging.getLogger("patrol.collector.dispatch")
LEASE = 120.0
MAX_BACKOFF = 300.0
# Fault injection for the crash test: SIGKILL this process right after a helpdesk
# confirmed a new ticket and before its reference is stored (the worst moment).
FAILPOINT = "PATROL_FAILPOINT"


def fingerprint(ticket: Ticket) -> str:
    """Stable for the life of a Patrol ticket (reopens keep it) and unique across
    collectors and databases: two Patrol installations (or a rebuilt store) both have
    a TS20261122001, so the number alone could adopt someone else's helpdesk ticket."""
    digest = hashlib.sha256(f"{ticket.dedup_key}|{ticket.opened_at:.6f}".encode())
    return f"patrol-{ticket.number}-{digest.hexdigest()[:10]}"


def view_of(ticket: Ticket, base_url: str | None = None) -> TicketView:
    return TicketView(
        number=ticket.number, fingerprint=fingerprint(ticket), title=ticket.title,
        body=ticket.body, priority=str(ticket.priority), severity=ticket.severity,
        status=str(ticket.status), category=ticket.category, host=ticket.host,
        check=ticket.check, check_type=ticket.check_type, labels=dict(ticket.labels),
        respond_by=ticket.respond_by, resolve_by=ticket.resolve_by,
        url=f"{base_url.rstrip('/')}/tickets/{ticket.number}" if base_url else None,
        hosts=tuple(ticket.hosts))


def backoff(attempts: int) -> float:
    return min(MAX_BACKOFF, 2.0 ** attempts) * random.uniform(0.8, 1.2)


class Dispatcher:
    """Owns the helpdesk adapters; safe to use from the engine's threads."""

    def __init__(self, store: Any, settings: TicketingSettings, helpdesks: dict[str, Any],
                 limits: dict[str, int], clock: Callable[[], float]) -> None:
        self.store = store
        self.settings = settings
        self.helpdesks = helpdesks
        self.clock = clock
        self._slots = {name: threading.BoundedSemaphore(limits.get(name, 4))
                       for name in helpdesks}
        self._pool = ThreadPoolExecutor(max_workers=settings.workers,
                                        thread_name_prefix="dispatch")
        self.counters: Counter[tuple[str, str]] = Counter()  # (helpdesk, outcome)
        self._lock = threading.Lock()
        # Set when work is queued, so delivery starts at once instead of at the next poll.
        self.wakeup = threading.Event()
        self.owner = uuid.uuid4().hex  # this process's claim on leased rows
        if getattr(store, "backend", "") == "sqlite":
            # One collector per SQLite file: any lease left is a dead process's.
            with store.transaction() as tx:
                tx.release_leases(clock())

    # -- writing the outbox (inside the engine's transaction) ---------------------------

    def enqueue(self, tx: Any, ticket: Ticket, action: str, text: str, now: float) -> None:
        """Queue ``action`` for every helpdesk this ticket goes to."""
        if ticket.id is None:
            return
        if action == "open":
            for dest in destinations(ticket, self.settings.routes):
                tx.enqueue_dispatch(ticket.id, dest.helpdesk, "open",
                                    {"destination": asdict(dest)}, now)
            self.wakeup.set()
            return
        targets = {row["helpdesk"] for row in tx.dispatch_rows(ticket.id)
                   if row["action"] == "open"}
        for helpdesk in sorted(targets):
            tx.enqueue_dispatch(ticket.id, helpdesk, action, {"text": text}, now)
        self.wakeup.set()

    # -- delivering ---------------------------------------------------------------------

    def run_once(self, limit: int = 100) -> dict[str, int]:
        """Claim due rows and deliver them; returns counts by outcome."""
        now = self.clock()
        with self.store.transaction() as tx:
            rows = tx.claim_dispatch(now, limit, LEASE, self.owner)
        outcomes = list(self._pool.map(self._deliver, rows))
        return dict(Counter(outcomes))

    def _deliver(self, row: dict[str, Any]) -> str:
        name = row["helpdesk"]
        adapter = self.helpdesks.get(name)
        if adapter is None:
            return self._failed(row, f"helpdesk '{name}' is no longer configured")
        with self._slots[name]:
            try:
                self._perform(adapter, row)
            except TemporaryError as exc:
                wait = exc.retry_after if exc.retry_after is not None else \
                    backoff(row["attempts"])
                with self.store.transaction() as tx:
                    tx.retry_dispatch(row["id"], self.clock() + wait, str(exc))
                self._count(name, "retry")
                log.warning("%s: %s (retry in %.0fs)", name, exc, wait)
                return "retry"
            except PermanentError as exc:
                return self._failed(row, str(exc))
            except Exception as exc:  # an adapter bug: retry, but loudly
                log.exception("%s: unexpected error delivering %s", name, row["action"])
                with self.store.transaction() as tx:
                    tx.retry_dispatch(row["id"], self.clock() + backoff(row["attempts"]),
                                      f"{type(exc).__name__}: {exc}")
                self._count(name, "retry")
                return "retry"
        with self.store.transaction() as tx:
            tx.complete_dispatch(row["id"], self.clock())
        self._count(name, "delivered")
        return "delivered"

    def _count(self, helpdesk: str, outcome: str) -> None:
        with self._lock:
            self.counters[(helpdesk, outcome)] += 1

    def _failed(self, row: dict[str, Any], error: str) -> str:
        now = self.clock()
        with self.store.transaction() as tx:
            tx.fail_dispatch(row["id"], now, error)
            tx.add_timeline(row["ticket_id"], TimelineEntry(
                now, "helpdesk_error", f"{row['helpdesk']} refused '{row['action']}': {error}",
                data={"helpdesk": row["helpdesk"], "action": row["action"]}))
            if tx.link(row["ticket_id"], row["helpdesk"]) is not None:
                tx.set_link_state(row["ticket_id"], row["helpdesk"], None, None, now, error)
        self._count(row["helpdesk"], "failed")
        log.error("%s refused %s for ticket id %s: %s", row["helpdesk"], row["action"],
                  row["ticket_id"], error)
        return "failed"

    def _perform(self, adapter: Any, row: dict[str, Any]) -> None:
        ticket = self.store.get_ticket_by_id(row["ticket_id"])
        view = view_of(ticket, self.settings.base_url)
        name, action = row["helpdesk"], row["action"]
        link = self.store.link(ticket.id, name)
        if action == "open":
            if link is not None:
                return  # already created (a retried row after a crash)
            dest = Destination(**row["payload"]["destination"])
            ref = adapter.find(view.fingerprint, dest)
            adopted = ref is not None
            if ref is None:
                ref = adapter.open(view, dest)
                if os.environ.get(FAILPOINT) == "after-helpdesk-open":
                    os.kill(os.getpid(), signal.SIGKILL)
            now = self.clock()
            with self.store.transaction() as tx:  # stored the moment it is known
                tx.save_link(ticket.id, name, ref.id, ref.url, asdict(dest))
                where = f" ({ref.url})" if ref.url else ""
                how = "found the existing ticket" if adopted else "opened"
                tx.add_timeline(ticket.id, TimelineEntry(
                    now, "helpdesk", f"{how} in {name} as #{ref.id}{where}",
                    data={"helpdesk": name, "external_id": ref.id, "url": ref.url}))
            return
        if link is None:
            raise PermanentError(f"no ticket in {name} to {action}: opening it failed")
        ref = ExternalRef(name, link["external_id"], link["url"])
        dest = Destination(**link["destination"])
        text = row["payload"].get("text", "")
        if action == "comment":
            adapter.comment(ref, text, view)
        elif action == "priority":
            adapter.set_priority(ref, view, dest)
            if text:
                adapter.comment(ref, text, view)
        elif action == "resolve":
            adapter.resolve(ref, text, view, dest)
        elif action == "reopen":
            adapter.reopen(ref, text, view, dest)
        else:
            raise PermanentError(f"unknown dispatch action {action!r}")

    # -- reading back ---------------------------------------------------------------------

    def sync_once(self) -> int:
        """Read the status of every linked, still active ticket; returns changes made."""
        changes = 0
        for link in self.store.links():
            adapter = self.helpdesks.get(link["helpdesk"])
            ticket = self.store.get_ticket_by_id(link["ticket_id"])
            if adapter is None or ticket is None or ticket.status is TicketStatus.CLOSED:
                continue
            ref = ExternalRef(link["helpdesk"], link["external_id"], link["url"])
            try:
                remote = adapter.status(ref)
            except (TemporaryError, PermanentError) as exc:
                with self.store.transaction() as tx:
                    tx.set_link_state(ticket.id, ref.helpdesk, link["remote_state"],
                                      link["remote_assignee"], self.clock(), str(exc))
                continue
            changes += self._reconcile(ticket, link, remote)
        return changes

    def _reconcile(self, ticket: Ticket, link: dict[str, Any], remote: Any) -> int:
        now, name = self.clock(), link["helpdesk"]
        changed = 0
        with self.store.transaction() as tx:
            fresh = tx.get_ticket_by_id(ticket.id)
            tx.set_link_state(fresh.id, name, remote.state, remote.assignee, now)
            who = f" by {remote.assignee}" if remote.assignee else ""
            if remote.state == "acknowledged" and fresh.acknowledged_at is None \
                    and fresh.status.is_open:
                fresh.acknowledged_at = now
                fresh.status = TicketStatus.IN_PROGRESS
                tx.add_timeline(fresh.id, TimelineEntry(
                    now, "acknowledged", f"taken in {name}{who}", author=remote.assignee
                    or name))
                tx.update_ticket(fresh)
                changed = 1
            elif remote.state in ("resolved", "closed") and fresh.status.is_open \
                    and fresh.parent_id is None:  # a member: merged into its fleet incident
                failing = fresh.check_status != "OK"
                if failing and not remote.wont_fix and self.settings.on_remote_close == "reopen":
                    text = (f"Patrol: {fresh.check} still reports {fresh.check_status} on "
                            f"{fresh.host}; reopening. Resolve it once the check recovers.")
                    tx.enqueue_dispatch(fresh.id, name, "reopen", {"text": text}, now)
                    tx.add_timeline(fresh.id, TimelineEntry(
                        now, "helpdesk", f"closed in {name}{who} while the check still "
                        "fails: reopening it there"))
                else:
                    why = "won't fix" if remote.wont_fix else f"closed in {name}"
                    fresh.status = TicketStatus.CLOSED if failing else TicketStatus.RESOLVED
                    fresh.resolved_at = fresh.resolved_at or now
                    if failing:
                        fresh.closed_at = now
                    fresh.resolution = f"{why}{who}"
                    tx.add_timeline(fresh.id, TimelineEntry(
                        now, "closed" if failing else "resolved",
                        f"{why}{who}" + (" while the check still fails" if failing else "")))
                    tx.update_ticket(fresh)
                changed = 1
        return changed

    def backlog(self) -> list[dict[str, Any]]:
        return self.store.dispatch_backlog(self.clock())

    def serve(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set: at once when woken, else every interval."""
        while not stop.is_set():
            self.wakeup.wait(self.settings.dispatch_interval)
            self.wakeup.clear()
            if stop.is_set():
                break
            try:
                while self.run_once().get("delivered", 0) and not stop.is_set():
                    pass  # more may have become due (the next action of each ticket)
            except Exception:
                log.exception("dispatch pass failed")

    def close(self) -> None:
        self.wakeup.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        for adapter in self.helpdesks.values():  # e.g. GLPI ends its API session
            closer = getattr(adapter, "close", None)
            if callable(closer):
                try:
                    closer()
                except Exception:  # shutting down: report, do not stop the others
                    log.warning("closing helpdesk adapter %s failed", adapter, exc_info=True)
