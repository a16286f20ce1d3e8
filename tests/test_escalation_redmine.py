"""Escalations in a REAL Redmine (Debian's package, on loopback): the respond-by warning
arrives as one note, and a person taking the issue in Redmine stops the respond-by
escalation once the sync reads it back. SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from patrol.collector.dispatch.dispatcher import Dispatcher
from patrol.collector.dispatch.routing import Route, TicketingSettings
from patrol.collector.model import TicketStatus
from patrol.collector.policy.settings import PolicyConfig
from patrol.ticketing_bridge.redmine import Redmine
from tests.collector_fixtures import MINUTE, World, event, store_for

pytest.register_assert_rewrite("tests.helpdesk_servers")
from tests.helpdesk_servers import HelpdeskServer  # noqa: E402

pytest_plugins = ["tests.helpdesk_servers"]  # the redmine_server fixture
pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path: object,
          redmine_server: HelpdeskServer) -> Iterator[World]:
    store = store_for(request.param, request, tmp_path)
    w = World(store, PolicyConfig())
    redmine = Redmine({"type": "redmine", "url": redmine_server.url,
                       "api_key": redmine_server.token, "project": "monitoring"}, "redmine")
    settings = TicketingSettings(helpdesks={"redmine": {"type": "redmine"}},
                                 routes=[Route(helpdesk="redmine")])
    w.engine.dispatcher = Dispatcher(store, settings, {"redmine": redmine}, {}, w.clock)
    w.engine.watchdog = w.watchdog
    try:
        yield w
    finally:
        w.engine.dispatcher.close()
        store.close()


def notes(server: HelpdeskServer, issue_id: str) -> list[str]:
    reply = requests.get(f"{server.url}/issues/{issue_id}.json", params={"include": "journals"},
                         headers={"X-Redmine-API-Key": server.token}, timeout=10)
    reply.raise_for_status()
    return [j["notes"] for j in reply.json()["issue"]["journals"] if j.get("notes")]


def deliver(w: World) -> None:
    while w.engine.dispatcher.run_once():
        pass


def take_in_redmine(server: HelpdeskServer, issue_id: str) -> None:
    reply = requests.put(f"{server.url}/issues/{issue_id}.json",
                         json={"issue": {"assigned_to_id": 1}},  # admin takes it
                         headers={"X-Redmine-API-Key": server.token}, timeout=10)
    assert reply.status_code == 204, reply.text


def test_taking_the_issue_in_redmine_stops_the_respond_escalation(
        world: World, redmine_server: HelpdeskServer) -> None:
    w = world
    host = f"db-{secrets.token_hex(3)}"  # one Redmine serves the session: a fresh issue
    number = w.one(event(host)).ticket
    deliver(w)
    issue_id: Any = w.store.link(w.ticket(number).id, "redmine")["external_id"]

    w.tick(24 * MINUTE)  # respond-by near: one note
    deliver(w)
    w.tick(MINUTE)
    deliver(w)
    escalations = [n for n in notes(redmine_server, issue_id) if "escalation" in n]
    assert len(escalations) == 1 and "respond-by" in escalations[0]
    assert "is near (6m left)" in escalations[0]

    take_in_redmine(redmine_server, issue_id)
    w.watchdog.sync(w.engine.dispatcher)  # the helpdesk read-back, as the service runs it
    assert w.ticket(number).status is TicketStatus.IN_PROGRESS

    w.tick(10 * MINUTE)  # respond-by has passed, but someone responded
    deliver(w)
    assert [n for n in notes(redmine_server, issue_id) if "escalation" in n] == escalations
    assert w.ticket(number).escalation == 1
    assert "helpdesk_sync" in w.watchdog.health.snapshot()[1]
