"""The ServiceNow adapter against a fake instance that checks every request against
the documented Table API."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from pydantic import ValidationError

from patrol.ticketing_bridge.protocol import Destination, PermanentError, TemporaryError, TicketView
from patrol.ticketing_bridge.servicenow import ServiceNow
from tests.conftest import free_port
from tests.fakes import fake_server, run_contract
from tests.fakes.servicenow import FakeServiceNow

VIEW = TicketView(
    number="TS20261122001", fingerprint="patrol-TS20261122001",
    title="/var is 93.4% full on db-01 (critical at 95%)",
    body="**/var** is 93.4% full.\n\n- used: 93.4%", priority="P3", severity="critical",
    status="new", category="disk", host="db-01", check="var-disk", check_type="disk")
DEST = Destination("snow", team="Database Team")


@pytest.fixture
def fake() -> Iterator[FakeServiceNow]:
    with fake_server(FakeServiceNow()) as server:
        yield server


def adapter_for(fake: FakeServiceNow, **overrides: object) -> ServiceNow:
    return ServiceNow({"type": "servicenow", "url": fake.url, "username": fake.username,
                       "password": fake.password, **overrides}, "snow")


def incident(fake: FakeServiceNow, sys_id: str) -> dict[str, str]:
    return fake.tables["incident"][sys_id]


def test_contract(fake: FakeServiceNow) -> None:
    snow = adapter_for(fake)
    ref = run_contract(snow, VIEW, DEST, assign=lambda r: fake.assign(r.id),
                       priority_of=lambda r: incident(fake, r.id)["priority"],
                       raised=replace(VIEW, priority="P1"), raised_value="1")
    row = incident(fake, ref.id)
    assert ref.url == f"{fake.url}/incident.do?sys_id={ref.id}"
    assert (row["state"], row["close_code"]) == ("2", "Solution provided")
    assert row["close_notes"].startswith("Recovered: 41% used")
    assert len(fake.work_notes[ref.id]) == 2  # the comment, and the reopen's reason


@pytest.mark.parametrize(("priority", "impact", "urgency", "computed"), [
    ("P1", "1", "1", "1"), ("P2", "1", "2", "2"), ("P3", "2", "2", "3"), ("P4", "3", "2", "4"),
], ids=["P1-critical", "P2-high", "P3-moderate", "P4-low"])
def test_priority_becomes_impact_and_urgency(fake: FakeServiceNow, priority: str, impact: str,
                                             urgency: str, computed: str) -> None:
    ref = adapter_for(fake).open(replace(VIEW, priority=priority), DEST)
    row = incident(fake, ref.id)
    assert (row["impact"], row["urgency"], row["priority"]) == (impact, urgency, computed)


def test_incident_fields(fake: FakeServiceNow) -> None:
    snow = adapter_for(fake, category="software", caller="patrol")
    ref = snow.open(VIEW, Destination("snow", team="Database Team", assignee="ada"))
    row = incident(fake, ref.id)
    assert row["short_description"] == "[TS20261122001] /var is 93.4% full on db-01 " \
                                       "(critical at 95%)"
    assert row["correlation_id"] == "patrol-TS20261122001"
    assert row["category"] == "software"
    assert fake.display("sys_user_group", row["assignment_group"]) == "Database Team"
    assert fake.display("sys_user", row["assigned_to"]) == "Ada Lovelace"
    assert fake.display("sys_user", row["caller_id"]) == "Patrol Integration"
    assert "**" not in row["description"] and "/var" in row["description"]  # plain text


def test_group_lookup_is_cached(fake: FakeServiceNow) -> None:
    snow = adapter_for(fake)
    snow.open(VIEW, DEST)
    snow.open(replace(VIEW, fingerprint="patrol-TS20261122002"), DEST)
    assert len(fake.calls("GET", "/api/now/table/sys_user_group")) == 1


def test_cancel_is_wont_fix(fake: FakeServiceNow) -> None:
    snow = adapter_for(fake)
    ref = snow.open(VIEW, DEST)
    incident(fake, ref.id)["state"] = "8"
    status = snow.status(ref)
    assert (status.state, status.wont_fix, status.raw_status) == ("closed", True, "Canceled")


def test_resolving_without_close_code_is_refused_by_the_data_policy(
        fake: FakeServiceNow) -> None:
    """Why the adapter always sends close_code and close_notes."""
    ref = adapter_for(fake).open(VIEW, DEST)
    with pytest.raises(PermanentError, match="Data Policy Exception") as err:
        adapter_for(fake).http.request("PATCH", f"/api/now/table/incident/{ref.id}",
                                       json={"state": "6"}, expect=(200,))
    assert err.value.status == 403


def test_oauth_bearer_token() -> None:
    with fake_server(FakeServiceNow(token="oauth-access-1")) as fake:
        snow = ServiceNow({"type": "servicenow", "url": fake.url, "token": "oauth-access-1"},
                          "snow")
        assert snow.find(VIEW.fingerprint, DEST) is None


def test_bad_credentials_are_permanent(fake: FakeServiceNow) -> None:
    with pytest.raises(PermanentError, match="User Not Authenticated") as err:
        adapter_for(fake, password="wrong").find(VIEW.fingerprint, DEST)
    assert err.value.status == 401


def test_unknown_assignment_group_is_permanent(fake: FakeServiceNow) -> None:
    with pytest.raises(PermanentError, match="unknown assignment group 'Nobody'"):
        adapter_for(fake).open(VIEW, Destination("snow", team="Nobody"))
    assert fake.tables["incident"] == {}


def test_unknown_table_is_permanent(fake: FakeServiceNow) -> None:
    with pytest.raises(PermanentError, match="Invalid table u_alerts") as err:
        adapter_for(fake, table="u_alerts").find(VIEW.fingerprint, DEST)
    assert err.value.status == 400


def test_rate_limit_honours_retry_after(fake: FakeServiceNow) -> None:
    fake.fail_next(429, {"error": {"message": "Too many requests"}, "status": "failure"},
                   {"Retry-After": "12"})
    with pytest.raises(TemporaryError) as err:
        adapter_for(fake).open(VIEW, DEST)
    assert (err.value.status, err.value.retry_after) == (429, 12.0)


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_temporary(fake: FakeServiceNow, status: int) -> None:
    fake.fail_next(status, "<html>instance hibernating</html>")
    with pytest.raises(TemporaryError):
        adapter_for(fake).find(VIEW.fingerprint, DEST)


def test_connection_refused_is_temporary() -> None:
    snow = ServiceNow({"type": "servicenow", "url": f"http://127.0.0.1:{free_port()}",
                       "token": "t"}, "snow")
    with pytest.raises(TemporaryError, match="cannot connect"):
        snow.find(VIEW.fingerprint, DEST)


def test_auth_is_one_or_the_other() -> None:
    with pytest.raises(ValidationError, match="either 'username' and 'password'"):
        ServiceNow.Config.model_validate({"type": "servicenow", "url": "https://x",
                                          "username": "u"})


def test_deleted_incident_is_permanent(fake: FakeServiceNow) -> None:
    snow = adapter_for(fake)
    with pytest.raises(PermanentError, match="No Record found") as err:
        snow.comment(snow._ref("0" * 32), "Still failing.", VIEW)
    assert err.value.status == 404
