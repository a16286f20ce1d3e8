"""The Jira adapter against a fake Jira that checks every request against the
documented REST v3 (Cloud) and v2 (Server/Data Center) APIs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from pydantic import ValidationError

from patrol.ticketing_bridge.jira import Jira, label_for
from patrol.ticketing_bridge.protocol import Destination, PermanentError, TemporaryError, TicketView
from tests.conftest import free_port
from tests.fakes import fake_server, run_contract
from tests.fakes.jira import FakeJira

VIEW = TicketView(
    number="TS20261122001", fingerprint="patrol-TS20261122001",
    title="/var is 93.4% full on db-01 (critical at 95%)",
    body="**/var** is 93.4% full.\n\n- used: 93.4%\n- free: 2.1 GiB", priority="P2",
    severity="critical", status="new", category="disk", host="db-01", check="var-disk",
    check_type="disk")
DEST = Destination("jira", project="OPS")


@pytest.fixture(params=[3, 2], ids=["cloud-v3", "server-v2"])
def fake(request: pytest.FixtureRequest) -> Iterator[FakeJira]:
    with fake_server(FakeJira(api_version=request.param)) as server:
        yield server


def adapter_for(fake: FakeJira, **overrides: object) -> Jira:
    config: dict[str, object] = {"type": "jira", "url": fake.url, "api_version": fake.api_version,
                                 "token": fake.token}
    if fake.api_version == 3:
        config["email"] = fake.email
    return Jira({**config, **overrides}, "jira")


def test_contract(fake: FakeJira) -> None:
    jira = adapter_for(fake)
    ref = run_contract(jira, VIEW, DEST, assign=lambda r: fake.assign(r.id),
                       priority_of=lambda r: fake.issues[r.id]["fields"]["priority"]["name"],
                       raised=replace(VIEW, priority="P1"), raised_value="Highest")
    assert ref.id == "OPS-1" and ref.url == f"{fake.url}/browse/OPS-1"
    assert len(fake.issues) == 1
    # resolve comments then transitions to Done; reopen transitions then comments
    assert len(fake.comments["OPS-1"]) == 3


def test_issue_fields_as_an_administrator_expects(fake: FakeJira) -> None:
    jira = adapter_for(fake)
    jira.open(VIEW, Destination("jira", project="OPS", assignee="ada"))
    fields = fake.issues["OPS-1"]["fields"]
    assert fields["summary"] == "[TS20261122001] /var is 93.4% full on db-01 (critical at 95%)"
    assert fields["issuetype"] == {"name": "Task"}
    assert fields["priority"] == {"name": "High"}  # P2
    assert fields["labels"] == ["patrol-TS20261122001"]
    created = fake.calls("POST", f"/rest/api/{fake.api_version}/issue")[0].body["fields"]
    assert created["assignee"] == ({"accountId": "ada"} if fake.api_version == 3
                                   else {"name": "ada"})
    description = fields["description"]
    if fake.api_version == 3:
        assert description["type"] == "doc" and description["version"] == 1
        assert "/var" in str(description["content"])
    else:
        assert isinstance(description, str) and "*/var*" in description


@pytest.mark.parametrize(("fingerprint", "label"), [
    ("patrol-TS20261122001", "patrol-TS20261122001"),
    ("db-01:disk:/var", "patrol-db-01-disk-var"),
    ("two words", "patrol-two-words"),
], ids=["already-a-label", "punctuation", "spaces"])
def test_fingerprint_label(fingerprint: str, label: str) -> None:
    assert label_for(fingerprint) == label


def test_wont_do_resolution_is_reported(fake: FakeJira) -> None:
    jira = adapter_for(fake)
    ref = jira.open(VIEW, DEST)
    fake.resolve_as(ref.id, "Won't Do")
    status = jira.status(ref)
    assert (status.state, status.wont_fix, status.raw_status) == ("resolved", True, "Done")


def test_resolve_twice_is_harmless(fake: FakeJira) -> None:
    jira = adapter_for(fake)
    ref = jira.open(VIEW, DEST)
    jira.resolve(ref, "", VIEW, DEST)
    jira.resolve(ref, "", VIEW, DEST)  # a retried delivery
    assert jira.status(ref).state == "resolved"


def test_unknown_transition_names_what_the_workflow_offers(fake: FakeJira) -> None:
    jira = adapter_for(fake, resolve_transition="Close Issue")
    ref = jira.open(VIEW, DEST)
    with pytest.raises(PermanentError, match="offers: Start Progress, Done"):
        jira.resolve(ref, "", VIEW, DEST)


def test_bad_credentials_are_permanent(fake: FakeJira) -> None:
    jira = adapter_for(fake, token="wrong")
    with pytest.raises(PermanentError, match="check the credentials") as err:
        jira.find(VIEW.fingerprint, DEST)
    assert err.value.status == 401


def test_unknown_project_is_permanent(fake: FakeJira) -> None:
    with pytest.raises(PermanentError, match="valid project is required") as err:
        adapter_for(fake).open(VIEW, Destination("jira", project="NOPE"))
    assert err.value.status == 400
    assert fake.issues == {}


def test_rate_limit_honours_retry_after(fake: FakeJira) -> None:
    fake.fail_next(429, {"errorMessages": ["Rate limit exceeded."]}, {"Retry-After": "7"})
    with pytest.raises(TemporaryError) as err:
        adapter_for(fake).open(VIEW, DEST)
    assert (err.value.status, err.value.retry_after) == (429, 7.0)
    assert fake.issues == {}


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_temporary(fake: FakeJira, status: int) -> None:
    fake.fail_next(status, "upstream error")
    with pytest.raises(TemporaryError) as err:
        adapter_for(fake).find(VIEW.fingerprint, DEST)
    assert err.value.status == status


def test_connection_refused_is_temporary() -> None:
    jira = Jira({"type": "jira", "url": f"http://127.0.0.1:{free_port()}", "email": "a@b",
                 "token": "t"}, "jira")
    with pytest.raises(TemporaryError, match="cannot connect"):
        jira.find(VIEW.fingerprint, DEST)


def test_cloud_without_email_is_a_config_error() -> None:
    with pytest.raises(ValidationError, match="set 'email', or api_version: 2"):
        Jira.Config.model_validate({"type": "jira", "url": "https://x.atlassian.net",
                                    "token": "t"})


def test_deleted_issue_is_permanent(fake: FakeJira) -> None:
    jira = adapter_for(fake)
    with pytest.raises(PermanentError, match="Issue does not exist") as err:
        jira.status(jira._ref("OPS-99"))
    assert err.value.status == 404
