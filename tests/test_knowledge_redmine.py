"""A person's resolution note read back from the REAL Redmine on loopback, for the
knowledge archive: their note, not Patrol's own updates."""

from __future__ import annotations

import pytest
import requests

from patrol.ticketing_bridge.protocol import Destination
from patrol.ticketing_bridge.redmine import Redmine
from patrol.ticketing_bridge.rt import RequestTracker

pytest.register_assert_rewrite("tests.helpdesk_servers")
from tests.helpdesk_servers import HelpdeskServer, ticket_view  # noqa: E402

pytest_plugins = ["tests.helpdesk_servers"]
pytestmark = pytest.mark.slow


def test_the_persons_closing_note_comes_back_with_the_status(redmine_server: HelpdeskServer):
    server = redmine_server
    redmine = Redmine({"type": "redmine", "url": server.url, "api_key": server.token,
                       "project": "monitoring"}, "redmine-test")
    view = ticket_view()
    ref = redmine.open(view, Destination("redmine-test"))
    assert redmine.status(ref).note is None  # open: not even asked
    headers = {"X-Redmine-API-Key": server.token}
    statuses = requests.get(f"{server.url}/issue_statuses.json", headers=headers,
                            timeout=10).json()["issue_statuses"]
    closed = next(s["id"] for s in statuses if s["name"] == "Closed")
    note = "Moved the journal to /srv and set SystemMaxUse=2G.\ncause: logs"
    reply = requests.put(f"{server.url}/issues/{ref.id}.json", headers=headers, timeout=10,
                         json={"issue": {"notes": note, "status_id": closed}})
    assert reply.status_code == 204, reply.text
    redmine.comment(ref, "Patrol: /var is OK again on db-01", view)  # Patrol's, after it
    status = redmine.status(ref)
    assert status.state == "closed"
    assert status.note is not None and status.note.replace("\r\n", "\n") == note
    assert status.note_author  # the Redmine user who wrote it


def test_rt_gives_back_the_persons_resolving_reply(rt_server: HelpdeskServer):
    server = rt_server
    tracker = RequestTracker({"type": "rt", "url": server.url, "token": server.token},
                             "rt-test")
    view = ticket_view()
    ref = tracker.open(view, Destination("rt-test"))
    headers = {"Authorization": f"token {server.token}"}
    note = "Replaced the failed disk in slot 3.\ncause: hardware"
    reply = requests.post(f"{server.url}/REST/2.0/ticket/{ref.id}/comment", headers=headers,
                          timeout=20, json={"Content": note, "ContentType": "text/plain"})
    assert reply.status_code == 201, reply.text
    tracker.resolve(ref, "Patrol: /var is OK again on db-01", view, Destination("rt-test"))
    status = tracker.status(ref)
    assert status.state == "resolved"
    assert status.note == note and status.note_author
