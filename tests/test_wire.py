"""The wire schema on its own: what an agent may send and what the collector accepts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from patrol.contract.publish_schema import SCHEMA_DIR, rendered
from patrol.contract.wire import SEVERITY_OF_STATUS, Event, Heartbeat, dedup_key

EVENT = {
    "event_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "dedup_key": "db-01/disk",
    "action": "trigger",
    "severity": "critical",
    "status": "CRITICAL",
    "summary": "/var is 96.1% full on db-01 (critical at 95%)",
    "source": "db-01",
    "check": "disk",
    "type": "disk",
    "labels": {"tier": "critical", "role": "db"},
    "measurements": [{"name": "used_ratio", "value": 0.961, "item": "/var"}],
    "diagnostics": {"host": {"hostname": "db-01"}},
    "observed_at": "2026-11-22T04:00:00Z",
    "agent": {"id": "a1b2c3d4", "version": "0.1.0"},
    "sequence": 7,
}


def test_a_realistic_event_round_trips() -> None:
    event = Event.model_validate(EVENT)
    assert event.observed_at == datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
    assert event.schema_version == 1
    assert Event.model_validate_json(event.model_dump_json()) == event


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"action": "acknowledge"}, "action", id="unknown-action"),
        pytest.param({"severity": "fatal"}, "severity", id="unknown-severity"),
        pytest.param({"schema_version": 2}, "schema_version", id="future-version"),
        pytest.param({"summary": ""}, "summary", id="empty-summary"),
        pytest.param({"summary": "x" * 1025}, "summary", id="summary-too-long"),
        pytest.param({"sequence": -1}, "sequence", id="negative-sequence"),
        pytest.param({"colour": "red"}, "colour", id="unknown-field"),
        pytest.param({"measurements": [{"name": "used ratio", "value": 1}]},
                     "measurements.0.name", id="bad-measurement-name"),
    ],
)
def test_malformed_events_are_rejected_at_the_field(change: dict, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        Event.model_validate({**EVENT, **change})
    assert [".".join(map(str, e["loc"])) for e in info.value.errors()] == [field]


def test_missing_required_fields_are_named() -> None:
    partial = {k: v for k, v in EVENT.items() if k not in ("event_id", "source")}
    with pytest.raises(ValidationError) as info:
        Event.model_validate(partial)
    assert sorted(e["loc"][0] for e in info.value.errors()) == ["event_id", "source"]


def test_heartbeat_carries_every_check_state() -> None:
    beat = Heartbeat.model_validate({
        "source": "db-01", "agent": {"id": "a1b2c3d4", "version": "0.1.0"}, "sequence": 8,
        "sent_at": "2026-11-22T04:00:30Z", "interval_seconds": 30,
        "checks": [{"check": "disk", "type": "disk", "status": "CRITICAL",
                    "summary": "full", "since": "2026-11-22T04:00:00Z"}],
    })
    assert [c.status for c in beat.checks] == ["CRITICAL"]


def test_pagerduty_projection_fields_and_severity_mapping() -> None:
    assert dedup_key("db-01", "disk") == "db-01/disk"
    assert SEVERITY_OF_STATUS == {"OK": "info", "WARNING": "warning",
                                  "CRITICAL": "critical", "UNKNOWN": "error"}
    schema = Event.model_json_schema()
    for field in ("dedup_key", "event_id", "action", "severity", "summary", "source"):
        assert field in schema["required"] or field in schema["properties"]


def test_published_schema_files_match_the_models() -> None:
    for name, text in rendered().items():
        path = SCHEMA_DIR / name
        assert path.exists(), f"run python -m patrol.contract.publish_schema to publish {name}"
        assert path.read_text() == text, \
            f"{name} is stale: python -m patrol.contract.publish_schema"
