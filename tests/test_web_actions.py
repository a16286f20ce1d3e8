"""Acting from the ticket page: acknowledge, comment, resolve (the API's still-failing
rule), close and silence, each on the timeline under the operator's name; CSRF and a
foreign Origin refused; the session cookie opens no JSON endpoint. The real app
(API and pages) on SQLite and PostgreSQL, through FastAPI's TestClient."""

from __future__ import annotations

import re
import warnings

import pytest

from patrol.collector.ingest.api import create_app
from patrol.collector.model import TicketStatus
from tests.collector_fixtures import AGENT_TOKEN, OPERATOR_TOKEN, World, event, event_json

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytest_plugins = ["tests.store_worlds"]


class Browser:
    """A logged-in browser: the session cookie, and the forms' CSRF token."""

    def __init__(self, world: World, token: str = OPERATOR_TOKEN) -> None:
        self.world = world
        self.client = TestClient(create_app(world.engine, [AGENT_TOKEN], [OPERATOR_TOKEN]))
        landed = self.client.post("/login", data={"token": token})
        assert landed.status_code == 200, landed.text
        self.number = self.client.post(
            "/api/v1/events", headers={"Authorization": f"Bearer {AGENT_TOKEN}"},
            json=event_json(event("db-01", "root-disk"))).json()["results"][0]["ticket"]

    def page(self) -> str:
        response = self.client.get(f"/tickets/{self.number}")
        assert response.status_code == 200, response.text
        return response.text

    def csrf(self) -> str:
        return re.search(r'name="csrf" value="([^"]+)"', self.page()).group(1)

    def act(self, action: str, csrf: str | None = None, **fields: str) -> object:
        data = {"action": action, "csrf": self.csrf() if csrf is None else csrf, **fields}
        return self.client.post(f"/tickets/{self.number}/action", data=data,
                                follow_redirects=False)

    def timeline(self) -> list[tuple[str, str, str]]:
        ticket = self.world.ticket(self.number)
        return [(e.kind, e.author, e.text) for e in self.world.store.timeline(ticket.id)]


@pytest.fixture
def browser(any_world: World) -> Browser:
    return Browser(any_world)


def test_every_action_from_the_page_lands_on_the_timeline(browser: Browser) -> None:
    page = browser.page()
    for label in ("Acknowledge", "Comment", "Resolve", "Close", "Silence"):
        assert f">{label}</button>" in page
    done = browser.act("acknowledge")
    assert done.status_code == 303
    assert done.headers["location"] == f"/tickets/{browser.number}#timeline"
    assert browser.act("comment", text="disk cleanup running").status_code == 303
    refused = browser.act("resolve", text="fixed")
    assert refused.status_code == 409
    assert "still reports CRITICAL on db-01" in refused.text
    assert "although it still fails" in refused.text
    assert browser.world.ticket(browser.number).status is TicketStatus.IN_PROGRESS
    assert browser.act("resolve", text="won't fix: archive disk", force="yes").status_code == 303
    assert browser.act("close", force="yes").status_code == 303
    kinds = [(kind, author) for kind, author, _ in browser.timeline()]
    assert kinds == [("opened", "patrol"), ("acknowledged", "operator"),
                     ("comment", "operator"), ("resolved", "operator"),
                     ("closed", "operator")]
    page = browser.page()
    assert "disk cleanup running" in page and "won&#39;t fix: archive disk" in page
    assert ">Acknowledge</button>" not in page and ">Close</button>" not in page


def test_silence_opens_a_maintenance_window_for_the_host_or_check(browser: Browser) -> None:
    assert browser.act("silence", scope="check", hours="3", text="migration").status_code == 303
    windows = browser.world.store.maintenance_windows()
    assert [(w["hosts"], w["checks"], w["origin"]) for w in windows] == [
        (["db-01"], ["root-disk"], "web")]
    span = windows[0]
    assert "silenced from" in span["name"] and span["reason"] == "migration"
    silenced = [e for e in browser.timeline() if e[0] == "silenced"]
    assert silenced == [("silenced", "operator",
                         f"silenced root-disk on db-01 for 3h (maintenance window "
                         f"{windows[0]['id']}): migration")]
    assert browser.act("silence", scope="host", hours="999").status_code == 400
    assert browser.act("silence", scope="fleet", hours="2").status_code == 400
    assert len(browser.world.store.maintenance_windows()) == 1


def test_forms_without_the_csrf_token_or_from_another_site_change_nothing(
        browser: Browser) -> None:
    assert browser.act("acknowledge", csrf="").status_code == 403
    assert browser.act("acknowledge", csrf="forged").status_code == 403
    foreign = browser.client.post(
        f"/tickets/{browser.number}/action", headers={"Origin": "https://evil.example"},
        data={"action": "acknowledge", "csrf": browser.csrf()})
    assert foreign.status_code == 403
    json_body = browser.client.post(f"/tickets/{browser.number}/action",
                                    json={"action": "acknowledge", "csrf": browser.csrf()})
    assert json_body.status_code == 403
    assert [kind for kind, _, _ in browser.timeline()] == ["opened"]
    assert browser.act("reopen").status_code == 400


def test_the_session_cookie_is_no_credential_for_the_json_api(browser: Browser) -> None:
    assert browser.client.get("/tickets").status_code == 200
    assert browser.client.get("/api/v1/tickets").status_code == 401
    assert browser.client.post(f"/api/v1/tickets/{browser.number}/acknowledge",
                               json={}).status_code == 401


def test_a_named_operator_signs_the_actions(any_world: World) -> None:
    issuer = TestClient(create_app(any_world.engine, [AGENT_TOKEN], [OPERATOR_TOKEN]))
    alice = issuer.post("/api/v1/credentials", json={"kind": "operator", "name": "alice"},
                        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}).json()["token"]
    browser = Browser(any_world, alice)
    assert "alice" in browser.page()  # who is logged in, in the header
    assert browser.act("acknowledge").status_code == 303
    assert browser.timeline()[-1][:2] == ("acknowledged", "alice")
