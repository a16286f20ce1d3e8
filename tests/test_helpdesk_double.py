"""The helpdesk double itself, driven by Patrol's real webhook adapter: what the scale
suite counts at the double must be what the adapter sent.

Each test starts the double as its own process (about a second) and talks to it
only over loopback HTTP; the journal is read from its file afterwards.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from patrol.ticketing_bridge.protocol import Destination, PermanentError, TemporaryError, TicketView
from patrol.ticketing_bridge.webhook import Webhook
from tests.helpdesk_double_process import HelpdeskDouble

pytestmark = pytest.mark.slow

DEST = Destination("desk")


def view(number: str = "TS20261205001", priority: str = "P2") -> TicketView:
    return TicketView(number=number, fingerprint=f"patrol-{number}-0123456789",
                      title="/var is 96% full on db-01", body="**disk** full",
                      priority=priority, severity="critical", status="new",
                      category="capacity", host="db-01", check="root-disk",
                      check_type="disk")


def adapter(double: HelpdeskDouble, dialect: str = "generic", replica: str = "r1") -> Webhook:
    """The adapter exactly as a collector builds it from ``webhook_yaml``."""
    entry = yaml.safe_load(double.webhook_yaml("desk", replica, dialect=dialect))["desk"]
    return Webhook(Webhook.Config.model_validate(entry), "desk")


@pytest.fixture
def double(tmp_path: Path) -> Any:
    desk = HelpdeskDouble(tmp_path / "desk").start()
    yield desk
    desk.stop()


def test_the_generic_webhook_opens_one_ticket_per_fingerprint_and_resolves_it_once(
        double: HelpdeskDouble) -> None:
    hook, ticket = adapter(double), view()
    ref = hook.open(ticket, DEST)
    assert ref.id.startswith("HD-"), "the adapter takes the double's dedup_key as its id"
    # A resend of the same request carries the same Idempotency-Key: answered again.
    assert hook.open(ticket, DEST).id == ref.id, "a resend replays the first answer"
    # A changed open for the same incident: the fingerprint finds the first ticket.
    assert hook.open(view(priority="P1"), DEST).id == ref.id, "idempotent by fingerprint"
    hook.comment(ref, "still failing", ticket)
    hook.resolve(ref, "verified", ticket, DEST)
    hook.resolve(ref, "verified again", ticket, DEST)
    with pytest.raises(PermanentError, match="404"):
        hook.resolve(ref, "verified", view("TS20261205999"), DEST)

    counted = double.effects()
    assert counted[ticket.fingerprint] == {"opened": 1, "replayed": 1, "existing": 1,
                                           "commented": 1, "resolved": 1,
                                           "already_resolved": 1}
    assert counted[view("TS20261205999").fingerprint] == {"orphan": 1}
    assert double.accepted()[ticket.fingerprint] == {"open": 3, "comment": 1, "resolve": 2}
    assert {e["replica"] for e in double.entries()} == {"r1"}
    found = requests.get(double.url + "/tickets", params={"fingerprint": ticket.fingerprint},
                         timeout=5).json()["tickets"]
    assert [(t["id"], t["status"]) for t in found] == [(ref.id, "resolved")]


def test_without_idempotency_a_repeated_open_makes_a_second_ticket_with_the_fingerprint(
        tmp_path: Path) -> None:
    double = HelpdeskDouble(tmp_path / "desk", idempotent=False).start()
    try:
        hook, ticket = adapter(double), view()
        # Not a byte-identical resend (that would replay by Idempotency-Key): the same
        # incident's open sent again after it changed, as a replica taking over does.
        first, second = hook.open(ticket, DEST), hook.open(view(priority="P1"), DEST)
    finally:
        double.stop()
    assert first.id != second.id
    assert double.effects() == {ticket.fingerprint: {"opened": 2}}


def test_pagerduty_dialect_folds_triggers_by_dedup_key(double: HelpdeskDouble) -> None:
    pager, ticket = adapter(double, "pagerduty"), view(priority="P4")
    ref = pager.find(ticket.fingerprint, DEST)
    assert ref is not None  # the preset never searches: the dedup_key is the identity
    pager.open(ticket, DEST)
    pager.open(ticket, DEST)
    pager.resolve(ref, "verified", ticket, DEST)
    pager.reopen(ref, "broke again", ticket, DEST)
    assert double.effects()[ticket.fingerprint] == {"opened": 1, "updated": 1, "resolved": 1,
                                                    "reopened": 1}
    assert {e["number"] for e in double.entries()} == {ticket.number, ""}  # resolve: no payload


def test_injected_failures_reach_the_adapter_as_temporary_errors(
        double: HelpdeskDouble) -> None:
    hook, ticket = adapter(double), view()
    double.admin(fail={"count": 2, "status": 429, "retry_after": 7})
    for _ in range(2):
        with pytest.raises(TemporaryError) as refused:
            hook.open(ticket, DEST)
        assert refused.value.retry_after == 7
    double.admin(fail={"count": 1, "status": 503})
    with pytest.raises(TemporaryError, match="503"):
        hook.open(ticket, DEST)
    double.admin(fail_for={"seconds": 600, "status": 500})
    with pytest.raises(TemporaryError, match="500"):
        hook.open(ticket, DEST)
    double.admin(fail_for={"seconds": 0})  # "for a while" is over
    hook.open(ticket, DEST)
    assert double.effects()[ticket.fingerprint] == {"failed": 4, "opened": 1}
    assert [e["status"] for e in double.entries()] == [429, 429, 503, 500, 201]


def test_a_killed_double_restarts_with_its_tickets_and_a_died_one_exits(
        double: HelpdeskDouble) -> None:
    hook, ticket = adapter(double), view()
    ref = hook.open(ticket, DEST)
    double.kill()
    with pytest.raises(TemporaryError, match="cannot connect"):
        hook.comment(ref, "lost", ticket)
    double.start()
    assert hook.open(view(priority="P1"), DEST).id == ref.id, \
        "the restarted double remembers the ticket"
    assert hook.open(view("TS20261205002"), DEST).id != ref.id
    double.admin(die=True)
    assert double.proc is not None and double.proc.wait(10) == 3, "die exits at once"
    assert [e["effect"] for e in double.entries()] == ["opened", "existing", "opened"]


def test_a_slow_request_is_in_flight_with_its_replica_until_answered(
        double: HelpdeskDouble) -> None:
    double.admin(delay=[1.5, 1.5])
    hook, ticket = adapter(double, replica="r7"), view()
    answered: list[str] = []
    sender = threading.Thread(target=lambda: answered.append(hook.open(ticket, DEST).id))
    sender.start()
    in_flight = double.wait_until(lambda: double.state()["in_flight"], 5,
                                  "a request in flight")
    assert [(r["replica"], r["action"], r["fingerprint"]) for r in in_flight] == \
        [("r7", "open", ticket.fingerprint)]
    assert double.entries() == [], "journaled only once processed"
    sender.join(10)
    assert answered and answered[0].startswith("HD-")
    assert double.state()["in_flight"] == []
