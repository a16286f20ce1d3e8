"""The wire schema between agents and the collector: the one module both ends import.

A superset of the PagerDuty Events v2 shape (``dedup_key``, ``action``,
``severity``, ``summary``, ``source``), so forwarding to PagerDuty is a projection.
Versioned: ``schema_version`` is checked on receipt, and a change that old agents
cannot produce bumps it. Published as JSON Schema by :func:`json_schemas` and in
the collector's OpenAPI document.

This module imports only pydantic, so the agent can use it without pulling in
the collector.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
MAX_SUMMARY = 1024

Action = Literal["trigger", "resolve"]
Severity = Literal["critical", "error", "warning", "info"]
CheckStatus = Literal["OK", "WARNING", "CRITICAL", "UNKNOWN"]

# Check status -> PagerDuty severity. UNKNOWN ("could not find out") is an error of
# the inspection itself, less than a confirmed outage.
SEVERITY_OF_STATUS: dict[str, str] = {
    "OK": "info", "WARNING": "warning", "CRITICAL": "critical", "UNKNOWN": "error",
}

_LABEL_KEY = r"^[a-zA-Z_][a-zA-Z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentRef(_Strict):
    id: str = Field(min_length=1, max_length=200, description="stable agent identity")
    version: str = Field(min_length=1, max_length=50)
    config: str | None = Field(
        default=None, max_length=1000,
        description="path of the config file the agent runs, for commands in tickets")


class MeasurementValue(_Strict):
    name: str = Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$", max_length=200)
    value: float
    item: str = Field(default="", max_length=500)


class MeasurementSeries(_Strict):
    """One measurement's recent points before a breach, oldest first.

    Points are ``[epoch seconds, value]`` pairs rather than objects: a day of 5-minute
    points is ~10 KB of JSON this way, three times less than with field names."""

    name: str = Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$", max_length=200)
    item: str = Field(default="", max_length=500)
    points: list[tuple[float, float]] = Field(default_factory=list, max_length=2000)


def dedup_key(host: str, check: str) -> str:
    """One open incident per host and check."""
    return f"{host}/{check}"


class Event(_Strict):
    """A hard state change of one check on one host."""

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: str = Field(min_length=8, max_length=100,
                          description="unique per event; a retried POST reuses it")
    dedup_key: str = Field(min_length=1, max_length=500)
    action: Action
    severity: Severity
    status: CheckStatus
    previous_status: CheckStatus = "OK"
    summary: str = Field(min_length=1, max_length=MAX_SUMMARY)
    source: str = Field(min_length=1, max_length=255, description="the host")
    check: str = Field(min_length=1, max_length=200)
    type: str = Field(min_length=1, max_length=100)
    labels: dict[str, str] = Field(default_factory=dict)
    runbook: str | None = None
    measurements: list[MeasurementValue] = Field(default_factory=list, max_length=1000)
    thresholds: dict[str, Any] = Field(default_factory=dict)
    diagnostics: dict[str, Any] = Field(default_factory=dict)
    observed_at: datetime
    agent: AgentRef
    sequence: int = Field(ge=0, description="per-agent, increasing")
    history: list[MeasurementSeries] = Field(
        default_factory=list, max_length=20,
        description="the breaching measurements' recent series (older agents send none)")


class CheckSnapshot(_Strict):
    """One check's current state inside a heartbeat."""

    check: str = Field(min_length=1, max_length=200)
    type: str = Field(min_length=1, max_length=100)
    status: CheckStatus
    summary: str = Field(max_length=MAX_SUMMARY)
    since: datetime | None = None
    last_run: datetime | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    interval_seconds: float | None = Field(
        default=None, description="for interval checks; None for cron (schedule) checks")
    # When the check runs, so the collector can tell a check between its runs from one
    # that missed a run (older agents send none of these: judged by interval instead).
    schedule: str | None = Field(default=None, max_length=200,
                                 description="cron expression, for scheduled checks")
    timezone: str | None = Field(default=None, max_length=100,
                                 description="IANA zone the schedule is read in")
    next_due: datetime | None = Field(
        default=None, description="when the next run is due (after last_run)")
    timeout_seconds: float | None = Field(default=None, gt=0,
                                          description="the longest one run may take")
    # The latest run's values, for the collector's hourly/daily rollups: sent with each
    # heartbeat (not as a stream of their own) so history costs no extra request.
    measurements: list[MeasurementValue] = Field(
        default_factory=list, max_length=200,
        description="the latest run's measurements (older agents send none)")


class Heartbeat(_Strict):
    """The full current state of one agent, sent every N seconds.

    Lets the collector reconcile anything it missed (an event lost to a crash,
    a check removed from the config) and notice hosts and checks gone silent.
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    source: str = Field(min_length=1, max_length=255)
    agent: AgentRef
    sequence: int = Field(ge=0)
    sent_at: datetime
    interval_seconds: float = Field(gt=0, le=86400)
    labels: dict[str, str] = Field(default_factory=dict)
    timezone: str | None = Field(default=None, max_length=100,
                                 description="the host's IANA time zone (for maintenance "
                                             "windows in host time); older agents send none")
    checks: list[CheckSnapshot] = Field(default_factory=list, max_length=5000)


class EventBatch(_Strict):
    events: list[Event] = Field(min_length=1, max_length=500)


def json_schemas() -> dict[str, dict[str, Any]]:
    """The published JSON Schemas, by name."""
    return {
        "event": Event.model_json_schema(),
        "heartbeat": Heartbeat.model_json_schema(),
        "event_batch": EventBatch.model_json_schema(),
    }
