"""Report figures against hand-computed expectations, on SQLite and PostgreSQL.

The store is seeded by a real Engine and Watchdog (tests/report_seed.py tells the
story minute by minute); every expected number below is worked out from that story
in the comment beside it. Minutes are from T0 = 2023-10-27 09:00 UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from patrol.collector.policy.settings import PolicyConfig, SlaConfig
from patrol.collector.reports.make import daily_report, retro_report
from patrol.collector.reports.source import tickets_since
from patrol.collector.store import TicketStore
from tests.collector_fixtures import MINUTE, T0, World, event, store_for
from tests.report_seed import NOW, Seeded, seeded_story

DAY = date(2023, 10, 27)


@pytest.fixture(params=["sqlite", "postgres"], name="seeded")
def seeded_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Seeded]:
    yield from seeded_story(request.param, request, tmp_path)


@pytest.fixture(params=["sqlite", "postgres"])
def any_story_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TicketStore]:
    store = store_for(request.param, request, tmp_path)
    try:
        yield store
    finally:
        store.close()


def retro(s: Seeded) -> dict:
    return retro_report(s.world.store, DAY, DAY, NOW)


def by_key(rows: list[dict]) -> dict[str, tuple]:
    return {r["key"]: (r["tickets"], r["acknowledged"], r["mtta_seconds"], r["resolved"],
                       r["mttr_seconds"]) for r in rows}


def test_mtta_and_mttr_by_priority_category_team_and_check_type(seeded):
    r = retro(seeded)
    # P2 A, B, C acknowledged after 5, 10, 45 min -> MTTA 20 min; resolved after 25, 55,
    # 65 min -> MTTR 48m 20s. P3 E resolved 68 min after it opened (its final
    # resolution, after the reopen), H after 6 min -> 37 min; I still open.
    assert by_key(r["by_priority"]) == {
        "P1": (1, 0, None, 0, None),
        "P2": (3, 3, 20 * MINUTE, 3, (25 + 55 + 65) / 3 * MINUTE),
        "P3": (3, 0, None, 2, 37 * MINUTE),
        "P4": (0, 0, None, 0, None)}
    # disk/capacity: A, B (+ I, swap, unresolved); http/software: C, D; cpu: E, H
    assert by_key(r["by_category"]) == {
        "capacity": (3, 2, 7.5 * MINUTE, 2, 40 * MINUTE),
        "performance": (2, 0, None, 2, 37 * MINUTE),
        "software": (2, 1, 45 * MINUTE, 1, 65 * MINUTE)}
    assert by_key(r["by_team"]) == {
        "(no team)": (3, 0, None, 2, 37 * MINUTE),
        "dba": (2, 2, 7.5 * MINUTE, 2, 40 * MINUTE),
        "web": (2, 1, 45 * MINUTE, 1, 65 * MINUTE)}
    assert by_key(r["by_check_type"]) == {
        "cpu": (2, 0, None, 2, 37 * MINUTE),
        "disk": (2, 2, 7.5 * MINUTE, 2, 40 * MINUTE),
        "http": (2, 1, 45 * MINUTE, 1, 65 * MINUTE),
        "swap": (1, 0, None, 0, None)}
    summary = r["summary"]
    assert (summary["tickets"], summary["acknowledged"], summary["resolved"]) == (7, 3, 5)
    assert summary["mtta_seconds"] == 20 * MINUTE
    assert summary["mttr_seconds"] == pytest.approx((25 + 55 + 65 + 68 + 6) / 5 * MINUTE)


def test_sla_compliance_per_priority_and_the_breaches(seeded):
    r = retro(seeded)["sla"]
    rows = {row["priority"]: row for row in r["by_priority"]}
    # P1 D: never answered (due 15m), still open at 4h30 (due 4h): both breached.
    assert rows["P1"]["respond"] == {"met": 0, "breached": 1, "pending": 0, "compliance": 0.0}
    assert rows["P1"]["resolve"] == {"met": 0, "breached": 1, "pending": 0, "compliance": 0.0}
    # P2: C answered after 45 min of 30 -> 2 of 3; all resolved within 24 h.
    assert rows["P2"]["respond"] == {"met": 2, "breached": 1, "pending": 0,
                                     "compliance": pytest.approx(2 / 3)}
    assert rows["P2"]["resolve"]["compliance"] == 1.0
    # P3: E and H ended before anyone had to answer; I (opened 4h00) is still within
    # its 1 h and 72 h: pending, not counted.
    assert rows["P3"]["respond"] == {"met": 2, "breached": 0, "pending": 1, "compliance": 1.0}
    assert rows["P3"]["resolve"] == {"met": 2, "breached": 0, "pending": 1, "compliance": 1.0}
    assert rows["P4"]["respond"]["compliance"] is None
    assert r["total"]["respond"]["compliance"] == pytest.approx(4 / 6)
    assert r["total"]["resolve"]["compliance"] == pytest.approx(5 / 6)
    d, c = seeded.number("D"), seeded.number("C")
    assert [(b["ticket"], b["deadline"], b["due_at"], b["done_at"], b["late_seconds"])
            for b in r["breaches"]] == [
        (d, "respond", T0 + 15 * MINUTE, None, 255 * MINUTE),
        (d, "resolve", T0 + 240 * MINUTE, None, 30 * MINUTE),
        (c, "respond", T0 + 30 * MINUTE, T0 + 45 * MINUTE, 15 * MINUTE)]


def test_recurring_reopened_flapping_and_noisy(seeded):
    r = retro(seeded)
    e, h, i = seeded.number("E"), seeded.number("H"), seeded.number("I")
    # cpu: E (opened + 1 reopen) and H; root-disk: A and B; the rest occurred once.
    assert r["recurring"]["by_check"] == [
        {"key": "cpu", "incidents": 3, "tickets": 2, "reopens": 1},
        {"key": "root-disk", "incidents": 2, "tickets": 2, "reopens": 0}]
    assert r["recurring"]["by_host"] == [
        {"key": "web-02", "incidents": 2, "tickets": 1, "reopens": 1}]
    assert [(row["key"], row["incidents"]) for row in r["recurring"]["by_category"]] == [
        ("capacity", 3), ("performance", 3), ("software", 2)]
    # A, B, C, E, H were resolved at some point; only E came back.
    assert r["reopens"] == {"reopened": 1, "ever_resolved": 5, "rate": 0.2, "tickets": [e]}
    assert r["flapping"] == [{"host": "db-03", "check": "swap", "tickets": 1,
                              "numbers": [i]}]
    # E first resolved 7 min after opening, H 6 min, nobody touched either; A, B, C
    # were acknowledged, so they are not noise however fast they ended.
    assert r["noisy"] == {"within_seconds": 30 * MINUTE, "checks": [
        {"check": "cpu", "noisy_tickets": 2, "tickets": 2, "hosts": ["web-02", "web-03"],
         "numbers": [e, h]}]}


def test_trend_against_the_previous_day(seeded):
    r = retro(seeded)
    # 2023-10-26: J only, acknowledged after 20 min, resolved after 65 min.
    assert r["previous_period"] == {"from": "2023-10-26", "to": "2023-10-26", "days": 1}
    trend = {row["metric"]: (row["current"], row["previous"], row["delta"])
             for row in r["trend"]}
    assert trend["tickets"] == (7, 1, 6)
    assert trend["mtta_seconds"] == (20 * MINUTE, 20 * MINUTE, 0.0)
    assert trend["mttr_seconds"][1:] == (65 * MINUTE, pytest.approx(-21.2 * MINUTE))
    assert trend["respond_compliance"] == (pytest.approx(2 / 3), 1.0, pytest.approx(-1 / 3))
    assert trend["reopen_rate"] == (0.2, 0.0, 0.2)
    assert trend["noisy_tickets"] == (2, 0, 2)
    assert r["per_day"] == {"days": ["2023-10-27"], "opened": [7], "previous_opened": [1]}


def test_a_week_counts_each_ticket_in_the_day_it_opened(seeded):
    r = retro_report(seeded.world.store, date(2023, 10, 21), DAY, NOW)
    assert r["period"] == {"from": "2023-10-21", "to": "2023-10-27", "days": 7}
    assert r["per_day"]["opened"] == [0, 0, 0, 0, 0, 1, 7]
    assert r["summary"]["tickets"] == 8 and r["previous"]["tickets"] == 0
    # J joins P2: acknowledged after 20 min, resolved after 65 min
    p2 = by_key(r["by_priority"])["P2"]
    assert p2 == (4, 4, (5 + 10 + 45 + 20) / 4 * MINUTE, 4, (25 + 55 + 65 + 65) / 4 * MINUTE)


def test_daily_summary_and_what_changed_since_yesterday(seeded):
    d = daily_report(seeded.world.store, DAY, NOW)
    assert d["date"] == "2023-10-27" and d["as_of"] == NOW
    # 8 hosts, 9 checks (db-01 has two); all ran today; old-01 silent since 3h20.
    assert d["summary"] == {
        "hosts": 8, "hosts_inspected": 8, "hosts_not_reporting": 1, "checks": 9,
        "checks_run": 9, "status": {"OK": 7, "WARNING": 1, "CRITICAL": 1, "UNKNOWN": 0},
        "tickets_opened": 7, "tickets_reopened": 1, "tickets_resolved": 5,
        "tickets_open": 2, "sla_at_risk": 1}
    assert d["open_by_priority"] == {"P1": 1, "P2": 0, "P3": 1, "P4": 0}
    n = seeded.number
    changes = d["changes"]
    assert [t["ticket"] for t in changes["new_failures"]] == [n(x) for x in "ABCDEHI"]
    assert [(t["ticket"], t["at"]) for t in changes["reopened"]] == [(n("E"),
                                                                       T0 + 120 * MINUTE)]
    assert [(t["ticket"], t["at"]) for t in changes["recoveries"]] == [
        (n("A"), T0 + 25 * MINUTE), (n("B"), T0 + 55 * MINUTE), (n("C"), T0 + 65 * MINUTE),
        (n("E"), T0 + 128 * MINUTE), (n("H"), T0 + 186 * MINUTE)]
    assert changes["yesterday"] == {"opened": 1, "reopened": 0, "resolved": 1}
    assert d["per_hour"]["opened"][9:14] == [4, 1, 0, 1, 1]  # 09:00 A-D, 10:00 E, ...
    assert d["per_hour"]["resolved"][9:13] == [2, 1, 1, 1]  # 09:25, 09:55 / 10:05 / ...
    assert "capacity_forecast" not in d  # no measurement history: no made-up forecast


def test_daily_hosts_not_reporting_fleet_and_top_risks(seeded):
    d = daily_report(seeded.world.store, DAY, NOW)
    assert d["not_reporting"] == [{"host": "old-01", "last_heartbeat": T0 + 200 * MINUTE,
                                   "silent_seconds": 70 * MINUTE, "interval_seconds": 30.0}]
    fleet = {h["host"]: h for h in d["fleet"]}
    assert sorted(fleet) == ["core-01", "db-01", "db-02", "db-03", "old-01", "web-01",
                             "web-02", "web-03"]
    assert fleet["old-01"]["reporting"] is False and fleet["db-01"]["reporting"] is True
    assert [(c["check"], c["status"], c["summary"]) for c in fleet["db-01"]["checks"]] == [
        ("memory", "OK", "memory 43% used on db-01"),
        ("root-disk", "OK", "/var is 71.5% full on db-01")]
    assert fleet["db-01"]["labels"] == {"tier": "standard", "team": "dba"}
    # D is past both deadlines; I (P3, flapping) has 30 of its 60 respond minutes left,
    # more than the 20 % that makes a deadline near.
    risks = d["top_risks"]
    assert [(r["ticket"], r["overdue"], r["at_risk"], r["flapping"]) for r in risks] == [
        (seeded.number("D"), True, True, False), (seeded.number("I"), False, False, True)]
    assert [(c["deadline"], c["left_seconds"]) for c in risks[1]["deadlines"]] == [
        ("respond", 30 * MINUTE), ("resolve", (72 * 60 - 30) * MINUTE)]


def test_a_past_day_reads_its_own_tickets(seeded):
    d = daily_report(seeded.world.store, date(2023, 10, 26), NOW)
    # J opened 09:00 and resolved 10:05 that day; nothing was open at midnight.
    assert d["as_of"] == T0 - 9 * 60 * MINUTE  # midnight, the end of that day
    s = d["summary"]
    assert (s["tickets_opened"], s["tickets_resolved"], s["tickets_open"]) == (1, 1, 0)
    # Only the latest run of each check is kept: that day's runs are not known.
    assert (s["hosts_inspected"], s["checks_run"], s["hosts"]) == (None, None, 8)
    assert [t["ticket"] for t in d["changes"]["recoveries"]] == [seeded.number("J")]
    assert d["changes"]["yesterday"] == {"opened": 0, "reopened": 0, "resolved": 0}
    assert d["top_risks"] == []


def test_reading_page_by_page_finds_the_same_tickets(seeded):
    store = seeded.world.store
    since = T0 - 10 * 60 * MINUTE  # the previous day's 23:00: J, opened 09:00, is older
    small = tickets_since(store, since, page=2)
    assert [f.ticket.number for f in small] == [
        f.ticket.number for f in tickets_since(store, since)] == [
        seeded.number(x) for x in "ABCDEHI"]
    everything = tickets_since(store, 0.0, page=3)
    assert [f.ticket.number for f in everything] == [seeded.number(x) for x in "JABCDEHI"]


def test_a_group_ticket_is_not_counted_beside_its_members(any_story_store):
    world = World(any_story_store)
    world.clock.now[0] = T0
    web = {"tier": "standard", "role": "web"}
    for host in ("web-11", "web-12", "web-13"):  # one check failing on a role's hosts
        world.one(event(host, "nginx", check_type="process", labels=web,
                        observed_at=world.clock(), summary=f"nginx is not running on {host}"))
        world.clock.advance(MINUTE)
    groups = [t for t in any_story_store.list_tickets(status=None) if t.is_group]
    assert len(groups) == 1 and groups[0].hosts == ["web-11", "web-12", "web-13"]
    r = retro_report(any_story_store, DAY, DAY, T0 + 10 * MINUTE)
    assert r["summary"]["tickets"] == 3
    assert r["recurring"]["by_check"] == [
        {"key": "nginx", "incidents": 3, "tickets": 3, "reopens": 0}]


def test_the_policy_decides_when_a_deadline_is_near(seeded):
    # I has 30 of its 60 respond minutes left: near once a deadline's last 60 % starts.
    policy = PolicyConfig(sla=SlaConfig(near_ratio=0.4))
    d = daily_report(seeded.world.store, DAY, NOW, policy)
    assert d["summary"]["sla_at_risk"] == 2
    assert [r["at_risk"] for r in d["top_risks"]] == [True, True]


def test_whether_a_ticket_was_open_follows_its_timeline(seeded):
    facts = {f.ticket.number: f for f in tickets_since(seeded.world.store, 0.0)}
    e = facts[seeded.number("E")]  # opened 60, resolved 67, reopened 120, resolved 128
    assert e.resolved_at == (T0 + 67 * MINUTE, T0 + 128 * MINUTE)
    assert [e.open_at(T0 + m * MINUTE) for m in (60, 61, 100, 121, 130)] == [
        False, True, False, True, False]
    j = facts[seeded.number("J")]  # resolved, then closed by the quiet-period timer
    assert len(j.resolved_at) == 2 and not j.open_at(NOW)
