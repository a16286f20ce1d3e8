"""The Zammad adapter against a fake Zammad that checks every request against the
documented REST API."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from patrol.ticketing_bridge.protocol import Destination, PermanentError, TemporaryError, TicketView
from patrol.ticketing_bridge.zammad import Zammad
from tests.conftest import free_port
from tests.fakes import fake_server, run_contract
from tests.fakes.zammad import FakeZammad

VIEW = TicketView(
    number="TS20261122001", fingerprint="patrol-TS20261122001",
    title="/var is 93.4% full on db-01 (critical at 95%)",
    body="**/var** is 93.4% full.\n\n- used: 93.4%", priority="P4", severity="warning",
    status="new", category="disk", host="db-01", check="var-disk", check_type="disk")
DEST = Destination("zammad", team="Operations")


@pytest.fixture
def fake() -> Iterator[FakeZammad]:
    with fake_server(FakeZammad()) as server:
        yield server


def adapter_for(fake: FakeZammad, **overrides: object) -> Zammad:
    return Zammad({"type": "zammad", "url": fake.url, "token": fake.token,
                   "customer": "monitoring@example.com", **overrides}, "zammad")


def test_contract(fake: FakeZammad) -> None:
    zammad = adapter_for(fake)
    ref = run_contract(zammad, VIEW, DEST, assign=lambda r: fake.assign(r.id),
                       priority_of=lambda r: fake.tickets[int(r.id)]["priority_id"],
                       raised=replace(VIEW, priority="P2"), raised_value=3)
    assert ref.url == f"{fake.url}/#ticket/zoom/1"
    assert zammad.status(ref).assignee == "ada@example.com"
    articles = fake.articles[1]
    assert len(articles) == 4  # first note, comment, resolve note, reopen note
    assert all(a["internal"] is True and a["type"] == "note" for a in articles)


def test_ticket_fields(fake: FakeZammad) -> None:
    adapter_for(fake).open(VIEW, Destination("zammad", team="Operations",
                                             assignee="ada@example.com"))
    ticket = fake.expanded(fake.tickets[1])
    assert ticket["title"] == "[TS20261122001] /var is 93.4% full on db-01 (critical at 95%)"
    assert (ticket["group"], ticket["priority"], ticket["owner"], ticket["customer"]) == \
        ("Operations", "1 low", "ada@example.com", "monitoring@example.com")
    assert fake.tags[1] == ["patrol-TS20261122001", "patrol"]
    first = fake.articles[1][0]
    assert first["content_type"] == "text/html" and "<strong>/var</strong>" in first["body"]


def test_customer_is_guessed_when_new(fake: FakeZammad) -> None:
    adapter_for(fake, customer="oncall@example.com").open(VIEW, DEST)
    assert fake.users[fake.tickets[1]["customer_id"]] == "oncall@example.com"


def test_pending_close_counts_as_resolved(fake: FakeZammad) -> None:
    zammad = adapter_for(fake, resolve_state="pending close")
    ref = zammad.open(VIEW, DEST)
    zammad.resolve(ref, "Recovered.", VIEW, DEST)
    assert (zammad.status(ref).state, fake.tickets[1]["state_id"]) == ("resolved", 7)
    assert zammad.find(VIEW.fingerprint, DEST) == ref  # not closed yet: still found


def test_wont_fix_tag(fake: FakeZammad) -> None:
    zammad = adapter_for(fake, wont_fix_statuses=["wontfix"])
    ref = zammad.open(VIEW, DEST)
    fake.tickets[1]["state_id"] = 4
    fake.tags[1].append("wontfix")
    status = zammad.status(ref)
    assert (status.state, status.wont_fix) == ("closed", True)


def test_unknown_group_is_permanent(fake: FakeZammad) -> None:
    with pytest.raises(PermanentError, match="No lookup value found for 'group'") as err:
        adapter_for(fake).open(VIEW, Destination("zammad", team="Nope"))
    assert err.value.status == 422
    assert fake.tickets == {}


def test_bad_token_is_permanent(fake: FakeZammad) -> None:
    with pytest.raises(PermanentError, match="Invalid token") as err:
        adapter_for(fake, token="wrong").find(VIEW.fingerprint, DEST)
    assert err.value.status == 401


def test_rate_limit_honours_retry_after(fake: FakeZammad) -> None:
    fake.fail_next(429, {"error": "Too many requests"}, {"Retry-After": "30"})
    with pytest.raises(TemporaryError) as err:
        adapter_for(fake).open(VIEW, DEST)
    assert (err.value.status, err.value.retry_after) == (429, 30.0)


@pytest.mark.parametrize("status", [500, 502])
def test_server_errors_are_temporary(fake: FakeZammad, status: int) -> None:
    fake.fail_next(status, "<h1>We're sorry, but something went wrong.</h1>")
    with pytest.raises(TemporaryError):
        adapter_for(fake).find(VIEW.fingerprint, DEST)


def test_connection_refused_is_temporary() -> None:
    zammad = Zammad({"type": "zammad", "url": f"http://127.0.0.1:{free_port()}",
                     "token": "t", "customer": "a@b"}, "zammad")
    with pytest.raises(TemporaryError, match="cannot connect"):
        zammad.find(VIEW.fingerprint, DEST)


def test_deleted_ticket_is_permanent(fake: FakeZammad) -> None:
    zammad = adapter_for(fake)
    with pytest.raises(PermanentError, match="Couldn't find Ticket") as err:
        zammad.comment(zammad._ref(42), "Still failing.", VIEW)
    assert err.value.status == 404
