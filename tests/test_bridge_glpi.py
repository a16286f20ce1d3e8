"""The GLPI adapter against a fake ``apirest.php`` that checks every request against
GLPI's documented legacy REST API, sessions included."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from patrol.ticketing_bridge.glpi import Glpi
from patrol.ticketing_bridge.protocol import Destination, PermanentError, TemporaryError, TicketView
from tests.conftest import free_port
from tests.fakes import fake_server, run_contract
from tests.fakes.glpi import FakeGlpi

VIEW = TicketView(
    number="TS20261122001", fingerprint="patrol-TS20261122001",
    title="/var is 93.4% full on db-01 (critical at 95%)",
    body="**/var** is 93.4% full.\n\n- used: 93.4%", priority="P3", severity="critical",
    status="new", category="disk", host="db-01", check="var-disk", check_type="disk")
DEST = Destination("glpi", project="3")


@pytest.fixture
def fake() -> Iterator[FakeGlpi]:
    with fake_server(FakeGlpi()) as server:
        yield server


def adapter_for(fake: FakeGlpi, **overrides: object) -> Glpi:
    return Glpi({"type": "glpi", "url": fake.url, "user_token": fake.user_token,
                 "app_token": fake.app_token, **overrides}, "glpi")


def test_contract(fake: FakeGlpi) -> None:
    glpi = adapter_for(fake)
    ref = run_contract(glpi, VIEW, DEST, assign=lambda r: fake.assign(r.id),
                       priority_of=lambda r: fake.tickets[int(r.id)]["priority"],
                       raised=replace(VIEW, priority="P1"), raised_value=5)
    assert ref.url == f"{fake.url}/front/ticket.form.php?id=1"
    assert glpi.status(ref).assignee == "ada"
    assert fake.tickets[1]["status"] == 2  # reopened: processing (assigned)
    assert len(fake.solutions[1]) == 1
    assert [f["is_private"] for f in fake.followups[1]] == [1, 1]  # comment, reopen reason
    assert len(fake.calls("GET", "/apirest.php/initSession")) == 1  # one session, reused


def test_ticket_fields(fake: FakeGlpi) -> None:
    glpi = adapter_for(fake, category_map={"disk": 4})
    glpi.open(VIEW, Destination("glpi", project="3", team="2", assignee="7"))
    ticket = fake.tickets[1]
    assert ticket["name"] == "[TS20261122001] /var is 93.4% full on db-01 (critical at 95%) " \
                             "[patrol:patrol-TS20261122001]"
    assert (ticket["urgency"], ticket["impact"], ticket["priority"], ticket["type"]) == \
        (3, 3, 3, 1)
    assert (ticket["entities_id"], ticket["itilcategories_id"], ticket["status"]) == (3, 4, 2)
    assert "<strong>/var</strong>" in ticket["content"]


def test_reopen_without_technician_is_new_again(fake: FakeGlpi) -> None:
    glpi = adapter_for(fake)
    ref = glpi.open(VIEW, DEST)
    glpi.resolve(ref, "Recovered.", VIEW, DEST)
    glpi.reopen(ref, "", VIEW, DEST)
    status = glpi.status(ref)
    assert (status.state, status.assignee, status.raw_status) == ("open", None, "1")


def test_resolve_twice_is_harmless(fake: FakeGlpi) -> None:
    glpi = adapter_for(fake)
    ref = glpi.open(VIEW, DEST)
    glpi.resolve(ref, "Recovered.", VIEW, DEST)
    glpi.resolve(ref, "Recovered.", VIEW, DEST)  # a retried delivery
    assert len(fake.solutions[1]) == 1


def test_expired_session_is_renewed_once(fake: FakeGlpi) -> None:
    glpi = adapter_for(fake)
    ref = glpi.open(VIEW, DEST)
    fake.expire_sessions()
    glpi.comment(ref, "Still failing.", VIEW)
    assert len(fake.calls("GET", "/apirest.php/initSession")) == 2
    assert len(fake.followups[1]) == 1


def test_close_kills_the_session(fake: FakeGlpi) -> None:
    glpi = adapter_for(fake)
    glpi.find(VIEW.fingerprint, DEST)
    assert len(fake.sessions) == 1
    glpi.close()
    assert fake.sessions == set()
    assert len(fake.calls("GET", "/apirest.php/killSession")) == 1


def test_bad_user_token_is_permanent(fake: FakeGlpi) -> None:
    with pytest.raises(PermanentError, match="ERROR_GLPI_LOGIN_USER_TOKEN") as err:
        adapter_for(fake, user_token="wrong").find(VIEW.fingerprint, DEST)
    assert err.value.status == 401


def test_wrong_app_token_is_permanent(fake: FakeGlpi) -> None:
    with pytest.raises(PermanentError, match="ERROR_WRONG_APP_TOKEN_PARAMETER") as err:
        adapter_for(fake, app_token="wrong").find(VIEW.fingerprint, DEST)
    assert err.value.status == 400


def test_unknown_entity_is_permanent(fake: FakeGlpi) -> None:
    with pytest.raises(PermanentError, match="ERROR_GLPI_ADD") as err:
        adapter_for(fake).open(VIEW, Destination("glpi", project="99"))
    assert err.value.status == 400
    assert fake.tickets == {}


def test_entity_must_be_an_id(fake: FakeGlpi) -> None:
    with pytest.raises(PermanentError, match="entity must be a numeric id"):
        adapter_for(fake).open(VIEW, Destination("glpi", project="Datacenter"))


def test_rate_limit_honours_retry_after(fake: FakeGlpi) -> None:
    glpi = adapter_for(fake)
    glpi.find(VIEW.fingerprint, DEST)
    fake.fail_next(429, "Too Many Requests", {"Retry-After": "5"})
    with pytest.raises(TemporaryError) as err:
        glpi.open(VIEW, DEST)
    assert (err.value.status, err.value.retry_after) == (429, 5.0)


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_temporary(fake: FakeGlpi, status: int) -> None:
    fake.fail_next(status, ["ERROR_SQL", "We suspect an SQL error"])
    with pytest.raises(TemporaryError):
        adapter_for(fake).find(VIEW.fingerprint, DEST)


def test_connection_refused_is_temporary() -> None:
    glpi = Glpi({"type": "glpi", "url": f"http://127.0.0.1:{free_port()}",
                 "user_token": "t"}, "glpi")
    with pytest.raises(TemporaryError, match="cannot connect"):
        glpi.find(VIEW.fingerprint, DEST)


def test_deleted_ticket_is_permanent(fake: FakeGlpi) -> None:
    glpi = adapter_for(fake)
    with pytest.raises(PermanentError, match="ERROR_ITEM_NOT_FOUND") as err:
        glpi.status(glpi._ref(42))
    assert err.value.status == 404
