"""No second ticket when a create is repeated: the helpdesk side of exactly-once dispatch.

A collector replica can die (or stall past its lease) after the helpdesk created a
ticket and before the reference was stored; the replica that takes the action over is
a different process with fresh adapters. For every searchable helpdesk its ``find``
must return the ticket the interrupted attempt created. Where nothing can be searched
(generic webhooks), the resend must be recognisable as one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from patrol.ticketing_bridge.protocol import Destination, TicketView
from patrol.ticketing_bridge.webhook import Webhook
from tests import test_bridge_glpi as glpi
from tests import test_bridge_jira as jira
from tests import test_bridge_servicenow as servicenow
from tests import test_bridge_zammad as zammad
from tests import test_bridge_zendesk as zendesk
from tests.fakes import fake_server
from tests.fakes.glpi import FakeGlpi
from tests.fakes.jira import FakeJira
from tests.fakes.servicenow import FakeServiceNow
from tests.fakes.zammad import FakeZammad
from tests.fakes.zendesk import FakeZendesk
from tests.slow_helpdesk import serving

pytest.register_assert_rewrite("tests.helpdesk_servers")
from tests.helpdesk_servers import HelpdeskServer, ticket_view  # noqa: E402

pytest_plugins = ["tests.helpdesk_servers"]

VENDORS: dict[str, tuple[Callable[[], Any], Callable[[Any], Any], Destination, TicketView]] = {
    "jira-cloud": (lambda: FakeJira(api_version=3), jira.adapter_for, jira.DEST, jira.VIEW),
    "jira-server": (lambda: FakeJira(api_version=2), jira.adapter_for, jira.DEST, jira.VIEW),
    "servicenow": (FakeServiceNow, servicenow.adapter_for, servicenow.DEST, servicenow.VIEW),
    "zendesk": (FakeZendesk, zendesk.adapter_for, zendesk.DEST, zendesk.VIEW),
    "zammad": (FakeZammad, zammad.adapter_for, zammad.DEST, zammad.VIEW),
    "glpi": (FakeGlpi, glpi.adapter_for, glpi.DEST, glpi.VIEW),
}


@pytest.mark.parametrize("vendor", VENDORS)
def test_another_replica_finds_the_ticket_an_interrupted_attempt_created(vendor: str) -> None:
    make, adapter_for, dest, view = VENDORS[vendor]
    with fake_server(make()) as fake:
        ref = adapter_for(fake).open(view, dest)  # created; its replica died before storing
        survivor = adapter_for(fake)  # another process: no session, cache or state shared
        assert survivor.find(view.fingerprint, dest) == ref
        assert survivor.find(view.fingerprint + "-2", dest) is None
        assert fake.violations == []


def test_a_zendesk_create_resent_carries_the_same_idempotency_key() -> None:
    with fake_server(FakeZendesk()) as fake:
        view, dest = zendesk.VIEW, zendesk.DEST
        zendesk.adapter_for(fake).open(view, dest)
        zendesk.adapter_for(fake).open(view, dest)  # the takeover's resend
        zendesk.adapter_for(fake).open(replace(view, fingerprint="patrol-TS20261122002"), dest)
        keys = [r.headers.get("idempotency-key") for r in fake.calls("POST")]
    assert keys[0] and keys[0].startswith("patrol-TS20261122001.")
    assert keys[1] == keys[0] and keys[2] != keys[0]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["redmine", "rt"])
def test_real_redmine_and_rt_find_the_ticket_an_interrupted_attempt_created(
        kind: str, request: pytest.FixtureRequest) -> None:
    from tests import test_bridge_redmine, test_bridge_rt

    module = test_bridge_redmine if kind == "redmine" else test_bridge_rt
    server: HelpdeskServer = request.getfixturevalue(f"{kind}_server")
    view = ticket_view()
    ref = module.adapter(server).open(view, module.DEST)
    assert module.adapter(server).find(view.fingerprint, module.DEST) == ref


def test_a_generic_webhook_resend_is_recognisable() -> None:
    """No search: the resend of an interrupted post is a second delivery, but it names
    the incident and repeats the first one's Idempotency-Key."""
    with serving(delay=0) as desk:
        hook = Webhook(Webhook.Config(
            type="webhook", url=desk.url("r") + "/hook",
            template={"fingerprint": "{fingerprint}", "action": "{action}"},
            headers={"X-Token": "s3cret"}), "hook")
        dest = Destination("hook")
        assert hook.find(jira.VIEW.fingerprint, dest) is None
        ref = hook.open(jira.VIEW, dest)
        hook.open(jira.VIEW, dest)  # the resend after a takeover
        hook.comment(ref, "still failing", jira.VIEW)
        first, again, comment = (r.headers for r in desk.of("hook"))
    assert first["X-Patrol-Fingerprint"] == jira.VIEW.fingerprint == comment[
        "X-Patrol-Fingerprint"]
    assert again["Idempotency-Key"] == first["Idempotency-Key"] != comment["Idempotency-Key"]
    assert first["X-Token"] == "s3cret" and "s3cret" not in first["Idempotency-Key"]


def test_a_request_sent_but_unanswered_is_retried_only_after_it_could_land() -> None:
    """A read timeout leaves the outcome unknown (the helpdesk is slow, not down): the
    retry waits long enough for find() to see a ticket the first request created."""
    from patrol.ticketing_bridge.http import UNKNOWN_OUTCOME_WAIT, HttpClient
    from patrol.ticketing_bridge.protocol import TemporaryError

    with serving(delay=1.0) as desk:
        client = HttpClient(desk.url("r"), name="slow")
        with pytest.raises(TemporaryError, match=r"sent, but no answer within 0\.2 s") as caught:
            client.request("POST", "/hook", json={"fingerprint": "fp", "action": "open"},
                           timeout=(2.0, 0.2))
        assert caught.value.retry_after == UNKNOWN_OUTCOME_WAIT >= 60
        deadline = time.monotonic() + 10
        while desk.of("hook")[0].finished is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert desk.of("hook")[0].finished is not None  # it landed after all
