"""Agent state -> patrol.contract.wire payloads, and the emitter that queues them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from patrol.agent.events import Emitter, build_event, build_heartbeat
from patrol.agent.outbox import Outbox
from patrol.agent.state import CheckInfo, CheckView, Transition
from patrol.checks.base import Measurement, Result, Status
from patrol.contract.wire import Event, EventBatch, Heartbeat
from tests.helpers import build

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
AGENT_ID = "0123456789abcdef0123456789abcdef"
INFO = CheckInfo("root-disk", "disk", {"team": "dba", "tier": "1"}, "https://wiki/disk", 60.0)


def view(status: Status, summary: str = "/ is 96.0% full on db-01 (critical at 95%)",
         **kwargs) -> CheckView:
    result = Result(status, summary, (Measurement("used_ratio", 0.96, "/"),),
                    {"excerpt": "x"})
    return CheckView(INFO, status=status, since=1714564800.0, result=result,
                     last_run=1714564860.0, **kwargs)


def event_for(old: Status, new: Status, **kwargs) -> Event:
    return build_event(view(new), Transition("root-disk", old, new), "db-01",
                       {"env": "prod", "team": "ops"}, AGENT_ID, 7, version="1.2.3", now=NOW,
                       **kwargs)


@pytest.mark.parametrize(("old", "new", "action", "severity"), [
    (Status.OK, Status.CRITICAL, "trigger", "critical"),
    (Status.OK, Status.WARNING, "trigger", "warning"),
    (Status.WARNING, Status.CRITICAL, "trigger", "critical"),
    (Status.CRITICAL, Status.WARNING, "trigger", "warning"),
    (Status.OK, Status.UNKNOWN, "trigger", "error"),
    (Status.CRITICAL, Status.OK, "resolve", "info"),
], ids=["breach", "warning", "escalation", "de-escalation", "unknown", "recovery"])
def test_action_and_severity_follow_the_new_hard_status(old, new, action, severity):
    event = event_for(old, new)
    assert (event.action, event.severity, event.status, event.previous_status) == (
        action, severity, new.name, old.name)


def test_event_carries_identity_labels_measurements_and_diagnostics():
    v = view(Status.CRITICAL, diagnostics={"top_processes": [{"pid": 1}], "host": {"a": 1}})
    event = build_event(v, Transition("root-disk", Status.OK, Status.CRITICAL), "db-01",
                        {"env": "prod", "team": "ops"}, AGENT_ID, 7, version="1.2.3", now=NOW)
    assert event.dedup_key == "db-01/root-disk"
    assert (event.source, event.check, event.type) == ("db-01", "root-disk", "disk")
    assert event.summary == "/ is 96.0% full on db-01 (critical at 95%)"
    assert event.labels == {"env": "prod", "team": "dba", "tier": "1"}  # the check wins
    assert event.runbook == "https://wiki/disk"
    assert [m.model_dump() for m in event.measurements] == [
        {"name": "used_ratio", "value": 0.96, "item": "/"}]
    assert event.diagnostics == {"top_processes": [{"pid": 1}], "host": {"a": 1}}
    assert event.observed_at == NOW
    assert (event.agent.id, event.agent.version, event.sequence) == (AGENT_ID, "1.2.3", 7)
    assert len(event.event_id) == 32
    # What goes on the wire is what the collector accepts.
    EventBatch.model_validate_json(EventBatch(events=[event]).model_dump_json())


def test_each_event_gets_a_fresh_event_id():
    assert event_for(Status.OK, Status.CRITICAL).event_id != \
        event_for(Status.OK, Status.CRITICAL).event_id


def test_thresholds_are_the_effective_levels_of_each_measurement():
    _, ctx = build("cpu", critical="90%", recover="70%")
    v = CheckView(CheckInfo("cpu", "cpu"), Status.CRITICAL,
                  result=Result(Status.CRITICAL, "CPU 97% busy on db-01",
                                (Measurement("used_ratio", 0.97), Measurement("cores", 8))))
    event = build_event(v, Transition("cpu", Status.OK, Status.CRITICAL), "db-01", {},
                        AGENT_ID, 1, now=NOW, evaluator=ctx.evaluator)
    assert event.thresholds == {"used_ratio": {
        "warning": 0.8, "critical": 0.9, "recover": 0.7, "higher_is_worse": True,
        "unit": "ratio"}}  # cores has no levels, so it is left out


def test_non_finite_measurements_and_overlong_summaries_do_not_break_the_event():
    v = CheckView(INFO, Status.UNKNOWN, result=Result(
        Status.UNKNOWN, "x" * 5000, (Measurement("used_ratio", float("nan"), "/"),
                                     Measurement("free_bytes", 10.0, "/"))))
    event = build_event(v, Transition("root-disk", Status.OK, Status.UNKNOWN), "db-01", {},
                        AGENT_ID, 1, now=NOW)
    assert [m.name for m in event.measurements] == ["free_bytes"]
    assert len(event.summary) == 1024 and event.summary.endswith("…")


def test_heartbeat_is_the_full_state_of_every_check():
    views = [view(Status.CRITICAL), CheckView(CheckInfo("ntp", "command", interval=300.0))]
    beat = build_heartbeat(views, "db-01", {"env": "prod"}, AGENT_ID, 12, 30.0,
                           version="1.2.3", now=NOW)
    assert (beat.source, beat.sequence, beat.sent_at, beat.interval_seconds) == (
        "db-01", 12, NOW, 30.0)
    assert [c.model_dump() for c in beat.checks] == [
        {"check": "root-disk", "type": "disk", "status": "CRITICAL",
         "summary": "/ is 96.0% full on db-01 (critical at 95%)",
         "since": datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
         "last_run": datetime(2024, 5, 1, 12, 1, tzinfo=UTC),
         "labels": {"env": "prod", "team": "dba", "tier": "1"}, "interval_seconds": 60.0,
         "schedule": None, "timezone": None,
         "next_due": datetime(2024, 5, 1, 12, 2, 5, tzinfo=UTC),  # + interval + jitter
         "timeout_seconds": None,
         "measurements": [{"name": "used_ratio", "value": 0.96, "item": "/"}]},
        {"check": "ntp", "type": "command", "status": "OK", "summary": "not run yet",
         "since": None, "last_run": None, "labels": {"env": "prod"},
         "interval_seconds": 300.0, "schedule": None, "timezone": None, "next_due": None,
         "timeout_seconds": None, "measurements": []},
    ]
    Heartbeat.model_validate_json(beat.model_dump_json())


def test_a_cron_check_announces_its_schedule_and_next_run_not_an_interval():
    """Daily at 07:00 in Berlin (UTC+2 in May): after the run of 1 May 12:01 UTC the
    next one is due 2 May 05:00 UTC. No interval, so collectors that only know
    intervals do not call it silent after three default intervals."""
    info = CheckInfo("daily-capacity-inspection", "disk", interval=30.0,
                     schedule="0 7 * * *", timezone="Europe/Berlin", timeout=10.0)
    ran = CheckView(info, Status.OK, last_run=datetime(2024, 5, 1, 12, 1, tzinfo=UTC).timestamp(),
                    result=Result(Status.OK, "every disk below 75%"))
    [snap] = build_heartbeat([ran], "vm", {}, AGENT_ID, 1, 30.0, now=NOW).checks
    assert (snap.schedule, snap.timezone, snap.interval_seconds, snap.timeout_seconds) == (
        "0 7 * * *", "Europe/Berlin", None, 10.0)
    assert snap.next_due == datetime(2024, 5, 2, 5, 0, tzinfo=UTC)


def test_a_cron_check_without_a_timezone_runs_in_the_hosts_zone(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    import tzlocal

    tzlocal.reload_localzone()
    try:
        info = CheckInfo("inspection", "disk", schedule="0 7 * * *")
        ran = CheckView(info, Status.OK,
                        last_run=datetime(2024, 5, 1, 12, 1, tzinfo=UTC).timestamp())
        [snap] = build_heartbeat([ran], "vm", {}, AGENT_ID, 1, 30.0, now=NOW).checks
    finally:
        monkeypatch.delenv("TZ")
        tzlocal.reload_localzone()
    assert snap.timezone == "Asia/Tokyo"
    assert snap.next_due == datetime(2024, 5, 1, 22, 0, tzinfo=UTC)  # 07:00 JST


def test_emitter_queues_numbered_events_and_heartbeats(tmp_path):
    outbox = Outbox(tmp_path, ["http://127.0.0.1:1"])
    secret_free = {"excerpt": "[redacted]"}
    emitter = Emitter(outbox, "db-01", {"env": "prod"}, AGENT_ID,
                      redact=lambda data: secret_free)
    emitter(view(Status.CRITICAL), Transition("root-disk", Status.OK, Status.CRITICAL))
    emitter(view(Status.OK), Transition("root-disk", Status.CRITICAL, Status.OK))
    emitter.heartbeat([view(Status.OK)], 30.0)
    rows = outbox.rows()
    assert [(r.kind, r.sequence) for r in rows] == [("event", 1), ("event", 2),
                                                    ("heartbeat", 2)]
    first = Event.model_validate(rows[0].payload)
    assert (first.action, first.sequence, rows[0].key) == ("trigger", 1, first.event_id)
    assert first.diagnostics == {"result": secret_free}  # the check's own, redacted
    assert Event.model_validate(rows[1].payload).action == "resolve"
    assert Heartbeat.model_validate(rows[2].payload).checks[0].status == "OK"
    outbox.close()


def test_the_agent_writes_exactly_what_the_wire_models_would() -> None:
    """The agent builds its JSON without pydantic (agent/events.py): every key, value
    and type is the one the wire model writes, so the collector reads it as before."""
    import json

    from patrol.agent.events import event_payload, heartbeat_payload
    from patrol.agent.history import Series

    _, ctx = build("cpu", critical="90%", recover="70%")
    cron = CheckInfo("nightly", "disk", {}, None, 60.0, "0 7 * * *", "Europe/Berlin", 5.0)
    series = [Series("used_ratio", "/", [(1714564800.0, 0.5), (1714564860, 1)])]
    event = event_payload(view(Status.CRITICAL, diagnostics={"t": (1, 2)}),
                          Transition("root-disk", Status.OK, Status.CRITICAL), "db-01",
                          {"env": "prod"}, AGENT_ID, 7, now=NOW, evaluator=ctx.evaluator,
                          extra_diagnostics={"result": {"x": 1}}, config="/etc/a.yaml",
                          history=series)
    beat = heartbeat_payload([view(Status.WARNING), CheckView(cron), CheckView(INFO)],
                             "db-01", {"env": "prod"}, AGENT_ID, 3, 30.0, now=NOW,
                             metrics_address="db-01:9731")
    for payload, model in ((event, Event), (beat, Heartbeat)):
        sent = json.loads(json.dumps(payload))  # as the outbox stores it
        assert sent == model.model_validate(sent).model_dump(mode="json")
    assert event["observed_at"] == "2024-05-01T12:00:00Z"
