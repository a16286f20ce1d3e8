"""Agent state -> wire payloads (:mod:`patrol.contract.wire`), and into the outbox.

:func:`event_payload` and :func:`heartbeat_payload` are pure: the caller passes the
clock, the sequence and the identity, so tests assert exact payloads. They write the
JSON data the wire models would (``model_dump(mode="json")``), without pydantic, so the
running agent never imports it; :func:`build_event` and :func:`build_heartbeat` read
that data back into the models (for tests and tools: the collector validates on
receipt, as it would any agent's).
:class:`Emitter` is the glue the agent registers as a state-change listener.

Sequence numbers: every event takes the next number of the per-agent counter kept
in the outbox (1, 2, ...; contiguous unless the outbox was reset). A heartbeat does
*not* take one: it carries the latest number handed out when it was built, meaning
"this state includes every event up to N". So events have no gaps a collector could
mistake for loss, and a collector that has not yet seen event N knows it is in
flight rather than missing.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from patrol.agent import scheduler
from patrol.agent.history import MeasurementHistory, Series
from patrol.agent.outbox import Outbox
from patrol.agent.state import CheckView, Transition
from patrol.agent.version import AGENT_VERSION
from patrol.checks.base import Status
from patrol.checks.thresholds import Evaluator
from patrol.contract.wire_basics import MAX_SUMMARY, SCHEMA_VERSION, SEVERITY_OF_STATUS, dedup_key

if TYPE_CHECKING:
    from patrol.contract.wire import Event, Heartbeat

log = logging.getLogger("patrol.events")


def _utc(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _json_time(moment: datetime | None) -> str | None:
    """A timestamp as the wire models write it in JSON (RFC 3339, ``Z`` for UTC)."""
    if moment is None:
        return None
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _values(measurements: Iterable[Any]) -> list[dict[str, Any]]:
    """Finite measurements as the wire's ``MeasurementValue`` (NaN and infinities are
    not JSON; a measurement that has no number is left out)."""
    return [{"name": m.name, "value": float(m.value), "item": m.item}
            for m in measurements if math.isfinite(m.value)]


def _summary(view: CheckView, hostname: str) -> str:
    text = view.result.summary.strip() if view.result else ""
    if not text:
        text = f"{view.info.name} is {view.status.name} on {hostname}"
    return text if len(text) <= MAX_SUMMARY else text[: MAX_SUMMARY - 1] + "…"


def thresholds_of(view: CheckView, evaluator: Evaluator | None) -> dict[str, Any]:
    """Effective levels of each measurement in the latest result, keyed like
    ``used_ratio`` or ``used_ratio[/var]``; measurements without levels are left out."""
    if evaluator is None or view.result is None:
        return {}
    out: dict[str, Any] = {}
    for m in view.result.measurements:
        levels = evaluator.levels(m.name, m.item)
        if levels is None or (levels.warning is None and levels.critical is None):
            continue
        out[m.key] = {"warning": levels.warning, "critical": levels.critical,
                      "recover": levels.recover, "higher_is_worse": levels.higher_is_worse,
                      "unit": levels.unit}
    return out


def event_payload(
    view: CheckView,
    transition: Transition,
    hostname: str,
    agent_labels: Mapping[str, str],
    agent_id: str,
    sequence: int,
    *,
    version: str = AGENT_VERSION,
    now: datetime | None = None,
    evaluator: Evaluator | None = None,
    extra_diagnostics: Mapping[str, Any] | None = None,
    config: str | None = None,
    history: Sequence[Series] = (),
) -> dict[str, Any]:
    """The wire event for a hard transition of ``view``'s check, as JSON data.

    ``trigger`` while the new hard status is not OK (first breach, escalation and
    de-escalation alike: the collector re-grades the open incident), ``resolve`` on
    OK. Check labels win over agent labels. ``diagnostics`` are the at-breach capture
    (already redacted by the agent) plus ``extra_diagnostics``; ``thresholds`` are
    filled when the check's ``evaluator`` is given; ``history`` the recent series of
    the measurements that have levels (:func:`breach_keys`).
    """
    new = transition.new
    measurements = view.result.measurements if view.result else ()
    return {
        "schema_version": SCHEMA_VERSION,
        "event_id": uuid.uuid4().hex,
        "dedup_key": dedup_key(hostname, view.info.name),
        "action": "resolve" if new is Status.OK else "trigger",
        "severity": SEVERITY_OF_STATUS[new.name],
        "status": new.label,
        "previous_status": transition.old.label,
        "summary": _summary(view, hostname),
        "source": hostname,
        "check": view.info.name,
        "type": view.info.type,
        "labels": {**agent_labels, **view.info.labels},
        "runbook": view.info.runbook,
        "measurements": _values(measurements),
        "thresholds": thresholds_of(view, evaluator),
        "diagnostics": {**view.diagnostics, **(extra_diagnostics or {})},
        "observed_at": _json_time(now or datetime.now(UTC)),
        "agent": {"id": agent_id, "version": version, "config": config},
        "sequence": sequence,
        "history": [{"name": s.name, "item": s.item,
                     "points": [[float(t), float(v)] for t, v in s.points]}
                    for s in history if s.points][:MAX_SERIES],
    }


def build_event(*args: Any, **kwargs: Any) -> Event:
    """:func:`event_payload` (same arguments) as the wire's :class:`Event` model."""
    from patrol.contract.wire import Event

    return Event.model_validate(event_payload(*args, **kwargs))


MAX_SERIES = 5  # a disk check with 40 mounts sends the breaching few, not all


def breach_keys(view: CheckView, thresholds: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (name, item) of the latest result's measurements worth a series: those with
    levels, the ones past a level first (the mount that breached, not its 39 healthy
    neighbours)."""
    if view.result is None:
        return []

    def past(m: Any) -> bool:
        levels = thresholds.get(m.key) or {}
        warning = levels.get("warning")
        if warning is None:
            return False
        return m.value >= warning if levels.get("higher_is_worse", True) else m.value <= warning

    with_levels = [m for m in view.result.measurements if m.key in thresholds]
    ordered = sorted(with_levels, key=lambda m: not past(m))
    return [(m.name, m.item) for m in ordered][:MAX_SERIES]


def latest_values(view: CheckView) -> list[dict[str, Any]]:
    """The latest run's finite values, for the heartbeat (the collector's rollups)."""
    if view.result is None:
        return []
    return _values(view.result.measurements)[:200]


def schedule_of(view: CheckView) -> dict[str, Any]:
    """The snapshot's schedule fields: a cron check announces its expression, zone and
    next run (no interval: old collectors then skip it rather than call it stale
    after three default intervals); an interval check its interval and next run."""
    info = view.info
    if info.schedule:
        timing: dict[str, Any] = {"schedule": info.schedule,
                                  "timezone": scheduler.zone_name(info.timezone)}
    else:
        timing = {"interval_seconds": info.interval}
    due = scheduler.next_due(view.last_run, interval=info.interval, schedule=info.schedule,
                             timezone=info.timezone)
    return {**timing, "next_due": _json_time(_utc(due)), "timeout_seconds": info.timeout}


def metrics_address(host: str, port: int, hostname: str) -> str:
    """Where others reach this agent's /metrics: a wildcard listen address is announced
    as the host's name, since 0.0.0.0 means nothing to a Prometheus elsewhere."""
    if host in ("", "0.0.0.0", "::"):
        host = hostname
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def heartbeat_payload(
    views: Iterable[CheckView],
    hostname: str,
    agent_labels: Mapping[str, str],
    agent_id: str,
    sequence: int,
    interval_seconds: float,
    *,
    version: str = AGENT_VERSION,
    now: datetime | None = None,
    metrics_address: str | None = None,
) -> dict[str, Any]:
    """The full current state, as JSON data: every configured check's hard status,
    summary, since-when and schedule (:func:`schedule_of`). A check that has not run
    yet is reported OK with "not run yet"."""
    checks = [
        {"check": v.info.name, "type": v.info.type, "status": v.status.label,
         "summary": _summary(v, hostname) if v.result else "not run yet",
         "since": _json_time(_utc(v.since)), "last_run": _json_time(_utc(v.last_run)),
         "labels": {**agent_labels, **v.info.labels},
         "interval_seconds": None, "schedule": None, "timezone": None,
         **schedule_of(v), "measurements": latest_values(v)}
        for v in views
    ]
    return {
        "schema_version": SCHEMA_VERSION, "source": hostname,
        "agent": {"id": agent_id, "version": version, "config": None},
        "sequence": sequence, "sent_at": _json_time(now or datetime.now(UTC)),
        "interval_seconds": interval_seconds, "labels": dict(agent_labels),
        "timezone": scheduler.zone_name(None), "checks": checks,
        "metrics_address": metrics_address,
    }


def build_heartbeat(*args: Any, **kwargs: Any) -> Heartbeat:
    """:func:`heartbeat_payload` (same arguments) as the wire's :class:`Heartbeat` model."""
    from patrol.contract.wire import Heartbeat

    return Heartbeat.model_validate(heartbeat_payload(*args, **kwargs))


class Emitter:
    """Puts events and heartbeats into the outbox; the agent's listener.

    ``evaluators`` maps a check name to its threshold evaluator (for the event's
    ``thresholds``); ``redact`` cleans the check's own result diagnostics, which
    go into the event under ``result`` (the capture is redacted already).
    """

    def __init__(
        self,
        outbox: Outbox,
        hostname: str,
        agent_labels: Mapping[str, str],
        agent_id: str,
        *,
        version: str = AGENT_VERSION,
        evaluators: Callable[[str], Evaluator | None] | None = None,
        redact: Callable[[Any], Any] | None = None,
        config: str | None = None,
        history: MeasurementHistory | None = None,
    ) -> None:
        self.history = history  # the agent's ring buffer, for the breach's series
        self.config = config  # the agent's config file, named in tickets' commands
        self.outbox = outbox
        self.hostname = hostname
        self.agent_labels = dict(agent_labels)
        self.agent_id = agent_id
        self.version = version
        self._evaluators = evaluators
        self._redact = redact
        self.metrics_address: str | None = None  # set once the HTTP server listens

    def __call__(self, view: CheckView | None, transition: Transition
                 ) -> dict[str, Any] | None:
        """The ``Agent.listeners`` signature: queue the event for this transition."""
        return None if view is None else self.event(view, transition)

    def event(self, view: CheckView, transition: Transition) -> dict[str, Any]:
        evaluator = self._evaluators(view.info.name) if self._evaluators else None
        extra: dict[str, Any] = {}
        if view.result is not None and view.result.diagnostics:
            own = view.result.diagnostics
            extra["result"] = self._redact(own) if self._redact else own
        series: list[Series] = []
        if self.history is not None and transition.new is not Status.OK:
            keys = breach_keys(view, thresholds_of(view, evaluator))
            series = self.history.series(view.info.name, view.last_run or time.time(), keys)
        event = event_payload(
            view, transition, self.hostname, self.agent_labels, self.agent_id,
            self.outbox.next_sequence(), version=self.version, evaluator=evaluator,
            extra_diagnostics=extra, config=self.config, history=series,
        )
        self.outbox.put("event", event, key=event["event_id"])
        log.debug("queued %s %s for %s (sequence %d)", event["action"], event["status"],
                  event["check"], event["sequence"])
        return event

    def heartbeat(self, views: Iterable[CheckView], interval_seconds: float
                  ) -> dict[str, Any]:
        beat = heartbeat_payload(views, self.hostname, self.agent_labels, self.agent_id,
                               self.outbox.last_sequence(), interval_seconds,
                               version=self.version, metrics_address=self.metrics_address)
        self.outbox.put("heartbeat", beat, key=self.hostname)
        return beat
