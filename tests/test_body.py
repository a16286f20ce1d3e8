"""The ticket body: exact Markdown for a realistic disk breach, and the generic renderer."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from patrol.agent.events import build_event
from patrol.agent.state import CheckInfo, CheckView, Transition
from patrol.checks.base import Status
from patrol.collector.model import Priority, Ticket, TicketStatus, TimelineEntry
from patrol.collector.policy.correlate import decide
from patrol.collector.policy.settings import PolicyConfig
from patrol.collector.tickets import body
from patrol.collector.tickets.body import (
    render_body,
    render_diagnostics,
    render_value,
    verify_command,
)
from patrol.contract.timestamps import iso_z
from patrol.contract.wire import AgentRef, Event, MeasurementValue
from tests.collector_fixtures import T0, World, heartbeat, snapshot, store_for
from tests.helpers import build
from tests.procs import AgentProcess, free_port, read_outbox

OBSERVED = datetime(2023, 10, 27, 10, 3, 12, tzinfo=UTC)
NOW = OBSERVED.timestamp() + 2
EVENT = Event(
    event_id="evt-00000001", dedup_key="db-01/var-disk", action="trigger",
    severity="critical", status="CRITICAL", previous_status="WARNING",
    summary="/var is 96.2% full on db-01 (critical at 95%)", source="db-01",
    check="var-disk", type="disk", labels={"tier": "critical", "env": "prod", "role": "db"},
    runbook="https://wiki.example.com/runbooks/disk-full",
    measurements=[MeasurementValue(name="used_ratio", value=0.962, item="/var"),
                  MeasurementValue(name="free_bytes", value=1932735283, item="/var"),
                  MeasurementValue(name="inodes_used_ratio", value=0.412, item="/var"),
                  MeasurementValue(name="full_in_seconds", value=7200, item="/var")],
    thresholds={"used_ratio": {"/var": {"warning": 0.9, "critical": 0.95}},
                "inodes_used_ratio": {"warning": 0.85, "critical": 0.95}},
    diagnostics={
        "captured_at": "2023-10-27T10:03:12Z",
        "duration_seconds": {"host": 0.01, "recent_changes": 0.2, "check": 0.8},
        "host": {"hostname": "db-01", "os": "Debian GNU/Linux 12 (bookworm)",
                 "kernel": "6.1.0-13-amd64", "architecture": "x86_64",
                 "uptime_seconds": 1054800.0},
        "recent_changes": {"packages": [
            {"time": "2023-10-26T08:00:00Z", "action": "upgrade", "package": "postgresql-15",
             "from": "15.3-0+deb12u1", "to": "15.4-0+deb12u1"}]},
        "check": {"mounts": {"/var": {
            "deleted_open_files": [{"pid": 812, "name": "rsyslogd",
                                    "path": "/var/log/syslog.1", "bytes": 4294967296}],
            "largest_directories": [{"path": "/var/log", "bytes": 21474836480},
                                    {"path": "/var/lib/postgresql", "bytes": 10737418240}],
            "coverage": {"bytes": 35433480192, "complete": True, "entries": 48211}}}},
    },
    observed_at=OBSERVED, sequence=42,
    agent=AgentRef(id="db-01.example.com", version="0.1.0", config="/etc/patrol/db-agent.yaml"))
[OPEN] = decide(EVENT, None, None, NOW, PolicyConfig())
TICKET = OPEN.ticket
TICKET.number = "TS20231027001"
PAST = [
    Ticket(dedup_key="db-01/var-disk", title="/var is 95.3% full on db-01", host="db-01",
           check="var-disk", check_type="disk", severity="critical", priority=Priority.P2,
           status=TicketStatus.CLOSED, category="capacity",
           opened_at=datetime(2023, 10, 3, 8, 12, tzinfo=UTC).timestamp(),
           first_seen=0, last_seen=0, respond_by=0, resolve_by=0,
           resolved_at=datetime(2023, 10, 3, 9, 40, tzinfo=UTC).timestamp(),
           resolution="rotated /var/log/postgresql | logrotate was disabled",
           number="TS20231003004"),
    Ticket(dedup_key="db-01/var-disk", title="/var is 91% full on db-01", host="db-01",
           check="var-disk", check_type="disk", severity="warning", priority=Priority.P3,
           status=TicketStatus.CLOSED, category="capacity",
           opened_at=datetime(2023, 9, 1, 22, 0, tzinfo=UTC).timestamp(),
           first_seen=0, last_seen=0, respond_by=0, resolve_by=0,
           resolved_at=datetime(2023, 9, 2, 1, 5, tzinfo=UTC).timestamp(), number="TS20230901017"),
]
TIMELINE = [
    TimelineEntry(at=NOW, kind="opened", text=f"opened as P1 ({OPEN.reason})"),
    TimelineEntry(at=NOW + 60, kind="comment", text="looking", author="alice"),
]

EXPECTED = "\n".join([
    '## Problem',
    '',
    '- **Symptom**: /var is 96.2% full on db-01 (critical at 95%)',
    '- **Source**: inspection: check `var-disk` (type `disk`) by agent '
    '`db-01.example.com` 0.1.0',
    '- **Host**: db-01',
    '- **First seen**: 2023-10-27T10:03:12Z',
    '- **Seen**: 1 time, last 2023-10-27T10:03:14Z; check now CRITICAL (severity critical)',
    '- **Impact scope**: 1 host (db-01)',
    '- **Category**: capacity',
    '',
    '## Environment',
    '',
    '- **Labels**: env=prod, role=db, tier=critical',
    '- **Tier**: critical',
    '- **OS**: Debian GNU/Linux 12 (bookworm)',
    '- **Kernel**: 6.1.0-13-amd64',
    '- **Architecture**: x86_64',
    '- **Uptime**: 12 d 5 h',
    '',
    '## Measured values',
    '',
    '| Measurement | Item | Value | Expected |',
    '|---|---|---|---|',
    '| used_ratio | /var | 96.2% | warning ≥ 90%, critical ≥ 95% |',
    '| free_bytes | /var | 1.8 GiB | - |',
    '| inodes_used_ratio | /var | 41.2% | warning ≥ 85%, critical ≥ 95% |',
    '| full_in_seconds | /var | 2 h | - |',
    '',
    '## Diagnostics',
    '',
    '### From the check',
    '',
    '#### mounts › /var › deleted open files',
    '',
    '| pid | name | path | bytes |',
    '|---|---|---|---|',
    '| 812 | rsyslogd | /var/log/syslog.1 | 4.0 GiB |',
    '',
    '#### mounts › /var › largest directories',
    '',
    '| path | bytes |',
    '|---|---|',
    '| /var/log | 20.0 GiB |',
    '| /var/lib/postgresql | 10.0 GiB |',
    '',
    '#### mounts › /var › coverage',
    '',
    '- bytes: 33.0 GiB',
    '- complete: yes',
    '- entries: 48,211',
    '',
    '### Recent changes',
    '',
    '#### packages',
    '',
    '| time | action | package | from | to |',
    '|---|---|---|---|---|',
    '| 2023-10-26T08:00:00Z | upgrade | postgresql-15 | 15.3-0+deb12u1 | 15.4-0+deb12u1 |',
    '',
    '### Host facts',
    '',
    '- hostname: db-01',
    '',
    '## Steps Patrol already took',
    '',
    '- 2023-10-27T10:03:12Z detected the problem in routine inspection',
    '- 2023-10-27T10:03:12Z captured diagnostics: host, recent_changes, check',
    '- 2023-10-27T10:03:14Z looked up past occurrences: 2 found',
    '- 2023-10-27T10:03:14Z opened as P1 (critical on a critical-tier host; disk '
    'full in ~2h (+1))',
    '',
    '## Suggested first actions',
    '',
    '1. Look for deleted files still held open (diagnostics: deleted open files); '
    'restarting or signalling the holder frees their space at once.',
    '2. Check the largest and recently grown directories: logs without rotation, '
    'core dumps, caches, old backups or package caches (`apt-get clean`).',
    '3. Rotate or compress logs (`logrotate -f`), vacuum the journal (`journalctl '
    '--vacuum-size=500M`).',
    '4. If the growth is legitimate, extend the filesystem or move data; record the '
    'new capacity plan.',
    '',
    'Runbook: https://wiki.example.com/runbooks/disk-full',
    '',
    '## Past occurrences',
    '',
    '| Ticket | Opened | Resolved | How it was resolved |',
    '|---|---|---|---|',
    '| TS20231003004 | 2023-10-03T08:12:00Z | 2023-10-03T09:40:00Z | rotated '
    '/var/log/postgresql \\| logrotate was disabled |',
    '| TS20230901017 | 2023-09-01T22:00:00Z | 2023-09-02T01:05:00Z | no note |',
    '',
    '## How to verify',
    '',
    'On db-01:',
    '',
    '```',
    'patrol check --config /etc/patrol/db-agent.yaml --only var-disk',
    '```',
    '',
    'The check reports OK once the problem is fixed.',
    '',
    '## SLA',
    '',
    '- **Priority**: P1',
    '- **Respond by**: 2023-10-27T10:18:14Z',
    '- **Resolve by**: 2023-10-27T14:03:14Z',
    '',
])


def test_disk_breach_body_is_complete_and_exact() -> None:
    assert render_body(TICKET, EVENT, PAST, TIMELINE, verify_command("var-disk")) == EXPECTED


def _plain_ticket(**changes: object) -> Ticket:
    fields: dict[str, object] = dict(
        dedup_key="web-01/api", title="GET https://api.example.com/health returned 503 on web-01",
        host="web-01", check="api", check_type="http", severity="critical",
        priority=Priority.P2, status=TicketStatus.NEW, category="software",
        opened_at=NOW, first_seen=NOW - 30, last_seen=NOW + 600, respond_by=NOW + 1800,
        resolve_by=NOW + 86400, occurrences=3, check_status="CRITICAL",
        measurements=[{"name": "response_seconds", "value": 0.25, "item": ""}])
    fields.update(changes)
    return Ticket(**fields)  # type: ignore[arg-type]


def _section(markdown: str, title: str) -> str:
    return markdown.split(f"## {title}\n\n", 1)[1].split("\n\n## ", 1)[0]


def test_body_without_event_uses_the_stored_ticket() -> None:
    ticket = _plain_ticket(diagnostics={"response": {"status": 503, "body": "x" * 130}})
    markdown = render_body(ticket, None, [], [], verify_command("api", "/etc/patrol/web.yaml"))
    assert _section(markdown, "Problem").splitlines()[1:5] == [
        "- **Source**: inspection: check `api` (type `http`)",
        "- **Host**: web-01",
        "- **First seen**: 2023-10-27T10:02:44Z",
        "- **Seen**: 3 times, last 2023-10-27T10:13:14Z; check now CRITICAL (severity critical)",
    ]
    assert _section(markdown, "Environment") == "- **Labels**: none"
    assert _section(markdown, "Measured values").splitlines()[2] == (
        "| response_seconds | - | 250 ms | - |")
    assert _section(markdown, "Diagnostics") == "\n".join([
        "### Response", "", "- status: 503", "", "#### body", "", "```", "x" * 130, "```"])
    assert _section(markdown, "Past occurrences") == (
        "None: this is the first ticket for this host and check.")
    assert "Runbook" not in markdown
    assert "\npatrol check --config /etc/patrol/web.yaml --only api\n" in _section(
        markdown, "How to verify")


def test_group_ticket_lists_its_hosts_and_children_name_their_group() -> None:
    group = render_body(_plain_ticket(is_group=True, hosts=["web-01", "web-02", "web-03"]),
                        None, [], [], "patrol check")
    assert "- **Impact scope**: 3 hosts: web-01, web-02, web-03\n" in group
    child = render_body(_plain_ticket(parent_id=40), None, [], [], "patrol check")
    assert ("- **Impact scope**: 1 host (web-01)\n- **Group**: part of group ticket 40\n"
            "- **Category**: software") in child


def test_unknown_check_type_gets_generic_first_actions() -> None:
    markdown = render_body(_plain_ticket(check_type="my_plugin"), None, [], [], "patrol check")
    assert _section(markdown, "Suggested first actions").splitlines()[0] == (
        "1. Read the check's summary and compare with the last occurrence of this problem.")
    assert _section(markdown, "Diagnostics") == "None captured."
    assert "diagnostics below" not in markdown  # there are none to read


def test_past_occurrences_cap_and_open_ones_show_their_status() -> None:
    past = [_plain_ticket(number=f"TS20231001{n:03d}", status=TicketStatus.CLOSED)
            for n in range(12)]
    table = _section(render_body(_plain_ticket(), None, past, [], "x"), "Past occurrences")
    lines = table.splitlines()
    assert len(lines) == 2 + 10 + 2
    assert lines[2] == "| TS20231001000 | 2023-10-27T10:03:14Z | - | closed |"
    assert lines[-1] == "… and 2 older tickets"


RENDERED = [
    ("scalars-by-unit", {"rss_bytes": 1536, "cpu_ratio": 0.125, "wait_seconds": 90,
                         "count": 12000, "ok": False, "user": None},
     ["- rss: 1.5 KiB", "- cpu: 12.5%", "- wait: 1 min 30 s", "- count: 12,000",
      "- ok: no", "- user: -"]),
    ("records-become-a-table", [{"pid": 1, "cmd": "a|b"}, {"pid": 2, "extra": [1, 2]}],
     ["| pid | cmd | extra |", "|---|---|---|", "| 1 | a\\|b | - |", "| 2 | - | 1, 2 |"]),
    ("nested-cells-as-json", [{"env": {"A": "1"}}], ["| env |", "|---|", '| {"A": "1"} |']),
    ("scalar-list-bullets", ["a", "b"], ["- a", "- b"]),
    ("mixed-list-as-json", [1, {"a": 2}], ["```", json.dumps([1, {"a": 2}], indent=1), "```"]),
    ("multi-line-string-fenced", "line 1\nline 2", ["```", "line 1\nline 2", "```"]),
    ("backticks-need-a-longer-fence", "run ```x```\n", ["````", "run ```x```\n", "````"]),
    ("durations-in-words", {"idle_seconds": 0, "age_seconds": 287.3, "wait_seconds": 0.25,
                            "uptime_seconds": 1054800, "modified_seconds_ago": 7200},
     ["- idle: 0 s", "- age: 4 min 47 s", "- wait: 250 ms", "- uptime: 12 d 5 h",
      "- modified: 2 h ago"]),
    ("empty", {}, ["(empty)"]),
    ("none", [], ["(none)"]),
    ("deep-nesting-becomes-json", {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}},
     ["#### a › b › c › d", "", "e:", "```", '{\n "f": 1\n}', "```"]),
]


@pytest.mark.parametrize(("value", "lines"), [r[1:] for r in RENDERED],
                         ids=[r[0] for r in RENDERED])
def test_render_value(value: object, lines: list[str]) -> None:
    assert render_value(value) == lines


def test_render_value_caps_rows_cells_and_text() -> None:
    rows = [{"n": i, "text": "y" * 300} for i in range(25)]
    table = render_value(rows)
    assert len(table) == 2 + body.MAX_ROWS + 2
    assert table[2] == f"| 0 | {'y' * (body.MAX_CELL - 1)}… |"
    assert table[-1] == f"… and {25 - body.MAX_ROWS} more"
    [_, text, _] = render_value("z" * 5000)
    assert text == "z" * body.MAX_TEXT + "\n... (1000 more characters)"


def test_render_diagnostics_orders_sections_and_omits_what_does_not_fit() -> None:
    huge = {f"t{t}": [{f"c{c}": "w" * 199 for c in range(10)} for _ in range(20)]
            for t in range(3)}
    diagnostics = {"captured_at": "t", "duration_seconds": {"check": 1.0}, "result": {},
                   "host": {"os": "x", "fqdn": "db"},
                   "huge": huge, "check": {"state": "failed"}}
    size = sum(len(line) + 1 for line in ["", "### Huge", "", *render_value(huge)])
    assert size > body.MAX_DIAGNOSTICS
    assert render_diagnostics(diagnostics) == [
        "", "### From the check", "", "- state: failed",
        "", "### Host facts", "", "- fqdn: db",
        "", "### Huge", "", f"(omitted here: {size} characters; the ticket page has it)"]


# -- what a reader sees: numbers by unit, one time format, steps in order ---------------

ISO_ANY = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?([^\s|,;)]*)")


def _one_timestamp_style(markdown: str) -> None:
    """Every timestamp in the body is ISO 8601 UTC with ``Z``, none with ``+00:00``."""
    suffixes = {m.group(1) for m in ISO_ANY.finditer(markdown)}
    assert suffixes <= {"Z"}, suffixes
    assert "+00:00" not in markdown


def _steps_in_time_order(markdown: str) -> None:
    steps = _section(markdown, "Steps Patrol already took").splitlines()
    times = [line.split(" ", 2)[1] for line in steps]
    assert times == sorted(times) and all(t.endswith("Z") for t in times), steps


PROCESS_ROW = {"pid": 21072, "name": "java", "user": "app", "cpu_ratio": 0.93,
               "rss_bytes": 3 * 1024**3, "cmdline": "java -jar /opt/app/app.jar" + " " * 40,
               "started": "2026-12-05T04:25:28+00:00", "state": "running"}


def _busy_event(**changes: object) -> Event:
    diagnostics = {
        "captured_at": "2023-10-27T10:03:10+00:00",
        "host": {"hostname": "db-01", "os": "Debian GNU/Linux 12 (bookworm)",
                 "boot_time": 1796439137, "boot_time_iso": "2026-12-05T02:52:17+00:00",
                 "uptime_seconds": 287.3, "memory_total_bytes": 8 * 1024**3},
        "top_processes": {"sample_seconds": 0.25, "by_cpu": [
            {**PROCESS_ROW, "pid": 21072 + n} for n in range(12)]},
        "check": {"mounts": {"/": {
            "recent_large_files": [{"path": "/var/log/app.log", "bytes": 5 * 1024**3,
                                    "modified_seconds_ago": 287.3}],
            "coverage": {"root": "/", "complete": True, "entries": 48211,
                         "elapsed_seconds": 1.5}}}},
        "result": {"listening": {"port": 5432, "fd": 7, "backend_pid": 8123},
                   "holder_pids": [21072, 31337]},
    }
    fields: dict[str, Any] = {"summary": "/ is 99.0% full on db-01 (critical at 95%)",
                              "diagnostics": diagnostics, "measurements": [
        MeasurementValue(name="used_ratio", value=0.99, item="/")],
        "thresholds": {"used_ratio[/]": {"warning": 0.85, "critical": 0.95, "recover": 0.8,
                                         "higher_is_worse": True, "unit": "ratio"}}}
    fields.update(changes)
    return EVENT.model_copy(update=fields)


def test_numbers_read_by_unit_and_times_in_one_style() -> None:
    event = _busy_event()
    [opened] = decide(event, None, None, NOW, PolicyConfig())
    markdown = render_body(opened.ticket, event, [], TIMELINE, verify_command("var-disk"))
    assert "| 21072 | java | app | 93.0% | 3.0 GiB |" in markdown  # a pid, then what it is
    assert "21,072" not in markdown
    assert "- boot time: 2026-12-05T02:52:17Z" in markdown  # an epoch, as a time
    assert "1,796,439,137" not in markdown and "boot time iso" not in markdown
    assert "| /var/log/app.log | 5.0 GiB | 4 min 47 s ago |" in markdown
    assert "287.3" not in markdown
    assert "- **Uptime**: 4 min 47 s" in markdown
    assert "| used_ratio | / | 99.0% | warning ≥ 85%, critical ≥ 95%, clears below 80% |" \
        in markdown
    assert "- port: 5432\n- fd: 7\n- backend pid: 8123" in markdown
    assert "#### holder pids\n\n- 21072\n- 31337" in markdown
    assert "#### mounts › / › coverage" in markdown and "mounts / / /" not in markdown
    assert "- entries: 48,211" in markdown  # a count keeps its separators
    assert "| 2026-12-05T04:25:28Z | running | java -jar /opt/app/app.jar |" in markdown
    top = _section(markdown, "Diagnostics").split("### Top processes", 1)[1]
    assert top.count("| java |") == 5 and "… and 7 more" in top  # folded, not 12 rows
    _one_timestamp_style(markdown)
    _steps_in_time_order(markdown)


def test_steps_are_in_time_order_even_when_diagnostics_came_first() -> None:
    timeline = [TimelineEntry(at=NOW + 600, kind="escalated", text="respond-by is near"),
                TimelineEntry(at=NOW, kind="opened", text="opened as P1")]
    markdown = render_body(TICKET, _busy_event(), PAST, timeline, verify_command("var-disk"))
    steps = _section(markdown, "Steps Patrol already took").splitlines()
    assert steps == [
        "- 2023-10-27T10:03:10Z detected the problem in routine inspection",
        "- 2023-10-27T10:03:10Z captured diagnostics: host, top_processes, check, result",
        "- 2023-10-27T10:03:14Z looked up past occurrences: 2 found",
        "- 2023-10-27T10:03:14Z opened as P1",
        "- 2023-10-27T10:13:14Z respond-by is near",
    ]


def test_verify_names_the_agents_config_and_survives_a_rerender_without_event() -> None:
    first = render_body(TICKET, EVENT, [], [], verify_command("var-disk"))
    assert "patrol check --config /etc/patrol/db-agent.yaml --only var-disk" in first
    assert "/etc/patrol/agent.yaml" not in first
    TICKET.body = first
    try:
        again = render_body(TICKET, None, [], [], verify_command("var-disk"))
    finally:
        TICKET.body = ""
    assert "patrol check --config /etc/patrol/db-agent.yaml --only var-disk" in again
    spaced = EVENT.model_copy(update={"agent": AgentRef(id="a", version="1",
                                                        config="/srv/my agents/db.yaml")})
    TICKET.body = render_body(TICKET, spaced, [], [], verify_command("var-disk"))
    try:
        again = render_body(TICKET, None, [], [], verify_command("var-disk"))
    finally:
        TICKET.body = ""
    assert "patrol check --config '/srv/my agents/db.yaml' --only var-disk\n" in again


# -- tickets the collector opens itself: a check or a host went silent ------------------

@pytest.fixture(params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[World]:
    store = store_for(request.param, request, tmp_path)
    try:
        yield World(store, PolicyConfig())
    finally:
        store.close()


def _beat(w: World, checks: list[Any] | None = None) -> None:
    w.engine.heartbeat(heartbeat("db-01", checks, sent_at=w.clock(),
                                 labels={"tier": "critical", "env": "prod"}))


def test_stale_check_ticket_says_what_stopped_and_gives_commands_that_work(
        world: World) -> None:
    w = world
    frozen = [snapshot("daily-capacity-inspection", "OK", last_run=w.clock(), interval=60)]
    _beat(w, frozen)
    for _ in range(8):
        w.clock.advance(30)
        _beat(w, frozen)
        w.watchdog.run_once()
    [t] = w.store.list_tickets()
    assert t.check == "stale:daily-capacity-inspection"
    markdown = t.body
    assert [line[3:] for line in markdown.splitlines() if line.startswith("## ")] == [
        "Problem", "Environment", "What stopped", "Steps Patrol already took",
        "Suggested first actions", "Past occurrences", "How to verify", "SLA"]
    stopped = _section(markdown, "What stopped")
    assert ("- **What**: check `daily-capacity-inspection` on db-01 stopped sending results"
            in stopped)
    assert f"- **Last result**: {iso_z(T0)}" in stopped
    assert "diagnostics below" not in markdown.lower()
    verify = _section(markdown, "How to verify")
    assert ("patrol check --config /etc/patrol/agent.yaml --only daily-capacity-inspection"
            in verify)
    assert "stale:" not in verify
    assert "curl -s 'http://127.0.0.1:9731/api/v1/status?check=daily-capacity-inspection'" \
        in verify
    _one_timestamp_style(markdown)
    _steps_in_time_order(markdown)


def test_unreachable_host_ticket_points_at_the_agent_service(world: World) -> None:
    w = world
    _beat(w)
    w.tick(91)
    [t] = w.store.list_tickets(check="heartbeat")
    markdown = t.body
    stopped = _section(markdown, "What stopped")
    assert stopped.startswith("- **What**: the Patrol agent on db-01 stopped sending heartbeats")
    verify = _section(markdown, "How to verify")
    for command in ("systemctl status patrol-agent",
                    "journalctl -u patrol-agent -n 100 --no-pager",
                    "curl -s http://127.0.0.1:9731/healthz",
                    "curl -s http://127.0.0.1:9731/api/v1/status"):
        assert f"{command}\n" in verify
    assert "patrol check" not in verify  # there is no check named "heartbeat" to run
    assert "Measured values" not in markdown and "diagnostics below" not in markdown.lower()
    _one_timestamp_style(markdown)


# -- bodies from real check runs: every type says what was expected --------------------

PLUGIN = "/usr/lib/nagios/plugins/check_dummy"


def _options(check_type: str, tmp_path: Path, request: pytest.FixtureRequest
             ) -> dict[str, Any]:
    """Options that make a real check of ``check_type`` find a problem here."""
    if check_type == "file":
        export = tmp_path / "export.csv"
        export.write_text("a,b\n")
        an_hour_ago = time.time() - 3600
        os.utime(export, (an_hour_ago, an_hour_ago))
        return {"path": str(export), "warning": "5m"}
    if check_type == "log":
        (tmp_path / "app.log").write_text("INFO up\nERROR disk full\n")
        return {"path": str(tmp_path / "app.log"), "pattern": "ERROR", "start_at_end": False}
    if check_type == "nagios":
        if not Path(PLUGIN).exists():
            pytest.skip("monitoring-plugins is not installed")
        return {"command": [PLUGIN, "2", "array degraded"]}
    if check_type == "postgres":
        return {"dsn": request.getfixturevalue("postgres_dsn"), "warning": "0.01%"}
    if check_type == "mysql":
        return {**request.getfixturevalue("mysql_server"), "warning": "0.01%"}
    if check_type == "redis":
        return {"url": request.getfixturevalue("redis_url"), "warning": "0.001%"}
    closed = free_port()
    return {
        "tcp": {"host": "127.0.0.1", "port": closed, "timeout": "1s"},
        "http": {"url": f"http://127.0.0.1:{closed}/health", "timeout": "1s"},
        "process": {"pattern": "no-such-daemon-[x]yz"},
        "disk": {"path": str(tmp_path), "warning": "0.1%", "critical": "0.2%"},
        "memory": {"warning": "1%"},
        "load": {"thresholds": {"load5_per_core": {"warning": 0}}},
    }[check_type]


REAL = [  # type, measurement, what the Expected column says
    ("tcp", "up", "1: the port accepts connections (and answers as configured)"),
    ("http", "up", "1: a status in expect_status (default 200-399) and a body that matches "
     "body_match / not body_not_match, when set"),
    ("process", "count", "between min: and max: (default: at least 1)"),
    ("file", "exists", "1: the file exists"),
    ("file", "age_seconds", "warning ≥ 5 min"),
    ("disk", "used_ratio", "warning ≥ 0.1%, critical ≥ 0.2%"),
    ("log", "matches", "warning ≥ 1"),
    ("memory", "used_ratio", "warning ≥ 1%, critical ≥ 95%"),
    ("load", "load5_per_core", "warning ≥ 0, critical ≥ 3"),
    ("postgres", "used_ratio", "warning ≥ 0.01%, critical ≥ 90%"),
    ("mysql", "used_ratio", "warning ≥ 0.01%, critical ≥ 90%"),
    ("redis", "used_ratio", "warning ≥ 0.001%, critical ≥ 90%"),
]


def _real_event(check_type: str, options: dict[str, Any]) -> Event:
    """The event the agent's emitter would send for one real run of the check."""
    name = f"orders-{check_type}"
    check, ctx = build(check_type, name=name, **options)
    result = check.run(ctx)
    assert result.status is not Status.OK, result.summary
    view = CheckView(CheckInfo(name, check_type, {}, None, 60.0), status=result.status,
                     since=NOW, result=result, last_run=NOW)
    return build_event(view, Transition(name, Status.OK, result.status), "app-01",
                       {"tier": "standard"}, "0123456789abcdef", 1, now=OBSERVED,
                       evaluator=ctx.evaluator, config="/srv/patrol/agent.yaml",
                       extra_diagnostics={"result": result.diagnostics})


def _row(markdown: str, measurement: str) -> list[str]:
    table = _section(markdown, "Measured values").splitlines()
    [row] = [line for line in table if line.startswith(f"| {measurement} |")]
    return [cell.strip() for cell in row.strip("|").split("|")]


@pytest.mark.parametrize(("check_type", "measurement", "expected"), REAL,
                         ids=[f"{t}-{m}" for t, m, _ in REAL])
def test_real_check_body_shows_what_was_expected(check_type: str, measurement: str,
                                                 expected: str, tmp_path: Path,
                                                 request: pytest.FixtureRequest) -> None:
    event = _real_event(check_type, _options(check_type, tmp_path, request))
    [opened] = decide(event, None, None, NOW, PolicyConfig())
    markdown = render_body(opened.ticket, event, [], [], verify_command(event.check))
    assert _row(markdown, measurement)[3] == expected
    assert f"patrol check --config /srv/patrol/agent.yaml --only {event.check}\n" in markdown
    assert "/etc/patrol/agent.yaml" not in markdown
    _one_timestamp_style(markdown)
    _steps_in_time_order(markdown)


def test_plugin_and_unit_bodies_say_what_healthy_means(tmp_path: Path,
                                                       request: pytest.FixtureRequest) -> None:
    event = _real_event("nagios", _options("nagios", tmp_path, request))
    [opened] = decide(event, None, None, NOW, PolicyConfig())
    markdown = render_body(opened.ticket, event, [], [], verify_command(event.check))
    assert _section(markdown, "Measured values") == (
        "None reported. Expected: the plugin exits 0 (OK); its own levels are in the "
        "perfdata.")
    assert "- exit code: 2" in markdown
    # systemd is not PID 1 on this machine: the unit's event as the agent sends it.
    unit = EVENT.model_copy(update={
        "type": "systemd", "check": "nginx", "thresholds": {},
        "measurements": [MeasurementValue(name="active", value=0, item="nginx.service"),
                         MeasurementValue(name="restarts", value=4, item="nginx.service")]})
    [opened] = decide(unit, None, None, NOW, PolicyConfig())
    markdown = render_body(opened.ticket, unit, [], [], verify_command("nginx"))
    assert _row(markdown, "active") == ["active", "nginx.service", "0", "1: the unit is active"]
    assert _row(markdown, "restarts") == ["restarts", "nginx.service", "4", "-"]


@pytest.mark.slow
def test_a_real_agent_names_its_config_in_the_event_and_the_tickets(tmp_path: Path) -> None:
    """A running ``patrol agent`` with a tcp check on a closed port and a memory check
    set to breach: the events it queues name the config file it runs; the tcp ticket
    says what the port should do, the memory ticket lists processes by plain pid."""
    agent = AgentProcess(tmp_path, f"http://127.0.0.1:{free_port()}",  # nobody listens
                         f"  - name: orders-db-port\n    type: tcp\n    host: 127.0.0.1\n"
                         f"    port: {free_port()}\n    timeout: 1s\n"
                         "  - name: memory\n    type: memory\n    warning: 1%\n",
                         hostname="db-07")
    agent.start()
    try:
        rows = agent.wait_until(lambda: (found := {r["payload"]["check"]: r["payload"]
                                                   for r in read_outbox(agent.state_dir)
                                                   if r["kind"] == "event"}) and
                                len(found) == 2 and found, 30, "both breach events")
    finally:
        agent.stop()
    bodies = {}
    for check, payload in rows.items():
        event = Event.model_validate(payload)
        assert event.agent.config == str((tmp_path / "agent.yaml").resolve())
        [opened] = decide(event, None, None, event.observed_at.timestamp(), PolicyConfig())
        bodies[check] = render_body(opened.ticket, event, [], [], verify_command(check))
        assert (f"patrol check --config {event.agent.config} --only {check}\n"
                in bodies[check])
        assert "/etc/patrol/agent.yaml" not in bodies[check]
        _one_timestamp_style(bodies[check])
        _steps_in_time_order(bodies[check])
    assert _row(bodies["orders-db-port"], "up") == [
        "up", "-", "0", "1: the port accepts connections (and answers as configured)"]
    top = _section(bodies["memory"], "Diagnostics").split("### Top processes\n", 1)[1]
    top = top.split("\n### ", 1)[0]
    pids = [line.split("|")[1].strip() for line in top.splitlines()
            if re.match(r"\| \d", line)]
    assert pids and all(pid.isdigit() for pid in pids), top  # never "21,072"


@pytest.mark.parametrize("start", ["~~~", "```", "# heading", "> quote", "1. item", "- dash",
                                   "| cell |", "<div>", "=====", "* star"])
def test_an_agents_value_that_looks_like_markdown_does_not_restyle_the_rest(start: str) -> None:
    """A log line or status text that starts like a fence used to hide every section
    after it inside a code block; a heading or a list changed the layout. Each reads as
    the text it is, in every helpdesk format, and the next section is still a section."""
    from patrol.contract.markup import to_html, to_text

    markdown = "\n".join(render_diagnostics({
        "log": {"matched": [f"{start} from the log", "second line"]},
        "status": start, "zz_last": "still visible"}))
    html = to_html(markdown)
    assert "<h3>Zz last</h3>" in html and "<p>still visible</p>" in html
    assert "<pre>" not in html
    for line in (f"{start} from the log", start):
        assert line in to_text(markdown)
