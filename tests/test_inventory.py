"""The fleet inventory (``GET /api/v1/hosts``, the Hosts page) and Prometheus service
discovery, on SQLite and PostgreSQL, fed by heartbeats through the real API."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from patrol.agent.events import metrics_address
from patrol.agent.version import AGENT_VERSION
from patrol.collector.ingest.api import create_app
from patrol.contract.wire import AgentRef
from tests.collector_fixtures import (
    AGENT_TOKEN,
    OPERATOR_TOKEN,
    World,
    event,
    event_json,
    heartbeat,
    snapshot,
)

pytest_plugins = ["tests.store_worlds"]

AGENT = {"Authorization": f"Bearer {AGENT_TOKEN}"}
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def _beat(client: TestClient, host: str, *, version: str = AGENT_VERSION,
          address: str | None = None, labels: dict[str, str] | None = None,
          checks: list[Any] | None = None) -> None:
    beat = heartbeat(host, checks or [snapshot("root-disk")], labels=labels)
    payload = beat.model_copy(update={"agent": AgentRef(id=f"agent-{host}", version=version),
                                      "metrics_address": address}).model_dump(mode="json")
    response = client.post("/api/v1/heartbeats", json=payload, headers=AGENT)
    assert response.status_code == 202, response.text


@pytest.fixture
def client(any_world: World) -> TestClient:
    return TestClient(create_app(any_world.engine, [AGENT_TOKEN], [OPERATOR_TOKEN]))


def test_hosts_lists_labels_version_heartbeat_checks_and_open_tickets(
        client: TestClient, any_world: World) -> None:
    _beat(client, "db-01", address="db-01:9731", labels={"role": "db", "tier": "critical"},
          checks=[snapshot("root-disk", "CRITICAL"), snapshot("cpu", check_type="cpu")])
    _beat(client, "web-01", version="0.0.9", labels={"role": "web"})
    opened = client.post("/api/v1/events", json=event_json(event("db-01", "root-disk")),
                         headers=AGENT)
    assert opened.status_code == 202
    number = opened.json()["results"][0]["ticket"]

    body = client.get("/api/v1/hosts", headers=OPERATOR).json()
    assert body["collector_version"] == AGENT_VERSION
    hosts = {h["host"]: h for h in body["hosts"]}
    db, web = hosts["db-01"], hosts["web-01"]
    assert db["labels"] == {"role": "db", "tier": "critical"}
    assert db["agent_version"] == AGENT_VERSION and not db["version_differs"]
    assert web["agent_version"] == "0.0.9" and web["version_differs"]
    assert db["last_heartbeat"] == any_world.clock() and db["reachable"]
    assert db["metrics_address"] == "db-01:9731" and web["metrics_address"] is None
    assert {(c["check"], c["status"]) for c in db["checks"]} == {("root-disk", "CRITICAL"),
                                                                 ("cpu", "OK")}
    assert [t["number"] for t in db["open_tickets"]] == [number]
    assert db["open_tickets"][0]["check"] == "root-disk" and web["open_tickets"] == []


def test_service_discovery_lists_reachable_agents_that_announced_an_address(
        client: TestClient, any_world: World) -> None:
    _beat(client, "db-01", address="db-01.example.com:9731",
          labels={"role": "db", "team-name": "dba"})
    _beat(client, "web-01", address="10.0.0.7:9731", labels={"role": "web"})
    _beat(client, "old-01")  # an older agent that announces nothing
    groups = client.get("/api/v1/sd/prometheus", headers=OPERATOR).json()
    by_target = {g["targets"][0]: g["labels"] for g in groups}
    assert set(by_target) == {"db-01.example.com:9731", "10.0.0.7:9731"}
    assert by_target["db-01.example.com:9731"] == {
        "role": "db", "team_name": "dba", "patrol_host": "db-01",
        "patrol_agent_version": AGENT_VERSION}

    with any_world.store.transaction() as tx:
        tx.set_host_reachable("web-01", False)
    groups = client.get("/api/v1/sd/prometheus", headers=OPERATOR).json()
    assert [g["targets"] for g in groups] == [["db-01.example.com:9731"]]


def test_inventory_needs_an_operator_token(client: TestClient) -> None:
    for path in ("/api/v1/hosts", "/api/v1/sd/prometheus"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers=AGENT).status_code == 403


def test_a_malformed_metrics_address_is_refused_with_its_field_named(
        client: TestClient) -> None:
    payload = heartbeat("db-01").model_dump(mode="json")
    payload["metrics_address"] = "http://db-01:9731/metrics"
    response = client.post("/api/v1/heartbeats", json=payload, headers=AGENT)
    assert response.status_code == 422
    assert any("metrics_address" in p for p in response.json()["problems"])


def test_hosts_page_flags_agents_on_another_version(client: TestClient) -> None:
    _beat(client, "db-01", address="db-01:9731")
    _beat(client, "web-<b>01</b>", version="0.0.9")
    # Logged in the way a browser is: the /login form, keeping the session cookie.
    assert client.post("/login", data={"token": OPERATOR_TOKEN}).status_code in (200, 303)
    page = client.get("/hosts")
    assert page.status_code == 200
    html = page.text
    assert "1 agent on another version" in html
    row = html[html.index("web-&lt;b&gt;01&lt;/b&gt;"):]
    assert "0.0.9" in row[:2000] and "differs from the collector" in row[:2000]
    assert "<b>01</b>" not in html
    assert '<a href="/hosts">Hosts</a>' in html


@pytest.mark.parametrize(("host", "port", "expected"), [
    ("0.0.0.0", 9731, "db-01:9731"), ("::", 9731, "db-01:9731"),
    ("10.0.0.7", 9100, "10.0.0.7:9100"), ("fe80::1", 9731, "[fe80::1]:9731")])
def test_agents_announce_a_reachable_address(host: str, port: int, expected: str) -> None:
    assert metrics_address(host, port, "db-01") == expected
