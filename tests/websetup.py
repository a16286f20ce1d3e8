"""A seeded real ticket store (SQLite, or PostgreSQL given a URL) and a minimal app
around the web router.

Shared by tests/test_web_pages.py (TestClient) and tests/test_web_chromium.py (real
Chromium against uvicorn). The clock is fixed at ``NOW`` so countdown texts are exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from patrol.collector.access.auth import TokenBook
from patrol.collector.model import Priority, Ticket, TicketStatus, TimelineEntry
from patrol.collector.store import TicketStore, open_store
from patrol.collector.tickets.body import render_body, verify_command
from patrol.collector.web import pages as web

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z
OPERATOR_TOKEN = "op-secret-token"
AGENT_TOKEN = "agent-secret-token"
MINUTE, HOUR = 60.0, 3600.0
SLA = {"P1": (15 * MINUTE, 4 * HOUR), "P2": (30 * MINUTE, 24 * HOUR),
       "P3": (HOUR, 72 * HOUR), "P4": (24 * HOUR, 168 * HOUR)}
XSS = "<script>alert('pwned')</script>"

DISK_DIAGNOSTICS = {
    "check": {"largest_directories": [{"path": "/var/log/journal", "size_bytes": 4.2e9},
                                      {"path": "/var/lib/postgresql", "size_bytes": 3.1e9}]},
    "top_processes": [{"pid": 812, "name": "postgres", "cpu_ratio": 0.41, "rss_bytes": 5.1e8}],
    "host": {"os": "Debian GNU/Linux 12 (bookworm)", "kernel": "6.1.0-18-amd64",
             "uptime_seconds": 864000},
}


def make_ticket(check: str, host: str, priority: str, opened_ago: float, **fields: object
                ) -> Ticket:
    opened = NOW - opened_ago
    respond, resolve = SLA[priority]
    values: dict[str, object] = {
        "dedup_key": f"{host}/{check}", "title": f"{check} failing on {host}", "host": host,
        "check": check, "check_type": check, "severity": "critical",
        "priority": Priority(priority), "status": TicketStatus.NEW, "category": "capacity",
        "opened_at": opened, "first_seen": opened, "last_seen": NOW - 30,
        "respond_by": opened + respond, "resolve_by": opened + resolve}
    values.update(fields)
    return Ticket(**values)  # type: ignore[arg-type]


@dataclass
class Seeded:
    store: TicketStore
    p1: Ticket  # disk on db-01: respond overdue, previous ticket, body + diagnostics
    p3: Ticket  # postgres on db-01
    group: Ticket  # http on two web hosts, flapping
    child: Ticket  # http on web-01, in the group
    previous: Ticket  # the closed earlier disk ticket
    xss: Ticket  # a title and body full of markup


def seed(path: Path | str) -> Seeded:
    """A store at ``path`` (a SQLite file, or a store URL) with two hosts' grids and a
    handful of tickets."""
    store = open_store(path if isinstance(path, str) else f"sqlite:///{path}")
    with store.transaction() as tx:
        tx.upsert_host("db-01", "agent-db-01", "0.1.0", {"tier": "prod", "role": "db",
                                                          "team": "dba"}, NOW - 12, 30.0)
        tx.upsert_host("web-01", "agent-web-01", "0.1.0", {"tier": "staging", "role": "web"},
                       NOW - 300, 30.0)
        tx.set_host_reachable("web-01", False)
        tx.set_check_states("db-01", [
            {"check": "disk", "type": "disk", "status": "CRITICAL",
             "summary": "/var is 96.2% full on db-01 (critical at 95%)",
             "since": NOW - 1200, "last_run": NOW - 12},
            {"check": "cpu", "type": "cpu", "status": "OK",
             "summary": "CPU 12% busy on db-01", "since": NOW - 86400, "last_run": NOW - 12},
            {"check": "postgres", "type": "postgres", "status": "WARNING",
             "summary": "postgres has 170 of 200 connections in use on db-01",
             "since": NOW - 600, "last_run": NOW - 12}])
        tx.set_check_states("web-01", [
            {"check": "cpu", "type": "cpu", "status": "UNKNOWN",
             "summary": f"could not read /proc/stat on web-01 {XSS}",
             "since": NOW - 300, "last_run": NOW - 300},
            {"check": "http", "type": "http", "status": "CRITICAL",
             "summary": "https://web-01/health answered 503 on web-01",
             "since": NOW - 900, "last_run": NOW - 300}])

        previous = tx.create_ticket(make_ticket(
            "disk", "db-01", "P2", 3 * 86400, status=TicketStatus.CLOSED,
            resolved_at=NOW - 3 * 86400 + 7200, closed_at=NOW - 2 * 86400,
            resolution="rotated the journal"))
        p1 = make_ticket("disk", "db-01", "P1", 20 * MINUTE, title="/var is 96.2% full on db-01",
                         labels={"tier": "prod", "role": "db"}, occurrences=7,
                         previous_id=previous.id, diagnostics=DISK_DIAGNOSTICS,
                         runbook="https://wiki.example.org/runbooks/disk",
                         measurements=[{"name": "used_ratio", "value": 0.962, "item": "/var"}])
        tx.create_ticket(p1)
        p1.body = render_body(p1, None, [previous], [], verify_command("disk"))
        tx.update_ticket(p1)
        tx.add_timeline(p1.id, TimelineEntry(NOW - 20 * MINUTE, "opened",
                                             "opened: /var is 96.2% full on db-01"))
        tx.add_timeline(p1.id, TimelineEntry(NOW - 5 * MINUTE, "comment",
                                             "looking at the journal size", author="alice"))
        tx.add_timeline(p1.id, TimelineEntry(NOW - 4 * MINUTE, "escalated",
                                             "respond-by passed without a response"))

        p3 = tx.create_ticket(make_ticket(
            "postgres", "db-01", "P3", 10 * MINUTE, category="database",
            title="postgres has 170 of 200 connections in use on db-01"))
        group = tx.create_ticket(make_ticket(
            "http", "group:role=web", "P2", 15 * MINUTE, dedup_key="http|role=web",
            is_group=True, hosts=["web-01", "web-02"], flapping=True,
            title="http failing on 2 hosts (role=web)", status=TicketStatus.IN_PROGRESS,
            acknowledged_at=NOW - 10 * MINUTE))
        child = tx.create_ticket(make_ticket(
            "http", "web-01", "P2", 15 * MINUTE, parent_id=group.id,
            title="https://web-01/health answered 503 on web-01"))
        xss = tx.create_ticket(make_ticket(
            "log", "web-01", "P4", 2 * HOUR, title=f"log matched {XSS}",
            body=f"## Problem\n\n- **Symptom**: {XSS}\n\n<img src=x onerror=alert(1)>\n",
            diagnostics={"check": {"lines": [XSS]}}))
        tx.add_timeline(xss.id, TimelineEntry(NOW - HOUR, "comment", XSS, author="<b>eve</b>"))
    return Seeded(store, p1, p3, group, child, previous, xss)


def login_link(base: str, store: TicketStore, path: str, now: float = NOW) -> str:
    """A one-time login link (as ``patrol up`` prints) that lands on ``path``: the way a
    fresh browser reaches a page that needs a login."""
    from urllib.parse import urlencode

    from patrol.collector.access.sessions import Sessions

    code = Sessions(store).issue_login_code("operator", now)
    return f"{base}/login?{urlencode({'code': code, 'next': path})}"


def make_app(store: TicketStore, now: float = NOW) -> FastAPI:
    """The web router alone, as the collector app mounts it."""
    app = FastAPI()
    app.state.store = store
    app.state.tokens = TokenBook([AGENT_TOKEN], [OPERATOR_TOKEN])
    app.state.clock = lambda: now
    app.include_router(web.router)
    return app
