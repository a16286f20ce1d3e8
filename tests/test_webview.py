"""collector.web.view: the words and colours the pages show, as pure functions."""

from __future__ import annotations

import pytest

from patrol.collector.model import TicketStatus
from patrol.collector.web.pages import local_path
from patrol.collector.web.view import (
    Clock,
    ago,
    build_grid,
    by_priority,
    markers,
    priority_counts,
    resolve_clock,
    respond_clock,
    sla_clock,
    status_cell,
)
from tests.websetup import NOW, make_ticket

DEADLINE = NOW + 720  # 12 minutes ahead; iso 2023-11-14T22:25:20Z


@pytest.mark.parametrize(("kind", "now", "met_at", "running", "expected"), [
    ("respond", NOW, None, True, Clock("respond in 12m", False, "2023-11-14T22:25:20Z")),
    ("respond", DEADLINE + 180, None, True,
     Clock("respond overdue by 3m", True, "2023-11-14T22:25:20Z")),
    ("resolve", DEADLINE + 7200, None, True,
     Clock("resolve overdue by 2h", True, "2023-11-14T22:25:20Z")),
    ("respond", DEADLINE + 999, NOW, True, Clock("responded in time", False,
                                                 "2023-11-14T22:25:20Z")),
    ("resolve", DEADLINE + 999, DEADLINE + 240, False,
     Clock("resolved 4m late", False, "2023-11-14T22:25:20Z")),
    ("respond", DEADLINE + 999, None, False, Clock("no longer applies", False,
                                                   "2023-11-14T22:25:20Z")),
], ids=["counting-down", "overdue", "resolve-overdue", "met", "met-late", "moot"])
def test_sla_clock(kind, now, met_at, running, expected):
    assert sla_clock(kind, DEADLINE, now, met_at, running) == expected


def test_respond_clock_follows_the_ticket():
    new = make_ticket("disk", "db-01", "P1", 20 * 60)
    assert respond_clock(new, NOW).text == "respond overdue by 5m"
    working = make_ticket("disk", "db-01", "P1", 20 * 60, status=TicketStatus.IN_PROGRESS)
    assert respond_clock(working, NOW).text == "responded"  # no acknowledged_at stored
    acked = make_ticket("disk", "db-01", "P1", 20 * 60, acknowledged_at=NOW - 19 * 60)
    assert respond_clock(acked, NOW).text == "responded in time"
    resolved = make_ticket("disk", "db-01", "P1", 20 * 60, status=TicketStatus.RESOLVED,
                           resolved_at=NOW - 60)
    assert respond_clock(resolved, NOW).text == "no longer applies"
    assert resolve_clock(resolved, NOW).text == "resolved in time"


@pytest.mark.parametrize(("then", "expected"), [
    (NOW - 12, "12s ago"), (NOW - 300, "5m ago"), (NOW - 7200, "2h ago"),
    (NOW - 3 * 86400, "3d ago"), (NOW + 5, "just now"), (None, "never"),
], ids=["seconds", "minutes", "hours", "days", "skew", "never"])
def test_ago(then, expected):
    assert ago(then, NOW) == expected


def test_grid_is_hosts_by_union_of_checks():
    hosts = [{"host": "b", "labels": {"role": "db", "env": "x", "tier": "prod"},
              "last_heartbeat": NOW - 12, "reachable": True, "version": "1"}]
    states = [{"host": "b", "check": "disk", "status": "WARNING", "summary": "s1"},
              {"host": "a", "check": "cpu", "status": "weird", "summary": ""}]
    grid = build_grid(hosts, states, NOW)
    assert grid.checks == ["cpu", "disk"]
    a, b = grid.rows
    assert (a.host, a.heartbeat, a.reachable, a.labels) == ("a", "never", False, [])
    assert [(c.css, c.short, c.title) for c in a.cells] == [
        ("status-unknown", "UNKN", "UNKNOWN"),
        ("status-missing", "–", "disk: no result from this host")]
    assert (b.heartbeat, b.labels) == ("12s ago", [("tier", "prod"), ("role", "db"),
                                                   ("env", "x")])
    assert [(c.css, c.title) for c in b.cells] == [
        ("status-missing", "cpu: no result from this host"), ("status-warning", "s1")]


@pytest.mark.parametrize(("status", "css"), [
    ("OK", "status-ok"), ("WARNING", "status-warning"), ("CRITICAL", "status-critical"),
    ("UNKNOWN", "status-unknown"), ("critical", "status-critical")])
def test_status_cell_classes(status, css):
    assert status_cell("x", {"status": status, "summary": "s"}).css == css


def test_by_priority_groups_p1_first_and_drops_empty_groups():
    tickets = [make_ticket("a", "h", "P3", 60), make_ticket("b", "h", "P1", 60),
               make_ticket("c", "h", "P3", 120)]
    groups = by_priority(tickets, NOW)
    assert [(p, [r.ticket.check for r in rows]) for p, rows in groups] == [
        ("P1", ["b"]), ("P3", ["a", "c"])]


def test_priority_counts_lists_every_priority():
    assert priority_counts({"priority": {"P2": 3}}) == [("P1", 0), ("P2", 3), ("P3", 0),
                                                          ("P4", 0)]


def test_markers():
    ticket = make_ticket("a", "h", "P1", 60, flapping=True, is_group=True, hosts=["x", "y"],
                         previous_id=4, escalation=2)
    assert markers(ticket) == ["flapping", "group of 2 hosts", "recurred", "SLA breached"]


@pytest.mark.parametrize(("target", "expected"), [
    ("/tickets", "/tickets"), ("/", "/"), ("//x", "/"), ("/\\x", "/"), ("/a\\b", "/"),
    ("/a\nb", "/"), ("http://x/", "/"), (None, "/")])
def test_local_path(target, expected):
    assert local_path(target) == expected
