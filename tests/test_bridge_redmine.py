"""The Redmine adapter against a REAL Redmine 5 (Debian's package) on loopback."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
import requests

from patrol.contract import markup
from patrol.ticketing_bridge.protocol import Destination, PermanentError, TemporaryError
from patrol.ticketing_bridge.redmine import Redmine
from tests.conftest import free_port

pytest.register_assert_rewrite("tests.helpdesk_servers")  # imported here, then a plugin
from tests.helpdesk_servers import HelpdeskServer, ticket_view  # noqa: E402

pytest_plugins = ["tests.helpdesk_servers"]  # the redmine_server fixture
pytestmark = pytest.mark.slow
DEST = Destination("redmine-test")


def adapter(server: HelpdeskServer, **config: object) -> Redmine:
    settings = {"type": "redmine", "url": server.url, "api_key": server.token,
                "project": "monitoring"}
    return Redmine(settings | config, "redmine-test")


def issue(server: HelpdeskServer, issue_id: str) -> dict:
    """Read an issue back through the API, as a person checking the helpdesk would."""
    reply = requests.get(f"{server.url}/issues/{issue_id}.json", params={"include": "journals"},
                         headers={"X-Redmine-API-Key": server.token}, timeout=10)
    reply.raise_for_status()
    return reply.json()["issue"]


def edit(server: HelpdeskServer, issue_id: str, **fields: object) -> None:
    """A change made directly in Redmine (by "a person"), not through the adapter."""
    reply = requests.put(f"{server.url}/issues/{issue_id}.json", json={"issue": fields},
                         headers={"X-Redmine-API-Key": server.token}, timeout=10)
    assert reply.status_code == 204, reply.text


def test_contract_sequence(redmine_server: HelpdeskServer) -> None:
    server, redmine, view = redmine_server, adapter(redmine_server), ticket_view()

    assert redmine.find(view.fingerprint, DEST) is None

    ref = redmine.open(view, DEST)
    assert ref.helpdesk == "redmine-test" and ref.id.isdigit()
    assert ref.url == f"{server.url}/issues/{ref.id}"
    created = issue(server, ref.id)
    assert created["subject"] == "[TS20261122001] /var is 93.4% full on db-01 (critical at 95%)"
    assert created["description"].replace("\r\n", "\n") == markup.to_textile(view.body)
    assert created["project"]["name"] == "Monitoring"
    assert created["tracker"]["name"] == "Support"
    assert created["priority"]["name"] == "High"  # P3
    assert [cf["value"] for cf in created["custom_fields"]
            if cf["name"] == "Alert fingerprint"] == [view.fingerprint]
    assert created["due_date"] == datetime.fromtimestamp(view.resolve_by, UTC).date().isoformat()

    assert redmine.find(view.fingerprint, DEST) == ref

    redmine.comment(ref, "still **breaching**: 94.0%", view)
    redmine.set_priority(ref, dataclasses.replace(view, priority="P1"), DEST)
    after = issue(server, ref.id)
    assert after["journals"][0]["notes"] == markup.to_textile("still **breaching**: 94.0%")
    assert after["priority"]["name"] == "Immediate"

    status = redmine.status(ref)
    assert (status.state, status.raw_status, status.assignee) == ("open", "New", None)

    redmine.resolve(ref, "verified fixed: 41.0%", view, DEST)
    status = redmine.status(ref)
    assert (status.state, status.raw_status, status.wont_fix) == ("closed", "Closed", False)
    assert issue(server, ref.id)["journals"][-1]["notes"] == "verified fixed: 41.0%"
    assert redmine.find(view.fingerprint, DEST) is None  # closed issues are not matched

    redmine.reopen(ref, "it came back", view, DEST)
    assert (redmine.status(ref).state, redmine.status(ref).raw_status) == ("open", "New")
    assert redmine.find(view.fingerprint, DEST) == ref

    edit(server, ref.id, assigned_to_id=1)  # admin takes it in Redmine
    status = redmine.status(ref)
    assert (status.state, status.assignee) == ("acknowledged", "Redmine Admin")


@pytest.mark.parametrize(("set_to", "state", "wont_fix"), [
    pytest.param(2, "acknowledged", False, id="in-progress-is-acknowledged"),
    pytest.param(3, "resolved", False, id="resolved-is-resolved"),
    pytest.param(6, "closed", True, id="rejected-is-wont-fix"),
])
def test_status_read_back(redmine_server: HelpdeskServer, set_to: int, state: str,
                          wont_fix: bool) -> None:
    redmine = adapter(redmine_server)
    ref = redmine.open(ticket_view(), DEST)
    edit(redmine_server, ref.id, status_id=set_to)
    status = redmine.status(ref)
    assert (status.state, status.wont_fix, status.assignee) == (state, wont_fix, None)


def test_configured_resolved_status_and_names(redmine_server: HelpdeskServer) -> None:
    redmine = adapter(redmine_server, resolved_status="Resolved", reopen_status="In Progress",
                      tracker="Bug", fingerprint_field=1, priority_map={"P3": "Low"})
    view = ticket_view()
    ref = redmine.open(view, DEST)
    created = issue(redmine_server, ref.id)
    assert (created["tracker"]["name"], created["priority"]["name"]) == ("Bug", "Low")
    redmine.resolve(ref, "", view, DEST)
    assert redmine.status(ref).raw_status == "Resolved"
    assert redmine.status(ref).state == "resolved"
    redmine.reopen(ref, "", view, DEST)
    assert redmine.status(ref).state == "acknowledged"  # "In Progress"
    assert not any(j["notes"] for j in issue(redmine_server, ref.id)["journals"])


def test_wrong_api_key_is_permanent_401(redmine_server: HelpdeskServer) -> None:
    redmine = adapter(redmine_server, api_key="0" * 40)
    with pytest.raises(PermanentError, match="check the credentials") as caught:
        redmine.find("anything", DEST)
    assert caught.value.status == 401


@pytest.mark.parametrize("operation", ["open", "find"])
def test_unknown_project_is_permanent(redmine_server: HelpdeskServer, operation: str) -> None:
    redmine, view = adapter(redmine_server), ticket_view()
    dest = Destination("redmine-test", project="no-such-project")
    with pytest.raises(PermanentError, match="project 'no-such-project' does not exist"):
        if operation == "open":
            redmine.open(view, dest)
        else:
            redmine.find(view.fingerprint, dest)


def test_validation_error_is_permanent_with_redmines_messages(
        redmine_server: HelpdeskServer) -> None:
    redmine = adapter(redmine_server)
    view = ticket_view()
    dest = Destination("redmine-test", fields={"start_date": "2030-01-10",
                                               "due_date": "2030-01-01"})
    with pytest.raises(PermanentError, match=r"\(422\): Due date must be greater than start "
                                             "date") as caught:
        redmine.open(view, dest)
    assert caught.value.status == 422
    assert redmine.find(view.fingerprint, DEST) is None


@pytest.mark.parametrize(("config", "message"), [
    pytest.param({"priority_map": {"P3": "Whenever"}}, "no issue priority 'Whenever'",
                 id="priority"),
    pytest.param({"tracker": "Incident"}, "no tracker 'Incident' enabled in project "
                 "'monitoring'", id="tracker"),
    pytest.param({"fingerprint_field": "Fingerprint"}, "no issue custom field 'Fingerprint'",
                 id="fingerprint-field"),
])
def test_unknown_names_are_permanent(redmine_server: HelpdeskServer, config: dict,
                                     message: str) -> None:
    with pytest.raises(PermanentError, match=message):
        adapter(redmine_server, **config).open(ticket_view(), DEST)


def test_stopped_server_is_temporary() -> None:
    stopped = HelpdeskServer(f"http://127.0.0.1:{free_port()}", "0" * 40, 0, None)  # type: ignore[arg-type]
    with pytest.raises(TemporaryError, match="cannot connect"):
        adapter(stopped).find("anything", DEST)
