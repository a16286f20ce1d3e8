"""Timers the collector runs on its own: verification, close, SLA, liveness, maintenance.

Every pass (default every 10 s) runs these duties, each on its own
(:mod:`collector.watchdog.duties`: a duty, or one ticket's step, that raises is logged with the
ticket's number, counted in ``/metrics`` and retried next pass; the rest run on time):

- ``timers``, per active ticket: resolve once its check stayed OK for the
  verification period, close after the quiet period, clear flapping
  (:func:`collector.policy.lifecycle.tick`); a group ticket resolves when every member has;
- ``sla``, per open ticket: respond-by/resolve-by near or passed reaches people
  (:mod:`collector.watchdog.escalate`): the timeline, the ticket's helpdesks, a priority bump
  and a paging route where the policy says, once per level;
- ``liveness``: hosts whose heartbeat stopped get a "host unreachable" ticket (check
  ``heartbeat``), resolved by the host's next heartbeat;
- ``staleness``: checks whose results stopped arriving (:mod:`collector.watchdog.silence`);
- ``maintenance_end``: anything still failing when a window ends is ticketed at once,
  whatever its source (:mod:`collector.watchdog.maintenance_end`);
- ``prune``: hourly, old events and delivered helpdesk actions are forgotten;
- ``statistics``: the planner's statistics of the tickets table, refreshed once many
  rows changed (PostgreSQL; the ticket list's plan depends on them; store.refresh_statistics);
- ``reports``: the config's scheduled reports, archived and mailed once each
  (:mod:`collector.watchdog.reports`; set as :attr:`Watchdog.reports` by the service).

Only the leader runs them (:mod:`collector.watchdog.leader`): several replicas on one
PostgreSQL database would otherwise each comment and escalate. The helpdesk sync
runs in its own loop but through :meth:`Watchdog.sync`, so it is led and contained
the same way.

Runs in a thread of ``patrol collector``; :meth:`Watchdog.run_once` is the whole
pass, for tests and for ``patrol up``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from patrol.collector.model import Ticket, TicketStatus
from patrol.collector.policy.lifecycle import Resolve, tick
from patrol.collector.policy.priority import RESOLVE_NEAR, RESPOND_NEAR, sla_watch
from patrol.collector.store.base import ConcurrentUpdate, WatchWindow
from patrol.collector.watchdog.duties import DutyHealth
from patrol.collector.watchdog.escalate import escalate
from patrol.collector.watchdog.leader import AlwaysLeader, Leadership
from patrol.collector.watchdog.maintenance_end import still_firing_at_window_end
from patrol.collector.watchdog.silence import stale_events, unreachable_events

if TYPE_CHECKING:
    from patrol.collector.dispatch.dispatcher import Dispatcher
    from patrol.collector.engine import Engine
    from patrol.collector.store.base import TicketStore, Transaction
    from patrol.collector.watchdog.reports import ScheduledReports

log = logging.getLogger("patrol.collector.watchdog")


PRUNE_EVERY = 3600.0
PAGE = 1000  # open tickets judged per read (light rows, ~3 KiB each in memory)


class Watchdog:
    def __init__(self, engine: Engine, retention: float = 30 * 86400,
                 leadership: Leadership | None = None) -> None:
        self.engine = engine
        self.retention = retention
        self.leadership = leadership or AlwaysLeader()
        self.health = DutyHealth()
        self.leader = False
        self.last_pass: float | None = None
        # Maintenance ends are looked for in (checked_to, now]; it moves only when the
        # duty succeeded, so a window end is not lost to a failed pass.
        self.maintenance_checked_to: float | None = None
        self.last_prune = float("-inf")
        self.passes = 0
        self.reports: ScheduledReports | None = None  # the config's ``reports:`` schedules
        # Silence is counted from no earlier than this: while the collector itself was
        # down it heard nothing, and that is no host's fault (a restart is not an event).
        # (collector.watchdog.silence.counted_from).
        self.started = engine.clock()

    @property
    def store(self) -> TicketStore:
        return self.engine.store

    def run_once(self, now: float | None = None) -> dict[str, int]:
        now = self.engine.clock() if now is None else now
        counts = {"timers": 0, "escalations": 0, "unreachable": 0, "stale": 0,
                  "maintenance_ended": 0, "pruned": 0}
        self.leader = self.leadership.lead()
        if self.leader:
            self.engine.flush_heartbeats()  # kept heartbeat times: see collector/heartbeats
            self._duties(now, counts)
        else:
            self.maintenance_checked_to = now  # the leader handles the ends until now
        self.last_pass = now
        self.passes += 1
        return counts

    def sync(self, dispatcher: Dispatcher) -> int:
        """The helpdesk read-back, led and contained like the watchdog's own duties."""
        if not self.leader:
            return 0
        changes = self._duty("helpdesk_sync", dispatcher.sync_once, self.engine.clock())
        return changes or 0

    def _duty(self, name: str, work: Callable[[], Any], now: float) -> Any:
        result = self.health.attempt(name, work)
        if result is not None:
            self.health.succeeded(name, now)
        return result

    def _duties(self, now: float, counts: dict[str, int]) -> None:
        # Decide on light snapshots, a page at a time (100,000 open tickets at once
        # held ~300 MiB), and take the write lock only for tickets that have something
        # due: at 10,000 open tickets a pass must not hold up ingest.
        watched = self.health.attempt("timers", lambda: self._per_ticket(now))
        if watched is not None:
            counts["timers"], counts["escalations"], open_stale = watched
        counts["unreachable"] = self._duty("liveness", lambda: self._ingest_opened(
            unreachable_events(self.engine, now, self.started)), now) or 0
        if watched is not None:
            counts["stale"] = self._duty(
                "staleness", lambda: self._ingest_opened(stale_events(
                    self.engine, now, open_stale, self.started)), now) or 0
        counts["maintenance_ended"] = self._duty(
            "maintenance_end", lambda: self._maintenance_ended(now), now) or 0
        counts["pruned"] = self._duty("prune", lambda: self._prune(now), now) or 0
        self._duty("statistics", self.store.refresh_statistics, now)
        if self.reports is not None:
            reports = self.reports
            counts["reports_mailed"] = self._duty("reports", lambda: reports.run(now),
                                                  now) or 0

    def _per_ticket(self, now: float) -> tuple[int, int, list[Ticket]]:
        """Each open ticket's timer and SLA steps, each failing alone (deciding whether
        one is due included: a ticket the policy cannot judge must not stop the rest);
        group tickets last, so a parent resolves in the same pass as its last member.
        Also returns the open ``stale:`` tickets, all the staleness duty reads."""
        totals = {"timers": 0, "sla": 0}
        failed: set[str] = set()
        groups, open_stale = [], []
        for page in self.store.watched_ticket_pages(self.watch_window(now), PAGE):
            for ticket in page:
                if ticket.check.startswith("stale:"):
                    open_stale.append(ticket)
                if ticket.is_group:
                    groups.append(ticket)
                else:
                    self._steps(ticket, now, totals, failed)
        for ticket in groups:
            self._steps(ticket, now, totals, failed)
        for duty in totals.keys() - failed:
            self.health.succeeded(duty, now)
        return totals["timers"], totals["sla"], open_stale

    def watch_window(self, now: float) -> WatchWindow:
        """The open tickets a pass at ``now`` must judge (see :class:`WatchWindow`): what
        :func:`~patrol.collector.policy.lifecycle.tick` and
        :func:`~patrol.collector.policy.priority.sla_watch` can act on, bounded with the
        longest lead any priority has, so a ticket left out has nothing due."""
        policy = self.engine.policy
        sla = policy.sla
        lead = 1 - sla.near_ratio  # "near" starts this share of the target before due
        return WatchWindow(
            now=now,
            respond_near={p.value: now + lead * t for p, t in sla.respond.items()},
            resolve_near={p.value: now + lead * t for p, t in sla.resolve.items()},
            resolved_before=now - policy.lifecycle.close_after,
            respond_near_level=RESPOND_NEAR, resolve_near_level=RESOLVE_NEAR)

    def _steps(self, ticket: Ticket, now: float, totals: dict[str, int],
               failed: set[str]) -> None:
        for duty, step in (("timers", self._timers), ("sla", self._sla)):
            done = self.health.attempt(duty, functools.partial(step, ticket, now),
                                       subject=ticket.number)
            if done is None:
                failed.add(duty)
            else:
                totals[duty] += done

    # -- per-ticket steps ----------------------------------------------------------------

    def _fresh(self, tx: Transaction, ticket: Ticket) -> Ticket | None:
        fresh = tx.open_group(ticket.dedup_key) if ticket.is_group else \
            tx.active_ticket(ticket.dedup_key)
        return fresh if fresh is not None and fresh.id == ticket.id else None

    def _timers(self, ticket: Ticket, now: float) -> int:
        if not (ticket.is_group or tick(ticket, now, self.engine.policy)):
            return 0  # judged on the light snapshot: nothing due, no write lock taken
        try:
            with self.store.transaction() as tx:
                fresh = self._fresh(tx, ticket)
                if fresh is None:
                    return 0
                applier = self.engine.applier(tx, now, None)
                applier.track(fresh)
                actions = tick(fresh, now, self.engine.policy)
                if fresh.is_group:
                    actions += self._group_actions(tx, fresh, now)
                applier.apply(actions)
                applier.finish()
                return 1 if actions else 0
        except ConcurrentUpdate:
            return 0  # changed under us: the next pass sees the new state

    def _sla(self, ticket: Ticket, now: float) -> int:
        if not sla_watch(ticket, now, self.engine.policy.sla):
            return 0
        try:
            with self.store.transaction() as tx:
                fresh = self._fresh(tx, ticket)
                if fresh is None:
                    return 0
                return escalate(tx, fresh, now, self.engine)
        except ConcurrentUpdate:
            return 0

    def _group_actions(self, tx: Transaction, parent: Ticket, now: float) -> list[Any]:
        members = tx.children(parent.stored_id)
        if parent.status.is_open and members and all(
                m.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED) for m in members):
            return [Resolve(parent.id, now, f"all {len(members)} member tickets resolved")]
        return []

    # -- silence and maintenance ---------------------------------------------------------

    def _ingest_opened(self, events: list[Any]) -> int:
        if not events:
            return 0
        outcomes = self.engine.ingest(events)
        return sum(o.outcome == "opened" for o in outcomes)

    def _maintenance_ended(self, now: float) -> int:
        since = self.maintenance_checked_to
        found = 0 if since is None else still_firing_at_window_end(self.engine, since, now)
        self.maintenance_checked_to = now
        return found

    # -- housekeeping ------------------------------------------------------------------

    def _prune(self, now: float) -> int:
        """Hourly: forget received events and delivered helpdesk actions older than
        the retention (a retried POST older than that is long past its agent's
        backlog); the store would otherwise grow with every event's diagnostics."""
        if now - self.last_prune < PRUNE_EVERY:
            return 0
        with self.store.transaction() as tx:
            pruned = tx.prune_events(now - self.retention) + \
                tx.prune_dispatch(now - self.retention) + tx.prune_history(now) + \
                tx.prune_check_set_pulls(now - self.retention)
        self.last_prune = now
        return pruned
