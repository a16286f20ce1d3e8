"""Events for silence: hosts whose heartbeat stopped, checks whose results stopped.

The watchdog ingests what these return like any other event, so silence is ticketed,
prioritised and resolved by the same rules. The events carry the host's labels as
its last heartbeat announced them (the hosts table): a stale check on a
``tier=critical`` host is prioritised as one, and its ticket shows the labels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from patrol.collector.model import Ticket
from patrol.collector.policy.lifecycle import heartbeat_lost, stale_checks
from patrol.contract.units import approx_duration
from patrol.contract.wire import Event

if TYPE_CHECKING:
    from patrol.collector.engine import Engine

# The longest an agent waits between delivery attempts to a collector it found down
# (agent/pusher.py's backoff cap).
AGENT_RECONNECT_SECONDS = 60.0


def counted_from(moment: float, started: float) -> float:
    """When silence since ``moment`` (a last heartbeat or result) starts to count, for
    a collector that started at ``started``: what it heard before its own start counts
    from the start plus the agents' reconnect backoff. While it was down it heard
    nothing, which is no host's fault, and agents that found it down may take up to
    their backoff cap to come back (a collector restart is not an event)."""
    return moment if moment >= started else started + AGENT_RECONNECT_SECONDS


def unreachable_events(engine: Engine, now: float, started: float) -> list[Event]:
    """A CRITICAL ``heartbeat`` event per host that went silent (marked unreachable
    here, so it is reported once; its next heartbeat marks it back).

    ``started``: when this collector started (see :func:`counted_from`)."""
    factor = engine.policy.liveness.heartbeat_factor
    hosts = {h["host"]: h for h in engine.store.hosts() if h.get("reachable", True)}
    lost = heartbeat_lost([{**h, "interval_seconds": h["interval"],
                           "last_heartbeat": counted_from(h["last_heartbeat"], started)}
                          for h in hosts.values()], now, factor)
    events = []
    for name in lost:
        host = hosts[name]
        with engine.store.transaction() as tx:
            tx.set_host_reachable(name, False)
        engine.forget_heartbeat(name)  # its next heartbeat marks it back (full path)
        silent = approx_duration(now - host["last_heartbeat"])
        events.append(engine.synthetic(
            name, "heartbeat", "heartbeat", "CRITICAL",
            f"{name} is unreachable: no heartbeat for {silent} "
            f"(expected every {approx_duration(host['interval'])})", host.get("labels") or {},
            since=now))
    return events


def stale_events(engine: Engine, now: float, snapshot: list[Ticket],
                 started: float) -> list[Event]:
    """A WARNING ``stale:<check>`` event per check gone silent on a reachable host, and
    an OK one for each open stale ticket whose check reports again. Results due while
    this collector was down are judged as :func:`counted_from` says."""
    liveness = engine.policy.liveness
    hosts = {h["host"]: h for h in engine.store.hosts() if h.get("reachable", True)}
    # Results arrive with heartbeats: a check is silent only when it has missed its
    # own schedule AND the heartbeats that would have carried its result.
    states = []
    for state in engine.store.check_states():
        host = hosts.get(state["host"])
        if host is None:
            continue
        beat = host.get("interval") or 0
        interval = max(state.get("interval") or 0, beat) if state.get("interval") else None
        states.append({**state, "interval_seconds": interval, "heartbeat": beat})
    judged = [{**state, **{key: counted_from(state[key], started)
                           for key in ("last_run", "next_due") if state.get(key) is not None}}
              for state in states]
    stale = set(stale_checks(judged, now, liveness.stale_factor, liveness.stale_grace,
                             liveness.stale_timeout_factor))
    open_stale = {t.dedup_key for t in snapshot
                  if t.status.is_open and t.check.startswith("stale:")
                  and t.recovered_at is None}
    events = []
    for state in states:
        host, check = state["host"], state["check"]
        labels = hosts[host].get("labels") or {}
        if (host, check) in stale:
            events.append(engine.synthetic(
                host, f"stale:{check}", "staleness", "WARNING",
                f"{check} on {host} stopped reporting: {_silence(state, now)}", labels,
                since=state["last_run"]))
        elif f"{host}/stale:{check}" in open_stale:
            events.append(engine.synthetic(
                host, f"stale:{check}", "staleness", "OK", f"{check} on {host} reports again",
                labels, since=state["last_run"]))
    return events


def _silence(state: dict[str, Any], now: float) -> str:
    last = state.get("last_run")
    text = "no result yet" if last is None else f"last result {approx_duration(now - last)} ago"
    if state.get("next_due") is not None:
        text += f", its run due {approx_duration(now - state['next_due'])} ago did not report"
    return text
