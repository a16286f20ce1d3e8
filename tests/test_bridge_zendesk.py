"""The Zendesk adapter against a fake account that checks every request against the
documented Tickets API."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from patrol.ticketing_bridge.protocol import Destination, PermanentError, TemporaryError, TicketView
from patrol.ticketing_bridge.zendesk import Zendesk
from tests.conftest import free_port
from tests.fakes import fake_server, run_contract
from tests.fakes.zendesk import FakeZendesk

VIEW = TicketView(
    number="TS20261122001", fingerprint="patrol-TS20261122001",
    title="/var is 93.4% full on db-01 (critical at 95%)",
    body="**/var** is 93.4% full.\n\n- used: 93.4%", priority="P3", severity="critical",
    status="new", category="disk", host="db-01", check="var-disk", check_type="disk")
DEST = Destination("zendesk", team="360001")


@pytest.fixture
def fake() -> Iterator[FakeZendesk]:
    with fake_server(FakeZendesk()) as server:
        yield server


def adapter_for(fake: FakeZendesk, **overrides: object) -> Zendesk:
    return Zendesk({"type": "zendesk", "url": fake.url, "email": fake.email,
                    "token": fake.token, **overrides}, "zendesk")


def test_contract(fake: FakeZendesk) -> None:
    zendesk = adapter_for(fake)
    ref = run_contract(zendesk, VIEW, DEST, assign=lambda r: fake.assign(r.id),
                       priority_of=lambda r: fake.tickets[int(r.id)]["priority"],
                       raised=replace(VIEW, priority="P1"), raised_value="urgent")
    assert ref.url == f"{fake.url}/agent/tickets/1001"
    assert zendesk.status(ref).assignee == "Ada Lovelace"
    notes = fake.comments[1001]
    assert len(notes) == 4  # description, comment, resolve, reopen
    assert all(note["public"] is False for note in notes)


def test_ticket_fields(fake: FakeZendesk) -> None:
    adapter_for(fake).open(VIEW, Destination("zendesk", team="360001", assignee="901"))
    ticket = fake.tickets[1001]
    assert ticket["subject"] == "[TS20261122001] /var is 93.4% full on db-01 (critical at 95%)"
    assert (ticket["priority"], ticket["type"], ticket["external_id"]) == \
        ("normal", "incident", "patrol-TS20261122001")
    assert (ticket["group_id"], ticket["assignee_id"], ticket["tags"]) == (360001, 901,
                                                                           ["patrol"])
    assert "<strong>/var</strong>" in fake.comments[1001][0]["html_body"]


@pytest.mark.parametrize(("priority", "expected"), [
    ("P1", "urgent"), ("P2", "high"), ("P3", "normal"), ("P4", "low")])
def test_priority_map(fake: FakeZendesk, priority: str, expected: str) -> None:
    adapter_for(fake).open(replace(VIEW, priority=priority), DEST)
    assert fake.tickets[1001]["priority"] == expected


def test_wont_fix_tag(fake: FakeZendesk) -> None:
    zendesk = adapter_for(fake, wont_fix_statuses=["wont_fix"])
    ref = zendesk.open(VIEW, DEST)
    fake.tickets[int(ref.id)] |= {"status": "solved", "tags": ["patrol", "wont_fix"]}
    status = zendesk.status(ref)
    assert (status.state, status.wont_fix) == ("resolved", True)


def test_closed_ticket_cannot_be_reopened(fake: FakeZendesk) -> None:
    zendesk = adapter_for(fake)
    ref = zendesk.open(VIEW, DEST)
    fake.tickets[int(ref.id)]["status"] = "closed"
    assert zendesk.status(ref).state == "closed"
    with pytest.raises(PermanentError, match="closed prevents ticket update") as err:
        zendesk.reopen(ref, "It came back.", VIEW, DEST)
    assert err.value.status == 422


def test_group_must_be_an_id(fake: FakeZendesk) -> None:
    with pytest.raises(PermanentError, match="must be a Zendesk group id"):
        adapter_for(fake).open(VIEW, Destination("zendesk", team="Operations"))
    assert fake.requests == []


def test_unknown_group_is_permanent(fake: FakeZendesk) -> None:
    with pytest.raises(PermanentError, match="Group: is invalid") as err:
        adapter_for(fake).open(VIEW, Destination("zendesk", team="42"))
    assert err.value.status == 422
    assert fake.tickets == {}


def test_password_style_auth_is_refused(fake: FakeZendesk) -> None:
    """``email:token`` (without ``/token``) is a password login, and it fails."""
    zendesk = adapter_for(fake)
    zendesk.http.session.auth = (fake.email, fake.token)
    with pytest.raises(PermanentError, match="Couldn't authenticate you") as err:
        zendesk.find(VIEW.fingerprint, DEST)
    assert err.value.status == 401


def test_bad_token_is_permanent(fake: FakeZendesk) -> None:
    with pytest.raises(PermanentError, match="check the credentials") as err:
        adapter_for(fake, token="wrong").find(VIEW.fingerprint, DEST)
    assert err.value.status == 401


def test_rate_limit_honours_retry_after(fake: FakeZendesk) -> None:
    fake.fail_next(429, "Rate limit for ticket updates exceeded, please wait before "
                        "updating this ticket again", {"Retry-After": "93"})
    with pytest.raises(TemporaryError) as err:
        adapter_for(fake).open(VIEW, DEST)
    assert (err.value.status, err.value.retry_after) == (429, 93.0)
    assert fake.tickets == {}


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_temporary(fake: FakeZendesk, status: int) -> None:
    fake.fail_next(status, {"error": "ServiceUnavailable"})
    with pytest.raises(TemporaryError):
        adapter_for(fake).find(VIEW.fingerprint, DEST)


def test_connection_refused_is_temporary() -> None:
    zendesk = Zendesk({"type": "zendesk", "url": f"http://127.0.0.1:{free_port()}",
                       "email": "a@b", "token": "t"}, "zendesk")
    with pytest.raises(TemporaryError, match="cannot connect"):
        zendesk.find(VIEW.fingerprint, DEST)


def test_deleted_ticket_is_permanent(fake: FakeZendesk) -> None:
    zendesk = adapter_for(fake)
    with pytest.raises(PermanentError, match="RecordNotFound") as err:
        zendesk.status(zendesk._ref(4242))
    assert err.value.status == 404
