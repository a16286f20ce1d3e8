"""The Request Tracker adapter against a REAL RT 5 (Debian's package) on loopback.

RT checks a bcrypt hash on every request (~250 ms each here), so the contract is one
test walking the whole sequence, plus a few error tests of one request or none.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
import requests

from patrol.contract import markup
from patrol.ticketing_bridge.protocol import Destination, PermanentError, TemporaryError
from patrol.ticketing_bridge.rt import RequestTracker
from tests.conftest import free_port

pytest.register_assert_rewrite("tests.helpdesk_servers")  # imported here, then a plugin
from tests.helpdesk_servers import HelpdeskServer, ticket_view  # noqa: E402

pytest_plugins = ["tests.helpdesk_servers"]  # the rt_server fixture
pytestmark = pytest.mark.slow
DEST = Destination("rt-test")


def adapter(server: HelpdeskServer, **config: object) -> RequestTracker:
    return RequestTracker({"type": "rt", "url": server.url, "token": server.token} | config,
                          "rt-test")


def rt(server: HelpdeskServer, method: str, path: str, **kwargs: object) -> object:
    """RT's REST2 used directly (as a person in RT would act, or to read back)."""
    reply = requests.request(method, f"{server.url}/REST/2.0/{path}", timeout=20,
                             headers={"Authorization": f"token {server.token}"}, **kwargs)
    assert reply.status_code in (200, 201), reply.text
    return reply.json()


def test_contract_sequence(rt_server: HelpdeskServer) -> None:
    server, tracker = rt_server, adapter(rt_server)
    # a quote and a backslash: the TicketSQL literal must be escaped to match
    view = ticket_view(fingerprint=ticket_view().fingerprint + "'\\x")

    assert tracker.find(view.fingerprint, DEST) is None

    ref = tracker.open(view, DEST)
    assert ref.helpdesk == "rt-test" and ref.id.isdigit()
    assert ref.url == f"{server.url}/Ticket/Display.html?id={ref.id}"
    assert tracker.find(view.fingerprint, DEST) == ref

    tracker.comment(ref, "still **breaching**: 94.0%", view)
    tracker.set_priority(ref, dataclasses.replace(view, priority="P1"), DEST)
    ticket = rt(server, "GET", f"ticket/{ref.id}")
    assert ticket["Subject"] == "[TS20261122001] /var is 93.4% full on db-01 (critical at 95%)"
    assert ticket["Priority"] == "90"  # P1 (created as P3 = 50)
    assert [cf["values"] for cf in ticket["CustomFields"]
            if cf["name"] == "Alert fingerprint"] == [[view.fingerprint]]
    assert ticket["Due"] == datetime.fromtimestamp(view.resolve_by, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    texts = rt(server, "GET", f"ticket/{ref.id}/attachments",
               params={"fields": "ContentType,Content"})["items"]
    html = [a["Content"] for a in texts if a["ContentType"] == "text/html"]
    assert html[:2] == [markup.to_html(view.body),
                        markup.to_html("still **breaching**: 94.0%")]

    status = tracker.status(ref)
    assert (status.state, status.raw_status, status.assignee) == ("open", "new", None)

    tracker.resolve(ref, "verified fixed: 41.0%", view, DEST)
    status = tracker.status(ref)
    assert (status.state, status.raw_status, status.wont_fix) == ("resolved", "resolved", False)
    assert tracker.find(view.fingerprint, DEST) is None  # inactive tickets are not matched

    tracker.reopen(ref, "it came back", view, DEST)
    status = tracker.status(ref)
    assert (status.state, status.raw_status) == ("open", "open")
    assert tracker.find(view.fingerprint, DEST) == ref

    rt(server, "PUT", f"ticket/{ref.id}", json={"Owner": "root"})  # root takes it in RT
    status = tracker.status(ref)
    assert (status.state, status.assignee) == ("acknowledged", "root")

    rt(server, "PUT", f"ticket/{ref.id}", json={"Status": "rejected"})  # won't fix
    status = tracker.status(ref)
    assert (status.state, status.wont_fix, status.raw_status) == ("closed", True, "rejected")


@pytest.mark.parametrize("credentials", [
    pytest.param({"token": "1-14-0123456789abcdef0123456789abcdef"}, id="wrong-token"),
    pytest.param({"token": None, "username": "root", "password": "wrong"}, id="wrong-password"),
])
def test_bad_credentials_are_permanent_401(rt_server: HelpdeskServer,
                                           credentials: dict) -> None:
    tracker = adapter(rt_server, **credentials)
    with pytest.raises(PermanentError, match="check the credentials") as caught:
        tracker.find("anything", DEST)
    assert caught.value.status == 401


def test_basic_auth_works(rt_server: HelpdeskServer) -> None:
    tracker = adapter(rt_server, token=None, username=rt_server.username,
                      password=rt_server.password)
    assert tracker.find(ticket_view().fingerprint, DEST) is None


def test_unknown_queue_is_permanent_and_named(rt_server: HelpdeskServer) -> None:
    tracker = adapter(rt_server, queue="No Such Queue")
    with pytest.raises(PermanentError, match="RT queue 'No Such Queue' does not exist"):
        tracker.open(ticket_view(), DEST)


def test_stopped_server_is_temporary() -> None:
    tracker = RequestTracker({"type": "rt", "url": f"http://127.0.0.1:{free_port()}",
                              "token": "1-14-x"}, "rt-test")
    with pytest.raises(TemporaryError, match="cannot connect"):
        tracker.find("anything", DEST)
