"""A fleet incident in a REAL Redmine (Debian's package, on loopback): 30 hosts of one
role breach within 3 seconds -> exactly one issue is created, naming all 30 hosts at
Immediate (P1); they recover -> that one issue is closed once.

The collector's engine, applier, dispatch outbox and watchdog run in this process on a
settable clock (so the verification period passes at once), on SQLite and on
PostgreSQL; every request the adapter sends to Redmine is recorded.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from patrol.collector.dispatch.dispatcher import Dispatcher
from patrol.collector.dispatch.routing import Route, TicketingSettings
from patrol.collector.model import TicketStatus
from patrol.ticketing_bridge.redmine import Redmine
from tests.collector_fixtures import MINUTE, Clock, World, event, store_for

pytest.register_assert_rewrite("tests.helpdesk_servers")
from tests.helpdesk_servers import HelpdeskServer  # noqa: E402
from tests.test_bridge_e2e import issues_with_subject  # noqa: E402

pytest_plugins = ["tests.helpdesk_servers"]  # the redmine_server fixture
pytestmark = pytest.mark.slow
HOLD = 10.0


class RecordingSession(requests.Session):
    """A requests session that remembers every request: (method, path, JSON body)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str, Any]] = []

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.sent.append((method, url.split("/", 3)[-1], kwargs.get("json")))
        return super().request(method, url, *args, **kwargs)

    def writes(self) -> list[tuple[str, str, Any]]:
        return [s for s in self.sent if s[0] in ("POST", "PUT")]


@pytest.fixture(params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path: object,
          redmine_server: HelpdeskServer) -> Iterator[tuple[World, RecordingSession]]:
    store = store_for(request.param, request, tmp_path)
    world = World(store)
    world.clock = Clock(time.time())  # real dates: Redmine checks the due date
    world.engine.clock = world.clock
    session = RecordingSession()
    adapter = Redmine({"type": "redmine", "url": redmine_server.url,
                       "api_key": redmine_server.token}, "redmine", session)
    settings = TicketingSettings(helpdesks={"redmine": {"type": "redmine"}}, group_hold=HOLD,
                                 routes=[Route(helpdesk="redmine", project="monitoring")])
    world.engine.dispatcher = Dispatcher(store, settings, {"redmine": adapter},
                                         {"redmine": 4}, world.clock)
    try:
        yield world, session
    finally:
        world.engine.dispatcher.close()
        store.close()


def deliver(world: World, after: float = 0.0) -> None:
    world.clock.advance(after)
    while world.engine.dispatcher.run_once():
        pass


def test_thirty_hosts_breaching_together_are_one_redmine_issue_resolved_once(
        world: tuple[World, RecordingSession], redmine_server: HelpdeskServer) -> None:
    w, session = world
    role = f"web{secrets.token_hex(3)}"  # Redmine's database outlives test runs
    hosts = [f"{role}-{n:02d}" for n in range(1, 31)]
    labels = {"role": role, "tier": "standard"}
    for host in hosts:  # warning on standard tier: P3, P2 at 3 hosts, P1 at 10
        w.one(event(host, "http", status="WARNING", check_type="http", labels=labels,
                    summary=f"https://{host}/health answered 503", observed_at=w.clock()))
        deliver(w, 0.1)
    deliver(w, HOLD)

    creates = [s for s in session.writes() if s[0] == "POST" and s[1] == "issues.json"]
    assert len(creates) == 1
    [issue] = issues_with_subject(redmine_server, f"role={role}")
    assert issue["subject"].endswith(f"http failing on 30 hosts with role={role}")
    assert issue["priority"]["name"] == "Immediate"
    assert all(host in issue["description"] for host in hosts)
    assert len(issues_with_subject(redmine_server, role)) == 1  # no member has an issue

    for host in hosts:
        w.one(event(host, "http", status="OK", check_type="http", labels=labels,
                    observed_at=w.clock()))
        w.clock.advance(0.1)
    deliver(w, HOLD)
    w.tick(5 * MINUTE)  # verified: the members resolve, and the parent in the same pass
    deliver(w, HOLD)

    [parent] = [t for t in w.store.list_tickets() if t.is_group]
    assert parent.status is TicketStatus.RESOLVED
    closing = [s for s in session.writes()
               if s[0] == "PUT" and "status_id" in (s[2] or {}).get("issue", {})]
    assert len(closing) == 1
    [issue] = issues_with_subject(redmine_server, role)
    assert issue["status"]["name"] == "Closed"
    assert len([s for s in session.writes() if s[0] == "POST"]) == 1
    # The whole conversation: the open, one update (30 recovering), the close.
    assert [(m, sorted((b or {})["issue"])) for m, _, b in session.writes()][1:] == [
        ("PUT", ["priority_id"]), ("PUT", ["notes"]), ("PUT", ["notes", "status_id"])]
