"""When a maintenance window ends, whatever is still firing under it is ticketed at once.

During a window the engine records every event and suppresses the ticket. At the
window's end the watchdog asks, for each dedup_key the window covered, what its
latest state is, from two sources:

- agent checks: the check grid (``check_states``) the agents' heartbeats keep current;
- everything else (Alertmanager alerts, events POSTed by scripts): the latest event
  received for the key since the occurrence began, from the events table. An alert
  whose latest event is a trigger is still firing; one that sent a resolve is not.

Each key still failing, matched by a window that just ended and not covered by another
window still running, is ingested again as it was last seen (a new, derived event id,
so ingesting it twice is harmless): a key without a ticket gets one, saying why it
opened now; one ticketed before the window began merely repeats.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from patrol.collector.model import TimelineEntry
from patrol.collector.policy.maintenance import MaintenanceWindow, active_windows, ended_since
from patrol.contract.wire import Event

if TYPE_CHECKING:
    from patrol.collector.engine import Engine


def still_firing_at_window_end(engine: Engine, since: float, now: float) -> int:
    """Ticket what is still failing under windows that ended in ``(since, now]``;
    how many keys were ingested again."""
    windows = engine.windows()
    hosts = {h["host"]: h for h in engine.store.hosts()}
    # ``timezone: host`` windows end at a different moment in each zone of the fleet.
    zones = {h.get("timezone") for h in hosts.values()} | {None}
    ended = {zone: ended_since(windows, since, now, zone) for zone in zones}
    if not any(ended.values()):
        return 0
    began = min(end - window.length_in(zone) for zone, pairs in ended.items()
                for window, end in pairs)
    firing = _agent_checks(engine, hosts, now)
    for key, event in _event_sources(engine, began).items():
        firing.setdefault(key, event)
    events = []
    for event in firing.values():
        zone = (hosts.get(event.source) or {}).get("timezone")
        matched = [(w, end) for w, end in ended.get(zone, ())
                   if w.matches(event.source, event.labels, event.check)]
        if not matched or active_windows(windows, event.source, event.labels, event.check,
                                         now, zone):
            continue
        events.append(_again(event, *matched[0], now))
    if not events:
        return 0
    for outcome in engine.ingest(events):
        if outcome.ticket and outcome.outcome in ("opened", "reopened"):
            ticket = engine.store.get_ticket(outcome.ticket)
            if ticket is None:  # just opened, and tickets are never deleted
                continue
            with engine.store.transaction() as tx:
                tx.add_timeline(ticket.stored_id, TimelineEntry(
                    now, "maintenance", "ticketed when the maintenance window ended"))
    return len(events)


def _agent_checks(engine: Engine, hosts: dict[str, dict[str, Any]],
                  now: float) -> dict[str, Event]:
    """Failing checks of the grid, as events carrying their host's labels."""
    return {f"{s['host']}/{s['check']}": engine.synthetic(
        s["host"], s["check"], s["type"], s["status"], s["summary"],
        (hosts.get(s["host"]) or {}).get("labels") or {}, since=s["since"] or now)
        for s in engine.store.check_states() if s["status"] != "OK"}


def _event_sources(engine: Engine, began: float) -> dict[str, Event]:
    """The latest event per dedup_key received since ``began``, if it is a trigger."""
    latest: dict[str, dict[str, Any]] = {}
    for row in engine.store.events_since(began):  # oldest first: the last one wins
        latest[row["dedup_key"]] = row["payload"]
    return {key: Event.model_validate(payload) for key, payload in latest.items()
            if payload.get("action") == "trigger"}


def _again(event: Event, window: MaintenanceWindow, ended: float, now: float) -> Event:
    """``event`` as seen again at ``now``; its id names the window's end, so a pass
    retried after a failure makes the very same event (recognised as a duplicate)."""
    identity = f"{event.event_id}|{window.name}|{ended:.3f}"
    summary = f"{event.summary} (still failing when maintenance '{window.name}' ended)"
    return event.model_copy(update={
        "event_id": "mnt-" + hashlib.sha256(identity.encode()).hexdigest()[:28],
        "summary": summary[:1024], "observed_at": datetime.fromtimestamp(now, UTC)})
