"""The wire schema between agents and the collector: the one module both ends import.

A superset of the PagerDuty Events v2 shape (``dedup_key``, ``action``,
``severity``, ``summary``, ``source``), so forwarding to PagerDuty is a projection.
Versioned: ``schema_version`` is checked on receipt, and a change that old agents
cannot produce bumps it. Published as JSON Schema by :func:`json_schemas` and in
the collector's OpenAPI document.

This module imports only pydantic (and :mod:`patrol.contract.wire_basics`, the
names and bounds it shares with the running agent, which writes events as plain JSON
data without pydantic: agent/events.py); the collector validates with it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version  # noqa: F401 (PackageNotFoundError: for callers)
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from patrol.contract.wire_basics import MAX_SUMMARY as MAX_SUMMARY
from patrol.contract.wire_basics import PATROL_VERSION as PATROL_VERSION
from patrol.contract.wire_basics import SCHEMA_VERSION as SCHEMA_VERSION
from patrol.contract.wire_basics import SEVERITY_OF_STATUS as SEVERITY_OF_STATUS
from patrol.contract.wire_basics import Action as Action
from patrol.contract.wire_basics import CheckStatus as CheckStatus
from patrol.contract.wire_basics import Severity as Severity
from patrol.contract.wire_basics import dedup_key as dedup_key
from patrol.contract.wire_basics import installed_version


def _installed_version() -> str:
    """Patrol's version from the package metadata, looked up through this module's
    ``version`` (patrol/contract/wire_basics.py does the work, without pydantic)."""
    return installed_version(version)


_LABEL_KEY = r"^[a-zA-Z_][a-zA-Z0-9_]*$"

# Bounds on everything a client sends, so that no value can reach a place that cannot
# hold it (a 64-bit column, the JSON encoder's recursion, a deadline computed from an
# interval) and come back as a 500 or a false ticket. Each is far beyond what a real
# agent sends; the OpenAPI document publishes them.
MAX_SEQUENCE = 2**63 - 1            # a signed 64-bit column on both stores
MAX_DEPTH = 32                      # nesting of diagnostics and thresholds
MAX_LABELS = 64
MAX_MAP_KEYS = 1000                 # keys of thresholds / diagnostics at any one level
MIN_INTERVAL = 0.1                  # heartbeat seconds; a smaller one makes hosts "silent"
MAX_INTERVAL = 366 * 86400.0        # a yearly check
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _in_range(value: datetime) -> datetime:
    """Refuse timestamps no clock produces (year 1, 9999): they overflow date
    arithmetic downstream and age tickets by millennia."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not EARLIEST <= aware < LATEST:
        raise ValueError(f"timestamp must be between {EARLIEST:%Y-%m-%d} and "
                         f"{LATEST:%Y-%m-%d} (UTC); check the sender's clock")
    return value


Timestamp = Annotated[datetime, AfterValidator(_in_range), WithJsonSchema({
    "type": "string", "format": "date-time",
    "description": f"RFC 3339, between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} UTC"})]


def _bounded_tree(value: dict[str, Any]) -> dict[str, Any]:
    """Refuse JSON nested deeper than :data:`MAX_DEPTH` or with huge mappings, without
    recursion (the check itself must not be what overflows the stack). Level by level,
    visiting only containers: it runs on every event on the ingest path."""
    level: list[Any] = [value]
    depth = 1
    while level:
        if depth > MAX_DEPTH:
            raise ValueError(f"nested deeper than {MAX_DEPTH} levels; flatten it")
        below: list[Any] = []
        for node in level:
            if type(node) is dict:
                if len(node) > MAX_MAP_KEYS:
                    raise ValueError(f"more than {MAX_MAP_KEYS} keys in one mapping")
                below += [v for v in node.values() if type(v) in _CONTAINERS]
            else:
                below += [v for v in node if type(v) in _CONTAINERS]
        level = below
        depth += 1
    return value


_CONTAINERS = (dict, list)


JsonTree = Annotated[dict[str, Any], AfterValidator(_bounded_tree), WithJsonSchema({
    "type": "object", "maxProperties": MAX_MAP_KEYS,
    "description": f"free-form JSON, nested at most {MAX_DEPTH} levels"})]
Labels = Annotated[dict[Annotated[str, Field(max_length=200)],
                        Annotated[str, Field(max_length=1000)]],
                   Field(max_length=MAX_LABELS)]
# A check's own interval: only bounded above here (the agent's config decides how
# often a check may run; refusing its heartbeat for that would blind the collector).
Interval = Annotated[float, Field(gt=0, le=MAX_INTERVAL)]


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
    labels: Labels = Field(default_factory=dict)
    runbook: str | None = Field(default=None, max_length=2000)
    measurements: list[MeasurementValue] = Field(default_factory=list, max_length=1000)
    thresholds: JsonTree = Field(default_factory=dict)
    diagnostics: JsonTree = Field(default_factory=dict)
    observed_at: Timestamp
    agent: AgentRef
    sequence: int = Field(ge=0, le=MAX_SEQUENCE, description="per-agent, increasing")
    history: list[MeasurementSeries] = Field(
        default_factory=list, max_length=20,
        description="the breaching measurements' recent series (older agents send none)")


class CheckSnapshot(_Strict):
    """One check's current state inside a heartbeat."""

    check: str = Field(min_length=1, max_length=200)
    type: str = Field(min_length=1, max_length=100)
    status: CheckStatus
    summary: str = Field(max_length=MAX_SUMMARY)
    since: Timestamp | None = None
    last_run: Timestamp | None = None
    labels: Labels = Field(default_factory=dict)
    interval_seconds: Interval | None = Field(
        default=None, description="for interval checks; None for cron (schedule) checks")
    # When the check runs, so the collector can tell a check between its runs from one
    # that missed a run (older agents send none of these: judged by interval instead).
    schedule: str | None = Field(default=None, max_length=200,
                                 description="cron expression, for scheduled checks")
    timezone: str | None = Field(default=None, max_length=100,
                                 description="IANA zone the schedule is read in")
    next_due: Timestamp | None = Field(
        default=None, description="when the next run is due (after last_run)")
    timeout_seconds: float | None = Field(default=None, gt=0, le=MAX_INTERVAL,
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
    sequence: int = Field(ge=0, le=MAX_SEQUENCE)
    sent_at: Timestamp
    interval_seconds: float = Field(ge=MIN_INTERVAL, le=86400)
    labels: Labels = Field(default_factory=dict)
    timezone: str | None = Field(default=None, max_length=100,
                                 description="the host's IANA time zone (for maintenance "
                                             "windows in host time); older agents send none")
    checks: list[CheckSnapshot] = Field(default_factory=list, max_length=5000)
    metrics_address: str | None = Field(
        default=None, max_length=300, pattern=r"^[^\s/]+:[0-9]{1,5}$",
        description="HOST:PORT where the agent serves /metrics, for Prometheus service "
                    "discovery; older agents send none")


class EventBatch(_Strict):
    events: list[Event] = Field(min_length=1, max_length=500)


def json_schemas() -> dict[str, dict[str, Any]]:
    """The published JSON Schemas, by name."""
    return {
        "event": Event.model_json_schema(),
        "heartbeat": Heartbeat.model_json_schema(),
        "event_batch": EventBatch.model_json_schema(),
    }
