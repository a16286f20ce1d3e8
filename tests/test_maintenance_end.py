"""When a maintenance window ends, everything still firing under it is ticketed at once,
whatever sent it: Alertmanager alerts, events POSTed by scripts, agent checks. On SQLite
and PostgreSQL, through the collector's HTTP API."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from patrol.collector.ingest.alertmanager import example_payload
from patrol.collector.ingest.api import create_app
from patrol.collector.model import TicketStatus
from tests.collector_fixtures import (
    AGENT_TOKEN,
    MINUTE,
    OPERATOR_TOKEN,
    T0,
    World,
    at,
    event,
    event_json,
    heartbeat,
)

pytest_plugins = ["tests.store_worlds"]  # any_world: SQLite and PostgreSQL

AGENT = {"Authorization": f"Bearer {AGENT_TOKEN}"}


def alert(host: str, name: str, status: str = "firing", starts: float = T0) -> dict[str, Any]:
    """An Alertmanager webhook body with one alert (shaped like Alertmanager's own)."""
    payload = copy.deepcopy(example_payload())
    one = payload["alerts"][0]
    one["labels"].update(alertname=name, instance=f"{host}:9100", tier="standard")
    one["annotations"]["summary"] = f"{name} on {host}"
    one["status"] = payload["status"] = status
    one["startsAt"] = at(starts).isoformat().replace("+00:00", "Z")
    one["fingerprint"] = f"{host}-{name}"
    if status == "resolved":
        one["endsAt"] = at(starts + MINUTE).isoformat().replace("+00:00", "Z")
    return payload


def test_event_only_sources_still_firing_are_ticketed_when_the_window_ends(
        any_world: World) -> None:
    w = any_world
    api = TestClient(create_app(w.engine, [AGENT_TOKEN], [OPERATOR_TOKEN]))
    with w.store.transaction() as tx:
        tx.add_maintenance({"name": "web patching", "hosts": ["web-*"],
                            "start": at(T0 + 10 * MINUTE).isoformat(),
                            "end": at(T0 + 40 * MINUTE).isoformat()})
    w.engine.invalidate_windows()
    w.tick(15 * MINUTE)  # the watchdog runs during the window

    def post(path: str, body: dict[str, Any]) -> str:
        response = api.post(path, json=body, headers=AGENT)
        assert response.status_code == 202, response.text
        return response.json()["results"][0]["outcome"]

    assert post("/api/v1/alertmanager",
                alert("web-02", "NodeFilesystemAlmostFull", starts=w.clock())) == "suppressed"
    assert post("/api/v1/alertmanager",
                alert("web-04", "HighLatency", starts=w.clock())) == "suppressed"
    assert post("/api/v1/events", event_json(event(
        "web-03", "nightly-backup", check_type="script", observed_at=w.clock(),
        summary="nightly backup of web-03 failed: exit 2"))) == "suppressed"
    w.tick(5 * MINUTE)
    # HighLatency ends inside the window (no ticket to resolve): not firing when it ends.
    assert post("/api/v1/alertmanager", alert("web-04", "HighLatency", "resolved",
                                              starts=w.clock())) == "ignored"
    # Alertmanager repeats a firing alert (same event id): still one alert.
    assert post("/api/v1/alertmanager",
                alert("web-02", "NodeFilesystemAlmostFull", starts=T0 + 15 * MINUTE)) \
        == "duplicate"
    assert w.store.list_tickets() == []

    counts = w.tick(20 * MINUTE + 1)  # the window ended at T0 + 40 min
    assert counts["maintenance_ended"] == 2
    tickets = {t.check: t for t in w.store.list_tickets()}
    assert set(tickets) == {"NodeFilesystemAlmostFull", "nightly-backup"}
    disk = tickets["NodeFilesystemAlmostFull"]
    assert (disk.host, disk.status, disk.check_type) == ("web-02", TicketStatus.NEW,
                                                         "prometheus")
    assert disk.title == ("NodeFilesystemAlmostFull on web-02 (still failing when "
                          "maintenance 'web patching' ended)")
    assert disk.labels["tier"] == "standard" and disk.labels["mountpoint"] == "/var"
    assert disk.diagnostics["alertmanager"]["generator_url"].startswith("http://prometheus")
    backup = tickets["nightly-backup"]
    assert backup.title == ("nightly backup of web-03 failed: exit 2 (still failing when "
                            "maintenance 'web patching' ended)")
    for ticket in tickets.values():
        assert w.kinds(ticket.number) == ["opened", "maintenance"]

    assert w.tick(30)["maintenance_ended"] == 0  # once, not every pass
    assert len(w.store.list_tickets()) == 2
    resolved = post("/api/v1/alertmanager", alert("web-02", "NodeFilesystemAlmostFull",
                                                  "resolved", starts=w.clock()))
    assert resolved == "recovering"  # the ticket follows the alert from now on


def test_a_window_still_covering_the_key_keeps_it_quiet(any_world: World) -> None:
    w = any_world
    with w.store.transaction() as tx:
        tx.add_maintenance({"name": "short", "hosts": ["web-*"],
                            "start": at(T0).isoformat(), "end": at(T0 + 10 * MINUTE).isoformat()})
        tx.add_maintenance({"name": "long", "checks": ["nightly-*"],
                            "start": at(T0).isoformat(), "end": at(T0 + 60 * MINUTE).isoformat()})
    w.engine.invalidate_windows()
    w.tick(MINUTE)
    assert w.one(event("web-03", "nightly-backup", observed_at=w.clock())).outcome == \
        "suppressed"
    assert w.tick(10 * MINUTE)["maintenance_ended"] == 0  # "long" still covers it
    assert w.store.list_tickets() == []
    assert w.tick(50 * MINUTE)["maintenance_ended"] == 1
    [ticket] = w.store.list_tickets()
    assert ticket.title.endswith("(still failing when maintenance 'long' ended)")


def test_windows_in_host_time_suppress_and_end_by_each_hosts_zone(any_world: World) -> None:
    """A nightly 02:00-03:00 window in host time: 02:30 in Tokyo is 18:30 in Berlin."""
    w = any_world
    w.clock.now[0] = datetime(2023, 10, 26, 17, 0, tzinfo=UTC).timestamp()  # 02:00 in Tokyo
    for host, zone in (("tokyo-01", "Asia/Tokyo"), ("berlin-01", "Europe/Berlin")):
        w.engine.heartbeat(heartbeat(host, sent_at=w.clock()).model_copy(
            update={"timezone": zone, "interval_seconds": 3600}))
    with w.store.transaction() as tx:
        tx.add_maintenance({"name": "nightly backup", "hosts": ["*"], "checks": ["backup"],
                            "cron": "0 2 * * *", "duration": 3600, "timezone": "host"})
    w.engine.invalidate_windows()
    w.tick(30 * MINUTE)
    tokyo = w.one(event("tokyo-01", "backup", observed_at=w.clock()))
    berlin = w.one(event("berlin-01", "backup", observed_at=w.clock()))
    assert (tokyo.outcome, berlin.outcome) == ("suppressed", "opened")

    assert w.tick(30 * MINUTE + 1)["maintenance_ended"] == 1  # 03:00 in Tokyo
    [ticket] = w.store.list_tickets(host="tokyo-01")
    assert ticket.title.endswith("(still failing when maintenance 'nightly backup' ended)")
