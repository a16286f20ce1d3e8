"""The breach chart attached to helpdesk tickets, against the REAL Redmine and RT on
loopback: the PNG a person opens in the helpdesk is byte for byte the ticket page's."""

from __future__ import annotations

import base64

import pytest
import requests

from patrol.collector.reports import charts
from patrol.collector.tickets.chart import FILENAME, attach_chart
from patrol.contract.wire import MeasurementSeries, MeasurementValue
from patrol.ticketing_bridge.protocol import Attachment, Destination, TakesAttachments
from patrol.ticketing_bridge.redmine import Redmine
from patrol.ticketing_bridge.rt import RequestTracker
from patrol.ticketing_bridge.webhook import Webhook
from tests.collector_fixtures import HOUR, T0, World, event, store_for

pytest.register_assert_rewrite("tests.helpdesk_servers")
from tests.helpdesk_servers import HelpdeskServer, ticket_view  # noqa: E402

pytest_plugins = ["tests.helpdesk_servers"]
pytestmark = pytest.mark.slow


def _chart() -> bytes:
    figure = charts.measurement_line(
        {"used_ratio /var": [(T0 - HOUR, 80.0), (T0, 96.2)]}, 90.0, 95.0, "var-disk on db-01",
        "%", marker=T0)
    return charts.png(figure)


def test_redmine_gets_the_chart_as_an_issue_attachment(redmine_server: HelpdeskServer):
    server = redmine_server
    redmine = Redmine({"type": "redmine", "url": server.url, "api_key": server.token,
                       "project": "monitoring"}, "redmine-test")
    assert isinstance(redmine, TakesAttachments)
    ref = redmine.open(ticket_view(), Destination("redmine-test"))
    png = _chart()
    redmine.attach(ref, Attachment(FILENAME, "image/png", png), "Chart around the breach.")
    headers = {"X-Redmine-API-Key": server.token}
    issue = requests.get(f"{server.url}/issues/{ref.id}.json",
                         params={"include": "attachments,journals"}, headers=headers,
                         timeout=10).json()["issue"]
    (attached,) = issue["attachments"]
    assert (attached["filename"], attached["content_type"], attached["filesize"]) == (
        FILENAME, "image/png", len(png))
    download = requests.get(attached["content_url"], headers=headers, timeout=10)
    assert download.content == png
    assert issue["journals"][-1]["notes"] == "Chart around the breach."


def test_rt_gets_the_chart_in_a_comment(rt_server: HelpdeskServer):
    server = rt_server
    tracker = RequestTracker({"type": "rt", "url": server.url, "token": server.token},
                             "rt-test")
    ref = tracker.open(ticket_view(), Destination("rt-test"))
    png = _chart()
    tracker.attach(ref, Attachment(FILENAME, "image/png", png), "Chart around the breach.")
    headers = {"Authorization": f"token {server.token}"}
    listed = requests.get(f"{server.url}/REST/2.0/ticket/{ref.id}/attachments",
                          params={"fields": "Filename,ContentType", "per_page": "100"},
                          headers=headers, timeout=20).json()
    (chart,) = [a for a in listed["items"] if a.get("Filename") == FILENAME]
    assert chart["ContentType"] == "image/png"
    content = requests.get(f"{server.url}/REST/2.0/attachment/{chart['id']}",
                           params={"fields": "Content"}, headers=headers, timeout=20).json()
    assert base64.b64decode(content["Content"]) == png


def test_the_dispatcher_step_attaches_the_tickets_own_chart_to_redmine(
        redmine_server: HelpdeskServer, request, tmp_path):
    server = redmine_server
    store = store_for("sqlite", request, tmp_path)
    try:
        world = World(store)
        number = world.one(event(
            check="var-disk", observed_at=T0,
            measurements=[MeasurementValue(name="used_ratio", value=0.962, item="/var")],
            thresholds={"used_ratio[/var]": {"warning": 0.9, "critical": 0.95,
                                             "unit": "ratio"}},
            history=[MeasurementSeries(name="used_ratio", item="/var",
                                       points=[(T0 - HOUR, 0.8), (T0, 0.962)])])).ticket
        ticket = store.get_ticket(number)
        redmine = Redmine({"type": "redmine", "url": server.url, "api_key": server.token,
                           "project": "monitoring"}, "redmine-test")
        ref = redmine.open(ticket_view(), Destination("redmine-test"))
        assert attach_chart(redmine, ref, store, ticket, T0 + 60)
        issue = requests.get(f"{server.url}/issues/{ref.id}.json",
                             params={"include": "attachments"},
                             headers={"X-Redmine-API-Key": server.token}, timeout=10).json()
        assert [a["filename"] for a in issue["issue"]["attachments"]] == [FILENAME]
        webhook = Webhook(Webhook.Config(type="webhook", url="http://127.0.0.1:9/hook",
                                         preset="slack"),
                          "hook")
        assert not attach_chart(webhook, ref, store, ticket, T0 + 60)  # takes no files
    finally:
        store.close()
