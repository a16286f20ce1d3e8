"""The collector's engine: events and heartbeats in, tickets out.

Each event is one unit of work on its ``dedup_key``: record it (a retried POST
with the same ``event_id`` is recognised and changes nothing), read the tickets it can
touch (its key's, its group's), decide with the pure policy
(:func:`collector.policy.correlate.decide`, grouping included), apply the steps. A
``ConcurrentUpdate`` from the store means another worker changed the ticket first:
the whole unit is retried, so concurrent updates are never lost.

Heartbeats carry every check's state: the engine reconciles them against the
tickets, synthesising the events it missed (an agent that crashed between a state
change and its delivery, a check that recovered while the collector was down).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from patrol.collector.ingest.heartbeats import Measured, QuietHeartbeats, Run
from patrol.collector.ingest.history import (
    record_batch_samples,
    record_event_series,
    samples_of,
)
from patrol.collector.model import Ticket, TimelineEntry
from patrol.collector.policy.correlate import decide, opens
from patrol.collector.policy.grouping import NO_GROUP, GroupView, group_key
from patrol.collector.policy.maintenance import MaintenanceWindow, active_windows, host_zone
from patrol.collector.policy.settings import PolicyConfig
from patrol.collector.store.base import ConcurrentUpdate, StoreError
from patrol.collector.store.sql import model_json
from patrol.collector.tickets.apply import Applier
from patrol.collector.tickets.archive import last_fix
from patrol.collector.tickets.body import render_body, verify_command
from patrol.collector.tickets.fleet import FleetNotices
from patrol.contract.wire import SEVERITY_OF_STATUS, AgentRef, Event, Heartbeat

if TYPE_CHECKING:
    from patrol.collector.dispatch.dispatcher import Dispatcher
    from patrol.collector.store.base import TicketStore, Transaction
    from patrol.collector.watchdog.timers import Watchdog

log = logging.getLogger("patrol.collector")
RETRIES = 20
BATCH_RETRIES = 3  # then event by event: see Engine.ingest


@dataclass(frozen=True)
class Outcome:
    """What became of one event: opened, repeated, updated, reopened, recovering,
    resolved, suppressed, duplicate or ignored; and the ticket it touched."""

    event_id: str
    outcome: str
    ticket: str | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "outcome": self.outcome, "ticket": self.ticket,
                "note": self.note}


class Engine:
    """Owns the store and the policy; every method is safe to call from many threads."""

    def __init__(self, store: TicketStore, policy: PolicyConfig | None = None,
                 clock: Callable[[], float] = time.time,
                 agent_config_path: str = "/etc/patrol/agent.yaml") -> None:
        self.store = store
        self.policy = policy or PolicyConfig()
        self.clock = clock
        self.agent_config_path = agent_config_path
        self.language = "en"  # of ticket bodies: the collector config's ``language``
        # The operator's first actions per check type (collector.knowledge_file), read
        # at start and on reload, shown first in the bodies of new tickets.
        self.own_actions: Mapping[str, tuple[str, ...]] = {}
        self.counters = {"events": 0, "duplicates": 0, "heartbeats": 0, "opened": 0,
                         "reopened": 0, "resolved": 0, "retries": 0}
        self._lock = threading.Lock()
        self._windows: tuple[float, list[MaintenanceWindow]] = (0.0, [])
        self.dispatcher: Dispatcher | None = None  # when helpdesks exist
        self.watchdog: Watchdog | None = None  # set by the service: /metrics reads it
        self.quiet = QuietHeartbeats(store)

    def notify(self, tx: Transaction, ticket: Ticket, action: str, text: str, now: float) -> None:
        """Queue helpdesk work for a ticket change, in the caller's transaction; a
        fleet incident reaches the helpdesk as one ticket (:mod:`collector.tickets.fleet`)."""
        if self.dispatcher is not None:
            FleetNotices(self.dispatcher, self.policy.grouping.label).notify(
                tx, ticket, action, text, now)

    def applier(self, tx: Transaction, now: float, event: Event | None,
                fixes: dict[str, list[dict[str, Any]]] | None = None) -> Applier:
        """``fixes``: the unit of work's archived fixes per check type, read once for
        all the bodies it renders (:func:`collector.tickets.archive.last_fix`)."""
        return Applier(tx, now, lambda tx_, ticket, pending=(): self._render(
            tx_, ticket, event, pending, fixes), self.notify)

    # -- maintenance windows (cached briefly: read on every event) ----------------------

    def windows(self) -> list[MaintenanceWindow]:
        loaded_at, windows = self._windows
        if self.clock() - loaded_at > 5:
            windows = [MaintenanceWindow.model_validate(
                {k: v for k, v in w.items() if k not in ("id", "origin")})
                for w in self.store.maintenance_windows()]
            self._windows = (self.clock(), windows)
        return windows

    def invalidate_windows(self) -> None:
        self._windows = (0.0, [])

    def sync_config_windows(self, windows: list[MaintenanceWindow]) -> None:
        """Make the store's config-defined windows exactly the config's (windows
        added through the API are left alone)."""
        with self.store.transaction() as tx:
            for stored in tx.maintenance_windows():
                if stored.get("origin") == "config":
                    tx.delete_maintenance(stored["id"])
            for window in windows:
                tx.add_maintenance({**window.model_dump(mode="json", by_alias=True,
                                                        exclude_none=True), "origin": "config"})
        self.invalidate_windows()

    # -- events -------------------------------------------------------------------------

    def ingest(self, events: list[Event]) -> list[Outcome]:
        """Process events in per-agent sequence order; returns one outcome per event,
        in the order given (a client matches them to its batch by position).

        A batch whose events all have distinct dedup_keys (and ids) is one unit of
        work: one transaction, one multi-row insert of the events, one read of which
        keys have tickets at all; per event only what is per event. Per-key
        serialisation still holds (the store locks every key of the batch up front,
        in a stable order, so two batches cannot deadlock on each other). A batch that
        keeps meeting concurrent updates falls back to one unit of work per event, so
        one contended key cannot starve the other 99 events."""
        if len(events) > 1 and len({e.dedup_key for e in events}) == len(events) \
                and len({e.event_id for e in events}) == len(events):
            done = self._one_unit(events)
            if done is not None:
                return done
        order = sorted(range(len(events)), key=lambda i: (events[i].agent.id, events[i].sequence))
        outcomes: list[Outcome | None] = [None] * len(events)
        for index in order:
            outcomes[index] = self._with_retries(self._ingest_one, events[index])
        return outcomes  # type: ignore[return-value]  # every index is filled

    def ingest_requests(self, requests: Sequence[Sequence[Event]]) -> list[list[Outcome]] | None:
        """Several requests' events as ONE unit of work (the ingest worker's requests
        waiting together: collector/ingest/worker.py), the outcomes split back per
        request. The caller guarantees distinct dedup_keys and event_ids across all of
        them. None when the unit failed for anything but the store (rolled back whole:
        the caller then runs each request alone, so a poison event fails only its own);
        a StoreError is raised."""
        flat = [event for events in requests for event in events]
        done = self._one_unit(flat)
        if done is None:
            return None
        split, start = [], 0
        for events in requests:
            split.append(done[start:start + len(events)])
            start += len(events)
        return split

    def _one_unit(self, events: Sequence[Event]) -> list[Outcome] | None:
        """Events with distinct keys and ids as one unit of work, in per-agent sequence
        order, outcomes in the order given; None if it never got through."""
        order = sorted(range(len(events)), key=lambda i: (events[i].agent.id, events[i].sequence))
        done = self._batch_with_retries([events[i] for i in order])
        if done is None:
            return None
        outcomes: list[Outcome] = [done[0]] * len(events)
        for index, outcome in zip(order, done, strict=True):
            outcomes[index] = outcome
        return outcomes

    def _batch_with_retries(self, batch: list[Event]) -> list[Outcome] | None:
        """The batch as one unit of work, retried a few times; None if it never got
        through (the caller then goes event by event)."""
        for attempt in range(BATCH_RETRIES):
            try:
                return self._ingest_batch(batch)
            except ConcurrentUpdate:
                self._count("retries")
                time.sleep(min(0.001 * 2 ** attempt, 0.05))
            except StoreError:
                raise  # the store is failing: event by event would fail the same way
            except Exception:  # one poison event: let it fail alone, event by event
                log.debug("batch failed as a whole; retrying event by event", exc_info=True)
                return None
        return None

    def _with_retries(self, work: Callable[..., Any], *args: Any) -> Any:
        for attempt in range(RETRIES):
            try:
                return work(*args)
            except ConcurrentUpdate:
                self._count("retries")
                time.sleep(min(0.001 * 2 ** attempt, 0.05))
        return work(*args)

    def _count(self, name: str, by: int = 1) -> None:
        with self._lock:
            self.counters[name] += by

    def _ingest_one(self, event: Event) -> Outcome:
        return self._ingest_batch([event])[0]

    def _ingest_batch(self, batch: list[Event]) -> list[Outcome]:
        """One unit of work for events with distinct dedup_keys, in the order given."""
        now = self.clock()
        # Read before the transaction: a store read inside it would need a second pooled
        # connection while holding one, and enough concurrent units would starve the pool.
        maintenance = self.windows()
        zones = {e.source: host_zone(self.store, e.source, maintenance) for e in batch}
        results: list[tuple[Outcome, Applier | None]] = []
        with self.store.transaction() as tx:
            triggers = sum(e.action == "trigger" for e in batch)
            if len(batch) > 1 and triggers:
                tx.reserve_serials(now, triggers)  # most triggers of a batch are new
            recorded = tx.record_events(
                [(e.event_id, e.dedup_key, now, model_json(e)) for e in batch])
            fresh = [e for e in batch if e.event_id in recorded]
            ticketed = tx.keys_with_tickets([e.dedup_key for e in fresh]) \
                if len(fresh) > 1 else None
            if ticketed is not None:  # a new incident's body lists past ones: read at once
                tx.prefetch_past((e.source, e.check) for e in fresh
                                 if e.dedup_key not in ticketed and e.action == "trigger")
            record_batch_samples(tx, fresh)
            fixes: dict[str, list[dict[str, Any]]] = {}  # per check type, for the bodies
            for event in batch:
                if event.event_id not in recorded:
                    active = tx.active_ticket(event.dedup_key)
                    results.append((Outcome(event.event_id, "duplicate",
                                            active.number if active else None), None))
                    continue
                record_event_series(tx, event)  # the breach series it carries
                known = ticketed is None or event.dedup_key in ticketed
                results.append(self._apply_event(tx, event, now, maintenance,
                                                 zones[event.source], known, fixes))
        counts: dict[str, int] = {}
        for outcome, applier in results:
            name = "duplicates" if applier is None else "events"
            counts[name] = counts.get(name, 0) + 1
            if applier is not None and outcome.outcome in ("opened", "reopened", "resolved"):
                counts[outcome.outcome] = counts.get(outcome.outcome, 0) + 1
        with self._lock:
            for name, by in counts.items():
                self.counters[name] += by
        if self.dispatcher is not None and any(a is not None and a.notices
                                               for _, a in results):
            self.dispatcher.wakeup.set()  # committed now: visible to the workers
        return [outcome for outcome, _ in results]

    def _apply_event(self, tx: Transaction, event: Event, now: float,
                     maintenance: list[MaintenanceWindow], zone: str | None,
                     known: bool, fixes: dict[str, list[dict[str, Any]]] | None = None
                     ) -> tuple[Outcome, Applier]:
        """Decide and apply one recorded event inside the unit of work. ``known`` False
        means the batch's read showed the key has no ticket at all (the common new
        incident): the two per-key reads are answered without asking."""
        if known:
            # No ticket at all for the key (a new incident, the common case): then no
            # active one either, and one query does for both.
            latest = tx.latest_ticket(event.dedup_key)
            active = tx.active_ticket(event.dedup_key) if latest is not None else None
        else:
            latest = active = None
            tx.known_vacant(event.dedup_key)
        windows = active_windows(maintenance, event.source, event.labels,
                                 event.check, now, zone)
        group = self._group_view(tx, event, active, latest, now, bool(windows))
        steps = decide(event, active, latest, now, self.policy,
                       in_maintenance=bool(windows), windows=[w.name for w in windows],
                       group=group)
        applier = self.applier(tx, now, event, fixes)
        for ticket in (active, latest, group.open_group, group.parent):
            if ticket is not None and ticket.id is not None:
                applier.track(ticket)
        applier.apply(steps)
        touched = applier.opened[-1] if applier.opened else (active or latest)
        if touched is not None and touched.id is not None and \
                touched.id in applier.tickets and applier.outcome != "suppressed" and \
                self._refresh_evidence(applier.tickets[touched.id], event):
            applier.dirty.add(touched.id)
        applier.finish()
        number = touched.number if touched is not None and \
            applier.outcome != "suppressed" else None
        return Outcome(event.event_id, applier.outcome, number, applier.note), applier

    @staticmethod
    def _refresh_evidence(ticket: Ticket, event: Event) -> bool:
        """The latest measurements, and diagnostics when the event carries new ones;
        whether that changed the ticket (a ticket just opened from this event already
        holds them: no write for it)."""
        before = (ticket.measurements, ticket.diagnostics)
        if event.measurements:
            ticket.measurements = [m.model_dump() for m in event.measurements]
        if event.diagnostics and event.action == "trigger":
            ticket.diagnostics = dict(event.diagnostics)
        return (ticket.measurements, ticket.diagnostics) != before

    def _render(self, tx: Transaction, ticket: Ticket, event: Event | None,
                pending: Sequence[TimelineEntry] = (),
                fixes: dict[str, list[dict[str, Any]]] | None = None) -> str:
        past = [t for t in tx.past_tickets(ticket.host, ticket.check, limit=6)
                if t.id != ticket.id][:5]
        timeline = [*(tx.timeline(ticket.id) if ticket.id is not None else []), *pending]
        parent = tx.get_ticket_by_id(ticket.parent_id) if ticket.parent_id else None
        return render_body(ticket, event, past, timeline,
                           verify_command(ticket.check, self.agent_config_path),
                           parent.number if parent is not None else None,
                           last_fix=last_fix(tx, ticket, fixes), language=self.language,
                           own_actions=self.own_actions.get(ticket.check_type, ()))

    def _group_view(self, tx: Transaction, event: Event, active: Ticket | None,
                    latest: Ticket | None, now: float, in_maintenance: bool) -> GroupView:
        """The group tickets ``event`` can touch (:class:`GroupView`), read only where
        the decision may need them: a trigger that can open a ticket (not in
        maintenance) needs its group's open ticket and the check's firing tickets; one
        that can reopen a member, or change an open member's severity, needs that
        member's group ticket (and, for the severity, the group's members)."""
        if event.action != "trigger":
            return NO_GROUP
        if active is not None and active.status.is_open:
            if event.severity == active.severity or active.parent_id is None:
                return NO_GROUP
            parent = tx.get_ticket_by_id(active.parent_id)
            return GroupView(parent=parent, members=tuple(
                tx.children(parent.stored_id) if parent is not None else ()))
        if in_maintenance:  # nothing opens or reopens
            return NO_GROUP
        if not opens(event, active, latest, now, self.policy):  # a reopen
            last = active if active is not None else latest
            return GroupView(parent=tx.get_ticket_by_id(last.parent_id)) \
                if last is not None and last.parent_id is not None else NO_GROUP
        grouping = self.policy.grouping
        value = event.labels.get(grouping.label)
        if not value:
            return NO_GROUP
        # The group ticket first: reading it takes the group's key lock (PostgreSQL),
        # so the firing tickets read next include every member committed before us.
        open_group = tx.open_group(group_key(event.check, grouping.label, value))
        firing = tx.list_tickets(status=["new", "in_progress", "pending"],
                                 check=event.check, limit=1000)
        return GroupView(open_group, tuple(t for t in firing if not t.is_group))

    # -- heartbeats ---------------------------------------------------------------------

    def heartbeat_unchanged(self, beat: Heartbeat) -> dict[str, Any] | None:
        """The answer to a heartbeat that changes nothing reconciliation reads since this
        host's last full pass (its times, summaries and samples are written with others
        shortly: collector/ingest/heartbeats.py), or None when it needs :meth:`heartbeat`.
        Never touches the store: cheap enough for the event loop."""
        if not self.quiet.keep(beat, self.clock()):
            return None
        self._count("heartbeats")
        return {"host": beat.source, "checks": len(beat.checks), "reconciled": []}

    def heartbeat_kept(self, host: str, runs: list[Run], samples: list[Measured]
                       ) -> dict[str, Any] | None:
        """The answer to a quiet heartbeat recognised by its shape
        (:meth:`QuietHeartbeats.matching`), its runs and samples kept; None if it needs
        the full path after all."""
        if not self.quiet.keep_runs(host, runs, samples, self.clock()):
            return None
        self._count("heartbeats")
        return {"host": host, "checks": len(runs), "reconciled": []}

    def flush_heartbeats(self) -> int:
        """Write the times of the heartbeats kept in memory now (before judging silence)."""
        return self.quiet.flush()

    def forget_heartbeat(self, host: str) -> None:
        """The host was marked unreachable: its next heartbeat takes the full path."""
        self.quiet.forget(host)

    def heartbeat(self, beat: Heartbeat) -> dict[str, Any]:
        """Record the host and its check grid; reconcile missed state changes."""
        now = self.clock()
        self._count("heartbeats")
        kept = self.quiet.take(beat.source)  # folded before this run's, as they came
        with self.store.transaction() as tx:
            known = tx.host(beat.source)
            tx.upsert_host(beat.source, beat.agent.id, beat.agent.version, dict(beat.labels),
                           now, beat.interval_seconds, beat.timezone, beat.metrics_address)
            tx.set_check_states(beat.source, [
                {"check": c.check, "type": c.type, "status": c.status, "summary": c.summary,
                 "since": c.since.timestamp() if c.since else None,
                 "last_run": c.last_run.timestamp() if c.last_run else None,
                 "interval": c.interval_seconds, "timeout": c.timeout_seconds,
                 "next_due": c.next_due.timestamp() if c.next_due else None}
                for c in beat.checks])
            tx.record_samples(beat.source, [*kept, *samples_of(beat)])
            if known is not None and not known.get("reachable", True):
                tx.set_host_reachable(beat.source, True)
        synthetic = self.reconcile(beat, now)
        if known is not None and not known.get("reachable", True):
            synthetic.append(self.synthetic(beat.source, "heartbeat", "heartbeat", "OK",
                                            f"{beat.source} is reachable again", beat.labels))
        outcomes = self.ingest(synthetic) if synthetic else []
        self.quiet.processed(beat, now, reachable=True)
        return {"host": beat.source, "checks": len(beat.checks),
                "reconciled": [o.as_dict() for o in outcomes if o.outcome != "duplicate"]}

    def reconcile(self, beat: Heartbeat, now: float) -> list[Event]:
        """Events the collector should have had, judged from the agent's full state:
        a failing check without an open ticket, or an OK check whose ticket is not
        yet recovering. A recovering ticket is left to the next real event; a check
        that has not run since the agent started tells nothing."""
        tickets = {t.dedup_key: t for t in self.store.list_tickets(
            status=["new", "in_progress", "pending"], host=beat.source, limit=10000)
            if not t.is_group}
        missing = []
        for check in beat.checks:
            active = tickets.get(f"{beat.source}/{check.check}")
            since = check.since.timestamp() if check.since else now
            labels = {**beat.labels, **check.labels}
            if check.status != "OK" and active is None:
                if self._settled(beat.source, check.check, since):
                    continue
                missing.append(self.synthetic(beat.source, check.check, check.type,
                                              check.status, check.summary, labels, since))
            elif check.status == "OK" and check.last_run is not None and active is not None \
                    and active.recovered_at is None:  # "not run yet" is no news (a restart)
                missing.append(self.synthetic(beat.source, check.check, check.type, "OK",
                                              check.summary, labels, since))
        return missing

    def _settled(self, host: str, check: str, since: float) -> bool:
        """Whether an operator already ended this very failure (resolved or closed it
        with force while the check failed, a won't-fix decision): the latest ticket ended
        at or after the failure began and its check was not OK then. Reconciling it
        would reopen the ticket every heartbeat."""
        latest = self.store.list_tickets(host=host, check=check, limit=1)
        if not latest or latest[0].is_group or latest[0].status.is_open:
            return False
        ended = latest[0].resolved_at if latest[0].resolved_at is not None \
            else latest[0].closed_at
        return latest[0].check_status != "OK" and ended is not None and ended >= since

    def synthetic(self, host: str, check: str, check_type: str, status: str, summary: str,
                  labels: dict[str, str], since: float | None = None) -> Event:
        """An event the collector makes itself (reconciliation, liveness, maintenance
        end). Its id is derived from what it says, so making it twice is harmless."""
        moment = since if since is not None else self.clock()
        identity = f"{host}|{check}|{status}|{moment:.3f}"
        return Event(
            event_id="syn-" + hashlib.sha256(identity.encode()).hexdigest()[:28],
            dedup_key=f"{host}/{check}", action="resolve" if status == "OK" else "trigger",
            # status: a check status as str from the callers; Event validates it
            severity=SEVERITY_OF_STATUS[status], status=status,  # type: ignore[arg-type]
            summary=summary[:1024] or f"{check} is {status} on {host}", source=host,
            check=check, type=check_type,
            labels={k: v for k, v in labels.items() if k.isidentifier()},
            observed_at=datetime.fromtimestamp(moment, UTC),
            agent=AgentRef(id="collector", version="1"), sequence=0,
        )
