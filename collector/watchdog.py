"""Timers the collector runs on its own: verification, close, SLA, liveness, maintenance.

Every pass (default every 10 s) looks at:

- each active ticket: resolve once its check stayed OK for the verification period,
  close after the quiet period, clear flapping (:func:`collector.lifecycle.tick`); a
  group ticket resolves when every member has;
- SLA deadlines: comment when respond-by/resolve-by is near or has passed, and
  record the escalation level so the same comment is never made twice;
- hosts whose heartbeat stopped: a "host unreachable" ticket (check ``heartbeat``),
  resolved by the host's next heartbeat;
- checks whose results stopped arriving: a ticket on ``stale:<check>``;
- maintenance windows that just ended: anything still failing is ticketed at once.

Runs as an APScheduler job in ``patrol collector``; :meth:`Watchdog.run_once` is the
whole pass, for tests and for ``patrol up``.
"""

from __future__ import annotations

import logging
from typing import Any

from collector.lifecycle import heartbeat_lost, stale_checks, tick
from collector.maintenance import active_windows, ended_since
from collector.model import Ticket, TicketStatus, TimelineEntry
from collector.priority import approx, sla_watch
from collector.store.base import ConcurrentUpdate

log = logging.getLogger("patrol.collector.watchdog")


PRUNE_EVERY = 3600.0


class Watchdog:
    def __init__(self, engine: Any, retention: float = 30 * 86400) -> None:
        self.engine = engine
        self.retention = retention
        self.last_pass: float | None = None
        self.last_prune = float("-inf")
        self.passes = 0
        # Silence is counted from no earlier than this: while the collector itself was
        # down it heard nothing, and that is no host's fault (a restart is not an event).
        self.started = engine.clock()

    @property
    def store(self) -> Any:
        return self.engine.store

    def run_once(self, now: float | None = None) -> dict[str, int]:
        now = self.engine.clock() if now is None else now
        counts = {"timers": 0, "escalations": 0, "unreachable": 0, "stale": 0,
                  "maintenance_ended": 0}
        # Decide on a light snapshot and take the write lock only for tickets that
        # have something due: at 10,000 open tickets a pass must not hold up ingest.
        # Group tickets last: a parent resolves in the same pass as its last member.
        snapshot = self.store.open_tickets(light=True)
        for ticket in sorted(snapshot, key=lambda t: t.is_group):
            if not self._due(ticket, now):
                continue
            try:
                changed, escalated = self._ticket(ticket, now)
            except ConcurrentUpdate:
                continue  # changed under us: the next pass sees the new state
            counts["timers"] += changed
            counts["escalations"] += escalated
        counts["unreachable"] = self._liveness(now)
        counts["stale"] = self._stale(now, snapshot)
        counts["maintenance_ended"] = self._maintenance_ended(now)
        counts["pruned"] = self._prune(now)
        self.last_pass = now
        self.passes += 1
        return counts

    # -- per-ticket timers -------------------------------------------------------------

    def _due(self, ticket: Ticket, now: float) -> bool:
        policy = self.engine.policy
        return (ticket.is_group or bool(tick(ticket, now, policy))
                or bool(sla_watch(ticket, now, policy.sla)))

    def _ticket(self, ticket: Ticket, now: float) -> tuple[int, int]:
        with self.store.transaction() as tx:
            fresh = tx.open_group(ticket.dedup_key) if ticket.is_group else \
                tx.active_ticket(ticket.dedup_key)
            if fresh is None or fresh.id != ticket.id:
                return 0, 0
            applier = self.engine.applier(tx, now, None)
            applier.track(fresh)
            actions = tick(fresh, now, self.engine.policy)
            if fresh.is_group:
                actions += self._group_actions(tx, fresh, now)
            applier.apply(actions)
            escalations = sla_watch(fresh, now, self.engine.policy.sla)
            for escalation in escalations:
                applier.timeline(fresh, "escalation", escalation.text,
                                 level=escalation.level, deadline=escalation.deadline)
            if escalations:
                fresh.escalation = escalations[-1].level
                applier.dirty.add(fresh.id)  # type: ignore[arg-type]
                log.warning("%s %s: %s", fresh.number, fresh.priority, escalations[-1].text)
            applier.finish()
            return (1 if actions else 0), len(escalations)

    def _group_actions(self, tx: Any, parent: Ticket, now: float) -> list[Any]:
        from collector.lifecycle import Resolve

        members = tx.children(parent.id)
        if parent.status.is_open and members and all(
                m.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED) for m in members):
            return [Resolve(parent.id, now, f"all {len(members)} member tickets resolved")]
        return []

    # -- liveness ----------------------------------------------------------------------

    def _liveness(self, now: float) -> int:
        factor = self.engine.policy.liveness.heartbeat_factor
        hosts = [h for h in self.store.hosts() if h.get("reachable", True)]
        lost = heartbeat_lost([{**h, "interval_seconds": h["interval"], "last_heartbeat": max(
            h["last_heartbeat"], self.started)} for h in hosts], now, factor)
        events = []
        for name in lost:
            host = next(h for h in hosts if h["host"] == name)
            with self.store.transaction() as tx:
                tx.set_host_reachable(name, False)
            silent = approx(now - host["last_heartbeat"])
            events.append(self.engine.synthetic(
                name, "heartbeat", "heartbeat", "CRITICAL",
                f"{name} is unreachable: no heartbeat for {silent} "
                f"(expected every {approx(host['interval'])})", host.get("labels") or {},
                since=now))
        if events:
            self.engine.ingest(events)
        return len(events)

    def _stale(self, now: float, snapshot: list[Ticket]) -> int:
        factor = self.engine.policy.liveness.stale_factor
        # Results arrive with heartbeats: a check is silent only when it has missed
        # its own interval AND the heartbeats that would have carried its result.
        beat = {h["host"]: h.get("interval") or 0 for h in self.store.hosts()
                if h.get("reachable", True)}
        states = [{**s, "interval_seconds": max(s.get("interval") or 0, beat[s["host"]])
                   or None, "last_run": s["last_run"] and max(s["last_run"], self.started)}
                  for s in self.store.check_states() if s["host"] in beat]
        stale = set(stale_checks(states, now, factor))
        events = []
        for state in states:
            key = (state["host"], state["check"])
            name = f"stale:{state['check']}"
            if key in stale:
                events.append(self.engine.synthetic(
                    state["host"], name, "staleness", "WARNING",
                    f"{state['check']} on {state['host']} stopped reporting: last result "
                    f"{approx(now - state['last_run'])} ago", {}, since=state["last_run"]))
        open_stale = {t.dedup_key for t in snapshot
                      if t.status.is_open and t.check.startswith("stale:")
                      and t.recovered_at is None}
        for state in states:
            key = f"{state['host']}/stale:{state['check']}"
            if key in open_stale and (state["host"], state["check"]) not in stale:
                events.append(self.engine.synthetic(
                    state["host"], f"stale:{state['check']}", "staleness", "OK",
                    f"{state['check']} on {state['host']} reports again", {},
                    since=state["last_run"]))
        if events:
            outcomes = self.engine.ingest(events)
            return sum(o.outcome == "opened" for o in outcomes)
        return 0

    # -- housekeeping ------------------------------------------------------------------

    def _prune(self, now: float) -> int:
        """Hourly: forget received events and delivered helpdesk actions older than
        the retention (a retried POST older than that is long past its agent's
        backlog); the store would otherwise grow with every event's diagnostics."""
        if now - self.last_prune < PRUNE_EVERY:
            return 0
        self.last_prune = now
        with self.store.transaction() as tx:
            return tx.prune_events(now - self.retention) + \
                tx.prune_dispatch(now - self.retention)

    # -- maintenance -------------------------------------------------------------------

    def _maintenance_ended(self, now: float) -> int:
        if self.last_pass is None:
            return 0
        windows = self.engine.windows()
        ended = ended_since(windows, self.last_pass, now)
        if not ended:
            return 0
        hosts = {h["host"]: h.get("labels") or {} for h in self.store.hosts()}
        events = []
        for state in self.store.check_states():
            if state["status"] == "OK":
                continue
            labels = hosts.get(state["host"], {})
            matched = [w for w, _ in ended if w.matches(state["host"], labels, state["check"])]
            if not matched or active_windows(windows, state["host"], labels, state["check"],
                                             now):
                continue
            events.append(self.engine.synthetic(
                state["host"], state["check"], state["type"], state["status"],
                f"{state['summary']} (still failing when maintenance "
                f"'{matched[0].name}' ended)", labels, since=now))
        if events:
            outcomes = self.engine.ingest(events)
            for outcome in outcomes:
                # Only a ticket this opened or reopened; an old one merely repeated.
                if outcome.ticket and outcome.outcome in ("opened", "reopened"):
                    ticket = self.store.get_ticket(outcome.ticket)
                    with self.store.transaction() as tx:
                        tx.add_timeline(ticket.id, TimelineEntry(
                            now, "maintenance", "ticketed when the maintenance window ended"))
        return len(events)
