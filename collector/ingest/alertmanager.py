"""Alertmanager webhook payloads become wire Events, so any Prometheus rule can
open tickets the same way an agent check does.

Mapping (Alertmanager webhook format, version 4):

- ``source`` (host): label ``host``, else ``instance`` without its port, else
  ``job``, else ``"prometheus"``;
- ``check``: ``alertname``; ``type``: ``"prometheus"``;
- ``severity``: label ``severity`` when it is a PagerDuty severity (``page`` counts
  as critical), else ``warning``; ``status``: CRITICAL for critical/error, else WARNING;
- ``summary``: annotation ``summary``, else ``description``, else the alert name;
- ``event_id``: derived from fingerprint, status and ``startsAt``/``endsAt``, so a
  webhook Alertmanager retries is recognised as the same event;
- ``diagnostics``: the alert's labels, annotations and generator URL.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from patrol.contract.wire import AgentRef, CheckStatus, Event, Severity, Timestamp, dedup_key

_SEVERITY_ALIASES = {"page": "critical", "crit": "critical", "err": "error",
                     "warn": "warning", "none": "info"}
_SEVERITIES: tuple[Severity, ...] = ("critical", "error", "warning", "info")


class Alert(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: Timestamp
    endsAt: datetime | None = None
    generatorURL: str | None = None
    fingerprint: str | None = None


class AlertmanagerPayload(BaseModel):
    model_config = ConfigDict(extra="allow")

    version: str = "4"
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupKey: str = ""
    externalURL: str = ""
    alerts: list[Alert] = Field(min_length=1, max_length=1000)


def _host(labels: dict[str, str]) -> str:
    if labels.get("host"):
        return labels["host"]
    instance = labels.get("instance", "")
    if instance:
        if instance.startswith("["):  # [::1]:9100
            return instance[1:].split("]", 1)[0]
        return instance.rsplit(":", 1)[0] if instance.count(":") == 1 else instance
    return labels.get("job") or "prometheus"


def _severity(labels: dict[str, str]) -> Severity:
    raw = labels.get("severity", "").lower()
    raw = _SEVERITY_ALIASES.get(raw, raw)
    return next((known for known in _SEVERITIES if known == raw), "warning")


def to_events(payload: AlertmanagerPayload, sequence_start: int = 0,
              received_at: datetime | None = None) -> list[Event]:
    """One Event per alert in the webhook."""
    now = received_at or datetime.now(UTC)
    events = []
    for offset, alert in enumerate(payload.alerts):
        labels = dict(alert.labels)
        name = labels.get("alertname", "alert")
        host = _host(labels)
        severity = _severity(labels)
        firing = alert.status == "firing"
        status: CheckStatus = ("CRITICAL" if severity in ("critical", "error") else "WARNING") \
            if firing else "OK"
        moment = alert.startsAt if firing else (alert.endsAt or now)
        identity = f"{alert.fingerprint or sorted(labels.items())}|{alert.status}|" \
                   f"{moment.isoformat()}"
        summary = (alert.annotations.get("summary") or alert.annotations.get("description")
                   or name)
        events.append(Event(
            event_id=hashlib.sha256(identity.encode()).hexdigest()[:32],
            dedup_key=dedup_key(host, name),
            action="trigger" if firing else "resolve",
            severity=severity if firing else "info",
            status=status,
            previous_status="OK" if firing else "CRITICAL",
            summary=summary[:1024],
            source=host[:255],
            check=name[:200],
            type="prometheus",
            labels={k: v for k, v in labels.items() if k.isidentifier()},
            runbook=alert.annotations.get("runbook_url"),
            diagnostics={"alertmanager": {
                "labels": labels, "annotations": alert.annotations,
                "generator_url": alert.generatorURL, "receiver": payload.receiver,
                "external_url": payload.externalURL}},
            observed_at=moment if moment.tzinfo else moment.replace(tzinfo=UTC),
            agent=AgentRef(id=f"alertmanager:{payload.receiver or 'default'}",
                           version=payload.version),
            sequence=sequence_start + offset,
        ))
    return events


def example_payload() -> dict[str, Any]:
    """A realistic webhook body, for documentation and tests."""
    return {
        "version": "4", "status": "firing", "receiver": "patrol",
        "groupKey": '{}:{alertname="NodeFilesystemAlmostFull"}',
        "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "NodeFilesystemAlmostFull", "instance": "web-02:9100",
                       "mountpoint": "/var", "severity": "critical", "job": "node"},
            "annotations": {"summary": "/var on web-02 is 97% full"},
            "startsAt": "2026-11-22T04:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=...",
            "fingerprint": "c0ffee1234567890",
        }],
    }
