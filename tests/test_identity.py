"""One identity per agent: issued credentials bound to host names, stored hashed,
rotatable with overlap and revocable; named operator tokens sign the timeline.
Every test runs on SQLite and PostgreSQL, through the real FastAPI app."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from patrol.collector.access.identity import digest
from patrol.collector.ingest.api import create_app
from tests.collector_fixtures import (
    AGENT_TOKEN,
    OPERATOR_TOKEN,
    World,
    event,
    event_json,
    heartbeat,
)

pytest_plugins = ["tests.store_worlds"]

SHARED_OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Collector:
    def __init__(self, world: World) -> None:
        self.world = world
        self.client = TestClient(create_app(world.engine, [AGENT_TOKEN], [OPERATOR_TOKEN]))

    def issue(self, name: str, kind: str = "agent", hosts: list[str] | None = None,
              headers: dict[str, str] = SHARED_OPERATOR) -> Any:
        return self.client.post("/api/v1/credentials", headers=headers,
                                json={"kind": kind, "name": name, "hosts": hosts or []})

    def post_event(self, token: str, host: str, check: str = "root-disk") -> int:
        return self.client.post("/api/v1/events", headers=bearer(token),
                                json=event_json(event(host, check))).status_code

    def beat(self, token: str, host: str) -> int:
        return self.client.post("/api/v1/heartbeats", headers=bearer(token),
                                json=heartbeat(host).model_dump(mode="json")).status_code


@pytest.fixture
def collector(any_world: World) -> Collector:
    return Collector(any_world)


def test_an_agent_may_report_only_the_hosts_its_credential_names(collector: Collector) -> None:
    issued = collector.issue("web-01", hosts=["web-0*", "web-01.example.org"])
    assert issued.status_code == 201, issued.text
    token = issued.json()["token"]
    assert collector.post_event(token, "web-01") == 202
    assert collector.post_event(token, "WEB-02") == 202  # host names are case-blind
    assert collector.beat(token, "web-01.example.org") == 202
    refused = collector.client.post("/api/v1/events", headers=bearer(token),
                                    json=event_json(event("db-01")))
    assert refused.status_code == 403
    assert "may report only web-0*" in refused.json()["error"] and "db-01" in refused.json()[
        "error"]
    assert collector.beat(token, "db-01") == 403
    # A batch with one foreign host is refused whole: nothing of it is recorded.
    mixed = collector.client.post("/api/v1/events", headers=bearer(token), json={"events": [
        event_json(event("web-03", "cpu")), event_json(event("made-up-host", "cpu"))]})
    assert mixed.status_code == 403
    assert not collector.world.store.list_tickets(check="cpu")
    # The shared token of ``patrol up`` still reports any host.
    assert collector.post_event(AGENT_TOKEN, "db-01") == 202


def test_only_the_hash_is_stored_and_listing_shows_no_secret(collector: Collector) -> None:
    token = collector.issue("web-01").json()["token"]
    rows = collector.world.store.credentials()
    assert [r["token_sha256"] for r in rows] == [digest(token)]
    listed = collector.client.get("/api/v1/credentials", headers=SHARED_OPERATOR)
    assert listed.status_code == 200
    assert token not in listed.text and digest(token) not in listed.text
    assert listed.json()["credentials"][0] | {"created_at": 0} == {
        "id": rows[0]["id"], "kind": "agent", "name": "web-01", "hosts": ["web-01"],
        "created_at": 0, "expires_at": None, "revoked_at": None, "created_by": "operator",
        "live": True}


def test_rotation_keeps_both_tokens_valid_until_the_grace_ends(collector: Collector) -> None:
    old = collector.issue("web-01").json()["token"]
    rotated = collector.client.post("/api/v1/credentials/agent/web-01/rotate",
                                    headers=SHARED_OPERATOR, json={"grace_seconds": 600})
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["token"]
    assert new != old and rotated.json()["hosts"] == ["web-01"]
    assert collector.post_event(old, "web-01") == 202
    assert collector.post_event(new, "web-01") == 202
    collector.world.clock.advance(601)
    assert collector.post_event(old, "web-01") == 401
    assert collector.post_event(new, "web-01") == 202


def test_revocation_ends_every_token_of_the_name_at_once(collector: Collector) -> None:
    first = collector.issue("web-01").json()["token"]
    second = collector.client.post("/api/v1/credentials/agent/web-01/rotate",
                                   headers=SHARED_OPERATOR).json()["token"]
    assert collector.post_event(first, "web-01") == 202
    revoked = collector.client.post("/api/v1/credentials/agent/web-01/revoke",
                                    headers=SHARED_OPERATOR)
    assert revoked.json()["revoked"] == 2
    assert collector.post_event(first, "web-01") == 401
    assert collector.post_event(second, "web-01") == 401
    again = collector.client.post("/api/v1/credentials/agent/web-01/revoke",
                                  headers=SHARED_OPERATOR)
    assert again.status_code == 404


def test_named_operators_sign_the_timeline_and_agents_cannot_issue(collector: Collector
                                                                    ) -> None:
    alice = collector.issue("alice", kind="operator").json()["token"]
    number = collector.client.post("/api/v1/events", headers=bearer(AGENT_TOKEN),
                                   json=event_json(event())).json()["results"][0]["ticket"]
    acted = collector.client.post(f"/api/v1/tickets/{number}/comment", headers=bearer(alice),
                                  json={"text": "looking", "author": "mallory"})
    assert acted.status_code == 200, acted.text
    comment = [e for e in acted.json()["timeline"] if e["kind"] == "comment"]
    assert [(e["author"], e["text"]) for e in comment] == [("alice", "looking")]
    # Named operators may issue; agent tokens (shared or issued) may not; none is 401.
    assert collector.issue("bob", kind="operator", headers=bearer(alice)).status_code == 201
    agent = collector.issue("web-01").json()["token"]
    assert collector.issue("web-02", headers=bearer(agent)).status_code == 403
    assert collector.issue("web-02", headers=bearer(AGENT_TOKEN)).status_code == 403
    assert collector.issue("web-02", headers={}).status_code == 401
    # An operator credential cannot post events.
    assert collector.post_event(alice, "web-01") == 403


def test_bad_credential_requests_are_4xx(collector: Collector) -> None:
    for body in ({"name": ""}, {"name": "a b"}, {"name": "x", "kind": "root"},
                 {"name": "x", "hosts": ["bad host"]}, {"name": "x" * 300}):
        answer = collector.client.post("/api/v1/credentials", headers=SHARED_OPERATOR,
                                       json=body)
        assert answer.status_code == 422, body
    missing = collector.client.post("/api/v1/credentials/agent/nobody/rotate",
                                    headers=SHARED_OPERATOR)
    assert missing.status_code == 404
