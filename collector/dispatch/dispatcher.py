"""Deliver ticket changes to helpdesks through the dispatch outbox, and read their
status back.

Every helpdesk action is a row written in the same transaction as the ticket
change that caused it (:meth:`Dispatcher.enqueue`), so a collector crash can delay
it but never lose it. Workers claim due rows (the oldest per ticket and helpdesk,
so actions arrive in order; only as many as they can start at once, leased briefly
and renewed while the call runs; see :mod:`collector.dispatch.leases`), call the
adapter, and then, if their claim still owns the row (several collectors may share
one PostgreSQL store):

- success: the row is done; for ``open`` the external reference is stored at once;
- :class:`TemporaryError`: retried with exponential backoff and jitter (1 s doubling
  to 5 min), or exactly after the helpdesk's ``Retry-After``;
- :class:`PermanentError`: the row is kept as ``failed``, the error shows on the
  ticket's timeline and in ``/metrics``; fix the config, then re-queue.

Before creating, the adapter's ``find`` looks for a ticket already carrying this
ticket's fingerprint: if the collector died between "created in the helpdesk" and
"stored here", the retry (here, or by the replica that took the row over) adopts
that ticket instead of making a second one. Helpdesks that cannot be searched
(generic webhooks, chat robots, email) get the action again in that case, with the
same fingerprint (and for email the same Message-ID), so the duplicate is
recognisable: at least once, never lost.

Two-way: :meth:`Dispatcher.sync_once` reads the status of linked tickets back
(:mod:`collector.dispatch.helpdesk_sync`).
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from patrol.collector.dispatch import helpdesk_sync
from patrol.collector.dispatch.leases import LEASE, Claim, Leases
from patrol.collector.dispatch.routing import TicketingSettings, destinations
from patrol.collector.model import Ticket, TimelineEntry, view_fields
from patrol.collector.tickets import chart as ticket_chart
from patrol.ticketing_bridge.protocol import (
    Destination,
    ExternalRef,
    PermanentError,
    TemporaryError,
    TicketView,
)

if TYPE_CHECKING:
    from patrol.collector.store.base import TicketStore, Transaction
    from patrol.ticketing_bridge.protocol import Helpdesk

log = logging.getLogger("patrol.collector.dispatch")
MAX_BACKOFF = 300.0


def fingerprint(ticket: Ticket) -> str:
    """Stable for the life of a Patrol ticket (reopens keep it) and unique across
    collectors and databases: two Patrol installations (or a rebuilt store) both have
    a TS20261122001, so the number alone could adopt someone else's helpdesk ticket."""
    digest = hashlib.sha256(f"{ticket.dedup_key}|{ticket.opened_at:.6f}".encode())
    return f"patrol-{ticket.number}-{digest.hexdigest()[:10]}"


def view_of(ticket: Ticket, base_url: str | None = None) -> TicketView:
    """What the adapters see of ``ticket``: the fields :class:`collector.model.Ticket`
    declares for the view, its fingerprint and the link to its page."""
    return TicketView(
        **view_fields(ticket), fingerprint=fingerprint(ticket),
        url=f"{base_url.rstrip('/')}/tickets/{ticket.number}" if base_url else None)


def backoff(attempts: int) -> float:
    return min(MAX_BACKOFF, 2.0 ** attempts) * random.uniform(0.8, 1.2)


class Dispatcher:
    """Owns the helpdesk adapters; safe to use from the engine's threads.

    Claims are small and short: a pass claims only what its free workers can start
    at once (per helpdesk, within that helpdesk's concurrency limit), leased for
    ``lease`` seconds and renewed while the call runs (:mod:`collector.dispatch.leases`).
    So a slow helpdesk never sees a row outlive its lease and go out twice, and the
    rows of a replica that died are taken over by the others ``lease`` seconds after
    its last renewal.
    """

    def __init__(self, store: TicketStore, settings: TicketingSettings,
                 helpdesks: dict[str, Helpdesk], limits: dict[str, int],
                 clock: Callable[[], float],
                 lease: float = LEASE) -> None:
        self.store = store
        self.settings = settings
        self.helpdesks = helpdesks
        self.clock = clock
        self.limits = {name: limits.get(name, 4) for name in helpdesks}
        self._pool = ThreadPoolExecutor(max_workers=settings.workers,
                                        thread_name_prefix="dispatch")
        self.counters: Counter[tuple[str, str]] = Counter()  # (helpdesk, outcome)
        # (helpdesk, "lost" | "taken_over"): leases this replica lost while delivering,
        # and lapsed leases of others (dead or stalled) it took over.
        self.lease_counters: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._claiming = threading.Lock()
        self._first = 0  # which helpdesk claims first in a pass: rotates, for fairness
        # Set when work is queued, so delivery starts at once instead of at the next poll.
        self.wakeup = threading.Event()
        self.owner = uuid.uuid4().hex[:12]  # this process, in every claim token
        self.leases = Leases(store, clock, lease, self._lost_by_renewal)
        if getattr(store, "backend", "") == "sqlite":
            # One collector per SQLite file: any lease left is a dead process's.
            with store.transaction() as tx:
                tx.release_leases(clock())

    # -- writing the outbox (inside the engine's transaction) ---------------------------

    def enqueue(self, tx: Transaction, ticket: Ticket, action: str, text: str, now: float) -> None:
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

    # -- claiming -------------------------------------------------------------------------

    def claim(self) -> list[dict[str, Any]]:
        """Lease the due rows the free workers can start now, and hold them."""
        with self._claiming:
            free = self.settings.workers - len(self.leases)
            if free <= 0:
                return []
            busy = self.leases.busy()
            names = list(self.helpdesks)
            self._first = (self._first + 1) % max(1, len(names))
            now = self.clock()
            rows: list[dict[str, Any]] = []
            with self.store.transaction() as tx:
                for name in names[self._first:] + names[:self._first]:
                    room = min(free - len(rows), self.limits[name] - busy[name])
                    rows += tx.claim_dispatch(now, room, self.leases.lease, self.owner,
                                              helpdesk=name)
                # Rows for a helpdesk no longer configured: claimed only to be failed.
                rows += tx.claim_dispatch(now, free - len(rows), self.leases.lease,
                                          self.owner, other_than=tuple(names))
            for row in rows:
                self.leases.hold(row)
        for row in rows:
            if row["taken_over"]:
                self._count_lease(row["helpdesk"], "taken_over")
                log.warning("%s: taking over %s for ticket id %s (row %s): the collector "
                            "that claimed it stopped renewing its lease", row["helpdesk"],
                            row["action"], row["ticket_id"], row["id"])
        return rows

    # -- delivering ---------------------------------------------------------------------

    def run_once(self) -> dict[str, int]:
        """Claim what can start now, deliver it and wait; counts by outcome."""
        futures = [self._pool.submit(self._deliver, row) for row in self.claim()]
        return dict(Counter(future.result() for future in futures))

    def _deliver(self, row: dict[str, Any]) -> str:
        try:
            return self._attempt(row)
        except Exception:  # the store failed: the lease lapses and the row is retried
            log.exception("%s: recording the outcome of %s for ticket id %s failed",
                          row["helpdesk"], row["action"], row["ticket_id"])
            return "error"
        finally:
            self.leases.release(row["id"])
            self.wakeup.set()  # a worker is free, and the ticket's next action may be due

    def _attempt(self, row: dict[str, Any]) -> str:
        name = row["helpdesk"]
        adapter = self.helpdesks.get(name)
        if adapter is None:
            return self._failed(row, f"helpdesk '{name}' is no longer configured")
        try:
            record = self._perform(adapter, row)
        except TemporaryError as exc:
            wait = exc.retry_after if exc.retry_after is not None else \
                backoff(row["attempts"])
            log.warning("%s: %s (retry in %.0fs)", name, exc, wait)
            return self._retry(row, wait, str(exc))
        except PermanentError as exc:
            return self._failed(row, str(exc))
        except Exception as exc:  # an adapter bug: retry, but loudly
            log.exception("%s: unexpected error delivering %s", name, row["action"])
            return self._retry(row, backoff(row["attempts"]), f"{type(exc).__name__}: {exc}")
        self.leases.settling(row["id"])
        now = self.clock()
        with self.store.transaction() as tx:
            if record is not None:
                record(tx, now)  # what the helpdesk now holds is true whoever owns the row
            owned = tx.complete_dispatch(row["id"], now, row["lease_owner"])
        return self._outcome(row, "delivered", owned)

    def _retry(self, row: dict[str, Any], wait: float, error: str) -> str:
        self.leases.settling(row["id"])
        with self.store.transaction() as tx:
            owned = tx.retry_dispatch(row["id"], self.clock() + wait, error,
                                      row["lease_owner"])
        return self._outcome(row, "retry", owned)

    def _failed(self, row: dict[str, Any], error: str) -> str:
        self.leases.settling(row["id"])
        now = self.clock()
        with self.store.transaction() as tx:
            owned = tx.fail_dispatch(row["id"], now, error, row["lease_owner"])
            if owned:
                tx.add_timeline(row["ticket_id"], TimelineEntry(
                    now, "helpdesk_error",
                    f"{row['helpdesk']} refused '{row['action']}': {error}",
                    data={"helpdesk": row["helpdesk"], "action": row["action"]}))
                if tx.link(row["ticket_id"], row["helpdesk"]) is not None:
                    tx.set_link_state(row["ticket_id"], row["helpdesk"], None, None, now,
                                      error)
        if owned:
            log.error("%s refused %s for ticket id %s: %s", row["helpdesk"], row["action"],
                      row["ticket_id"], error)
        return self._outcome(row, "failed", owned)

    def _outcome(self, row: dict[str, Any], outcome: str, owned: bool) -> str:
        """Count ``outcome``, or, if the claim no longer owned the row, the lost lease."""
        if owned:
            self._count(row["helpdesk"], outcome)
            return outcome
        if self.leases.lose(row["id"]) is not None:
            self._report_lost(row["helpdesk"], row["id"], f"its outcome ({outcome})")
        return "lost"

    def _lost_by_renewal(self, claim: Claim) -> None:
        self._report_lost(claim.helpdesk, claim.id, "the call still in flight")

    def _report_lost(self, helpdesk: str, dispatch_id: int, what: str) -> None:
        self._count_lease(helpdesk, "lost")
        log.warning("%s: lost the lease on dispatch row %s (%s is not recorded here): it "
                    "lapsed and another collector claimed the row", helpdesk, dispatch_id,
                    what)

    def _count(self, helpdesk: str, outcome: str) -> None:
        with self._lock:
            self.counters[(helpdesk, outcome)] += 1

    def _count_lease(self, helpdesk: str, event: str) -> None:
        with self._lock:
            self.lease_counters[(helpdesk, event)] += 1

    def _perform(self, adapter: Helpdesk, row: dict[str, Any]
                 ) -> Callable[[Transaction, float], None] | None:
        """Make the call; for a new ticket, what to store with the outcome."""
        ticket = self.store.get_ticket_by_id(row["ticket_id"])
        if ticket is None:  # tickets are never deleted
            raise LookupError(f"ticket id {row['ticket_id']} of dispatch row {row['id']} is gone")
        view = view_of(ticket, self.settings.base_url)
        name, action = row["helpdesk"], row["action"]
        link = self.store.link(ticket.stored_id, name)
        if action == "open":
            if link is not None:
                return None  # already created (a retried row after a crash)
            dest = Destination(**row["payload"]["destination"])
            ref = adapter.find(view.fingerprint, dest)
            adopted = ref is not None
            if ref is None:
                ref = adapter.open(view, dest)
                ticket_chart.attach_chart(adapter, ref, self.store, ticket, self.clock())
            there = ref  # (``ref`` is assigned again below; the closure keeps this one)

            def record(tx: Transaction, now: float) -> None:
                tx.save_link(ticket.stored_id, name, there.id, there.url, asdict(dest))
                where = f" ({there.url})" if there.url else ""
                how = "found the existing ticket" if adopted else "opened"
                tx.add_timeline(ticket.stored_id, TimelineEntry(
                    now, "helpdesk", f"{how} in {name} as #{there.id}{where}",
                    data={"helpdesk": name, "external_id": there.id, "url": there.url}))
            return record
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
        return None

    # -- reading back ---------------------------------------------------------------------

    def sync_once(self) -> int:
        """Read the status of every linked, still active ticket; returns changes made."""
        return helpdesk_sync.sync_once(self.store, self.settings, self.helpdesks, self.clock)

    def backlog(self) -> list[dict[str, Any]]:
        return self.store.dispatch_backlog(self.clock())

    def serve(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set: claim what the free workers can start, then
        wait until work is queued, a worker finishes, or ``dispatch_interval`` passes."""
        while not stop.is_set():
            try:
                for row in self.claim():
                    self._pool.submit(self._deliver, row)
            except Exception:
                log.exception("dispatch pass failed")
            self.wakeup.wait(self.settings.dispatch_interval)
            self.wakeup.clear()

    def drain(self) -> None:
        """Wait for the deliveries in flight (after :meth:`close`), so a successor
        never claims a row this one still holds."""
        self._pool.shutdown(wait=True)

    def close(self) -> None:
        self.wakeup.set()
        self.leases.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)
        for adapter in self.helpdesks.values():  # e.g. GLPI ends its API session
            closer = getattr(adapter, "close", None)
            if callable(closer):
                try:
                    closer()
                except Exception:  # shutting down: report, do not stop the others
                    log.warning("closing helpdesk adapter %s failed", adapter, exc_info=True)
