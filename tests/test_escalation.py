"""SLA escalations reach people: a comment per level in the ticket's helpdesk, a priority
bump on a breach, the page route told as its own notification, each exactly once; on
SQLite and PostgreSQL, through the webhook adapter to a small HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from patrol.cli import main as cli
from patrol.collector.dispatch.dispatcher import Dispatcher
from patrol.collector.dispatch.routing import Route, TicketingSettings
from patrol.collector.ingest.api import create_app
from patrol.collector.model import Priority, TicketStatus
from patrol.collector.policy.settings import PolicyConfig
from patrol.collector.tickets.actions import act
from patrol.ticketing_bridge.webhook import Webhook
from tests.collector_fixtures import MINUTE, OPERATOR_TOKEN, World, event, store_for
from tests.conftest import free_port

TEMPLATE = {"action": "{action}", "number": "{number}", "priority": "{priority}",
            "text": "{text}"}


class Helpdesk:
    """Records every JSON body POSTed to it, by path (one path per configured helpdesk)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[tuple[str, dict[str, Any]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def actions(self, path: str) -> list[tuple[str, str]]:
        return [(b["action"], b["text"]) for p, b in self.received if p == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def helpdesk() -> Iterator[Helpdesk]:
    server = Helpdesk()
    yield server
    server.close()


def wired(store: Any, helpdesk: Helpdesk, **escalation: Any) -> World:
    """A world whose tickets go to the webhook ``desk`` and whose escalations page
    ``pager`` (both adapters posting to ``helpdesk``)."""
    world = World(store, PolicyConfig.model_validate({"escalation": escalation}))
    adapters = {name: Webhook(Webhook.Config.model_validate(
        {"type": "webhook", "url": helpdesk.url(f"/{name}"), "template": TEMPLATE}), name)
        for name in ("desk", "pager")}
    settings = TicketingSettings(helpdesks={n: {"type": "webhook"} for n in adapters},
                                 routes=[Route(helpdesk="desk")])
    world.engine.dispatcher = Dispatcher(store, settings, adapters, {}, world.clock)
    return world


@pytest.fixture(params=["sqlite", "postgres"])
def paging(request: pytest.FixtureRequest, tmp_path: object,
           helpdesk: Helpdesk) -> Iterator[World]:
    store = store_for(request.param, request, tmp_path)
    world = wired(store, helpdesk, bump_priority_on_breach=True, page="pager")
    try:
        yield world
    finally:
        world.engine.dispatcher.close()
        store.close()


def deliver(w: World) -> None:
    while w.engine.dispatcher.run_once():
        pass


def test_each_level_reaches_the_helpdesk_and_the_pager_once(paging: World,
                                                            helpdesk: Helpdesk) -> None:
    w = paging
    number = w.one(event()).ticket  # P2 on a standard host: respond 30 m, resolve 24 h
    deliver(w)
    assert helpdesk.actions("/desk") == [("open", "")]

    w.tick(24 * MINUTE)  # 80 % of the respond target
    deliver(w)
    w.tick(MINUTE)
    deliver(w)  # the same level again: nothing new
    near = ("comment", f"Patrol escalation (P2 {number}, /var is 96.2% full on db-01 "
                       "(critical at 95%)): respond-by 2023-10-27T09:30:00Z is near (6m left); "
                       "not acknowledged yet")
    assert helpdesk.actions("/desk") == [("open", ""), near]
    assert helpdesk.actions("/pager") == [("open", ""), near]  # paged as its own notice

    w.tick(5 * MINUTE)  # 30 minutes: respond-by passed
    deliver(w)
    w.tick(10 * MINUTE)
    deliver(w)
    passed = ("comment", f"Patrol escalation (P2 {number}, /var is 96.2% full on db-01 "
                         "(critical at 95%)): respond-by 2023-10-27T09:30:00Z passed 0s ago; "
                         "not acknowledged yet")
    # A priority change is the new priority, then the reason as a comment.
    bump = [("priority", ""), ("comment", "Patrol: priority P2 -> P1 (respond-by passed)")]
    for path in ("/desk", "/pager"):
        actions = helpdesk.actions(path)
        assert actions[2:] == [passed, *bump]
        escalations = [t for a, t in actions if t.startswith("Patrol escalation")]
        assert escalations == [near[1], passed[1]]  # one per level, no repeats
    ticket = w.ticket(number)
    assert (ticket.priority, ticket.escalation) == (Priority.P1, 2)
    assert [b["priority"] for p, b in helpdesk.received if p == "/desk"][-1] == "P1"
    assert w.texts(number, "escalation") == [
        "respond-by 2023-10-27T09:30:00Z is near (6m left); not acknowledged yet",
        "respond-by 2023-10-27T09:30:00Z passed 0s ago; not acknowledged yet"]
    assert w.texts(number, "priority") == ["priority P2 -> P1 (respond-by passed)"]


def test_acknowledging_in_patrol_stops_the_respond_escalation(paging: World,
                                                             helpdesk: Helpdesk) -> None:
    w = paging
    number = w.one(event()).ticket
    w.tick(10 * MINUTE)
    act(w.engine, number, "acknowledge", "alice")
    w.tick(30 * MINUTE)
    deliver(w)
    assert [t for _, t in helpdesk.actions("/desk") if "escalation" in t] == []
    assert helpdesk.actions("/pager") == []  # nobody paged
    assert w.ticket(number).status is TicketStatus.IN_PROGRESS
    assert w.ticket(number).escalation == 0


def test_the_ticket_page_shows_the_escalation(paging: World) -> None:
    w = paging
    number = w.one(event()).ticket
    w.tick(31 * MINUTE)
    client = TestClient(create_app(w.engine, [], [OPERATOR_TOKEN]))
    client.post("/login", data={"token": OPERATOR_TOKEN})
    page = client.get(f"/tickets/{number}").text
    assert "<dt>Escalation</dt>" in page and "level 2 of 4: respond-by passed" in page
    assert "SLA breached" in page
    assert "respond-by 2023-10-27T09:30:00Z passed" in page  # the timeline entry


def test_breach_without_a_page_route_only_comments(tmp_path: Path,
                                                   request: pytest.FixtureRequest,
                                                   helpdesk: Helpdesk) -> None:
    store = store_for("sqlite", request, tmp_path)
    w = wired(store, helpdesk)
    try:
        number = w.one(event()).ticket
        w.tick(31 * MINUTE)
        deliver(w)
        assert [a for a, _ in helpdesk.actions("/desk")] == ["open", "comment"]
        assert helpdesk.actions("/pager") == []
        assert w.ticket(number).priority is Priority.P2  # no bump unless the policy says
    finally:
        w.engine.dispatcher.close()
        store.close()


@pytest.mark.parametrize(("policy", "expected"), [
    pytest.param("  escalation:\n    page: pagerduty\n",
                 "{f}:5: policy, option 'escalation.page': escalation page 'pagerduty' is "
                 "not a configured helpdesk; known: hook", id="unknown-page"),
    pytest.param("  escalation:\n    bump_priority_on_breach: maybe\n",
                 "{f}:5: policy, option 'escalation.bump_priority_on_breach': expected true "
                 "or false (got 'maybe')", id="bad-bool"),
])
def test_escalation_settings_are_validated_with_file_and_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], policy: str, expected: str) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text(
        "collector:\n"
        "  listen: 127.0.0.1:9732\n"
        "policy:\n" + policy +
        "ticketing:\n"
        "  helpdesks:\n"
        "    hook: {type: webhook, url: 'http://127.0.0.1:9/x', preset: slack}\n"
        "  routes:\n"
        "    - helpdesk: hook\n")
    assert cli(["validate", str(path)]) == 1
    assert capsys.readouterr().out == expected.format(f=path) + "\n"
