"""The engine and the watchdog together on a real store, with a fake clock.

Each test is a story an operator would follow on the ticket: its number, status,
priority, SLA dates, occurrence count, timeline and body. ``world`` is a SQLite file;
``any_world`` runs the same story on SQLite and on PostgreSQL (a database made for
this module on 127.0.0.1:5432, a fresh schema per test).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from patrol.collector.model import Priority, TicketStatus
from patrol.collector.policy.settings import LifecycleConfig, PolicyConfig
from patrol.collector.tickets.actions import act
from patrol.contract.timestamps import iso_z
from patrol.contract.wire import MeasurementSeries
from tests.collector_fixtures import (
    DAY,
    HOUR,
    MINUTE,
    T0,
    World,
    at,
    disk_evidence,
    event,
    heartbeat,
    snapshot,
    store_for,
)

BODY_SECTIONS = ["Problem", "Environment", "Measured values", "Diagnostics",
                 "Steps Patrol already took", "Suggested first actions", "Past occurrences",
                 "How to verify", "SLA"]


def _world(kind: str, request: pytest.FixtureRequest, tmp_path: object,
           policy: PolicyConfig | None = None) -> Iterator[World]:
    store = store_for(kind, request, tmp_path)
    try:
        yield World(store, policy)
    finally:
        store.close()


@pytest.fixture
def world(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[World]:
    yield from _world("sqlite", request, tmp_path)


@pytest.fixture(params=["sqlite", "postgres"])
def any_world(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[World]:
    yield from _world(request.param, request, tmp_path)


# -- 1. opening, duplicates, repeats, severity ------------------------------------------


@pytest.mark.parametrize(("status", "tier", "priority", "respond", "resolve"), [
    ("CRITICAL", "critical", "P1", 15 * MINUTE, 4 * HOUR),
    ("CRITICAL", "standard", "P2", 30 * MINUTE, 24 * HOUR),
    ("WARNING", "standard", "P3", HOUR, 72 * HOUR),
    ("UNKNOWN", "dev", "P4", 24 * HOUR, 7 * 24 * HOUR),
], ids=["critical-on-critical-P1", "critical-on-standard-P2", "warning-on-standard-P3",
        "unknown-on-dev-P4"])
def test_trigger_opens_a_ticket_with_priority_and_sla(
        any_world: World, status: str, tier: str, priority: str, respond: float,
        resolve: float) -> None:
    w = any_world
    w.clock.advance(90)
    outcome = w.one(event(status=status, labels={"tier": tier}, **disk_evidence()))
    assert (outcome.outcome, outcome.ticket) == ("opened", f"TS{DAY}001")
    t = w.ticket(outcome.ticket)
    assert re.fullmatch(r"TS\d{8}\d{3}", t.number)
    assert (t.status, t.priority, t.host, t.check, t.category) == (
        TicketStatus.NEW, Priority(priority), "db-01", "root-disk", "capacity")
    assert t.opened_at == T0 + 90 and t.first_seen == T0 and t.occurrences == 1
    assert (t.respond_by, t.resolve_by) == (T0 + 90 + respond, T0 + 90 + resolve)
    [opened] = w.store.timeline(t.id)
    assert opened.kind == "opened" and opened.text.startswith(
        f"opened as {priority}: /var is 96.2% full on db-01 (critical at 95%)")
    assert re.findall(r"^## (.+)$", t.body, re.M) == BODY_SECTIONS
    assert "| used_ratio | /var | 96.2% | warning ≥ 90%, critical ≥ 95% |" in t.body
    assert "| /var/log/journal | 3.9 GiB |" in t.body
    assert "patrol check --config /etc/patrol/agent.yaml --only root-disk" in t.body
    assert f"- **Respond by**: {iso_z(T0 + 90 + respond)}" in t.body
    assert f"- **Resolve by**: {iso_z(T0 + 90 + resolve)}" in t.body


def _disk_series(*used: float) -> list[MeasurementSeries]:
    """The agent's recent /var points before the breach, ten minutes apart."""
    start = T0 - 10 * MINUTE * (len(used) - 1)
    return [MeasurementSeries(name="used_ratio", item="/var", points=[
        (start + 10 * MINUTE * n, u) for n, u in enumerate(used)])]


def test_a_disk_filling_fast_is_more_urgent_than_a_full_but_static_one(
        any_world: World) -> None:
    """Both disks are 96 % full; the one that grew 1 % every ten minutes will be full
    within the hour, which the breach series it came with shows."""
    w = any_world
    static = w.one(event("db-01", history=_disk_series(0.96, 0.96, 0.96), **disk_evidence()))
    filling = w.one(event("db-02", history=_disk_series(0.94, 0.95, 0.96), **disk_evidence()))
    assert w.ticket(static.ticket).priority is Priority.P2
    fast = w.ticket(filling.ticket)
    assert fast.priority is Priority.P1
    assert fast.respond_by == T0 + 15 * MINUTE
    assert w.texts(fast.number, "opened") == [
        "opened as P1: /var is 96.2% full on db-02 (critical at 95%) "
        "(critical on a standard-tier host; disk full in ~40m (+1, at least P2))"]


def test_serial_counts_per_day(world: World) -> None:
    numbers = [world.one(event(f"db-{n:02d}")).ticket for n in range(1, 4)]
    world.clock.advance(24 * HOUR)
    numbers.append(world.one(event("db-99")).ticket)
    assert numbers == [f"TS{DAY}001", f"TS{DAY}002", f"TS{DAY}003", "TS20231028001"]


def test_the_same_event_id_again_is_a_duplicate_and_changes_nothing(any_world: World) -> None:
    w = any_world
    first = event()
    number = w.one(first).ticket
    before = w.ticket(number)
    w.clock.advance(60)
    again = w.one(first)
    assert (again.outcome, again.ticket) == ("duplicate", number)
    after = w.ticket(number)
    assert (after.version, after.occurrences, after.last_seen) == (
        before.version, 1, before.last_seen)
    assert w.kinds(number) == ["opened"]
    assert w.engine.counters["duplicates"] == 1 and w.engine.counters["events"] == 1


def test_repeats_count_occurrences_without_new_tickets_or_timeline(any_world: World) -> None:
    w = any_world
    number = w.one(event()).ticket
    for _ in range(5):
        w.clock.advance(30)
        assert w.one(event()).outcome == "repeated"
    t = w.ticket(number)
    assert (t.occurrences, t.last_seen, t.status) == (6, T0 + 150, TicketStatus.NEW)
    assert f"- **Seen**: 6 times, last {iso_z(T0 + 150)}; check now CRITICAL" in t.body
    assert w.kinds(number) == ["opened"]
    assert [x.number for x in w.store.list_tickets()] == [number]


def test_severity_change_changes_priority_with_a_timeline_entry(any_world: World) -> None:
    w = any_world
    number = w.one(event(status="WARNING")).ticket
    assert w.ticket(number).priority is Priority.P3
    w.clock.advance(10 * MINUTE)
    assert w.one(event(status="CRITICAL")).outcome == "updated"
    t = w.ticket(number)
    assert (t.severity, t.priority, t.occurrences) == ("critical", Priority.P2, 2)
    # SLA recomputed from the opening, as helpdesks do when a priority changes.
    assert (t.respond_by, t.resolve_by) == (T0 + 30 * MINUTE, T0 + 24 * HOUR)
    assert w.texts(number, "severity") == [
        "severity warning -> critical; priority P3 -> P2 (critical on a standard-tier host)"]
    assert "- **Priority**: P2" in t.body


def test_a_batch_is_applied_in_each_agents_sequence_order(world: World) -> None:
    """An agent's outbox may deliver a resolve before the trigger it follows."""
    trigger = event(sequence=7)
    resolve = event(status="OK", sequence=8)
    outcomes = world.ingest(resolve, trigger)
    assert [(o.event_id, o.outcome) for o in outcomes] == [
        (resolve.event_id, "recovering"), (trigger.event_id, "opened")]
    assert world.ticket(outcomes[1].ticket).recovered_at == T0


# -- 2. recovery, verification, close, reopen -------------------------------------------


def test_resolve_event_verifies_then_resolves_then_closes(any_world: World) -> None:
    w = any_world
    number = w.one(event()).ticket
    w.clock.advance(MINUTE)
    assert w.one(event(status="OK")).outcome == "recovering"
    t = w.ticket(number)
    assert (t.status, t.recovered_at, t.check_status) == (TicketStatus.NEW, T0 + 60, "OK")
    w.tick(5 * MINUTE - 1)
    assert w.ticket(number).status is TicketStatus.NEW
    w.tick(1)
    t = w.ticket(number)
    assert (t.status, t.resolved_at) == (TicketStatus.RESOLVED, T0 + 6 * MINUTE)
    assert t.resolution == "verified: the check stayed OK for 5m"
    w.tick(24 * HOUR - 1)
    assert w.ticket(number).status is TicketStatus.RESOLVED
    w.tick(1)
    t = w.ticket(number)
    assert (t.status, t.closed_at) == (TicketStatus.CLOSED, T0 + 6 * MINUTE + 24 * HOUR)
    assert w.kinds(number) == ["opened", "recovering", "resolved", "closed"]
    assert w.texts(number, "closed") == ["no recurrence for 24h after resolve"]


def _resolved(w: World) -> str:
    number = w.one(event()).ticket
    w.clock.advance(MINUTE)
    w.one(event(status="OK"))
    w.tick(5 * MINUTE)
    assert w.ticket(number).status is TicketStatus.RESOLVED
    return number


def test_rebreach_within_the_reopen_window_reopens_the_same_ticket(any_world: World) -> None:
    w = any_world
    number = _resolved(w)
    w.clock.advance(HOUR)
    outcome = w.one(event())
    assert (outcome.outcome, outcome.ticket) == ("reopened", number)
    t = w.ticket(number)
    assert (t.status, t.occurrences, t.resolved_at, t.recovered_at) == (
        TicketStatus.IN_PROGRESS, 2, None, None)
    assert t.respond_by == w.clock() + 30 * MINUTE  # a fresh SLA from the reopening
    assert w.texts(number, "reopened") == [
        "reopened as P2: failed again 1h after it was resolved: "
        "/var is 96.2% full on db-01 (critical at 95%)"]
    assert len(w.store.list_tickets()) == 1


def test_a_closed_ticket_inside_the_reopen_window_reopens(tmp_path: object,
                                                           request: pytest.FixtureRequest,
                                                           ) -> None:
    policy = PolicyConfig(lifecycle=LifecycleConfig(close_after=HOUR))
    for w in _world("sqlite", request, tmp_path, policy):
        number = _resolved(w)
        w.tick(HOUR)
        assert w.ticket(number).status is TicketStatus.CLOSED
        w.clock.advance(HOUR)
        assert w.one(event()).outcome == "reopened"
        t = w.ticket(number)
        assert (t.status, t.closed_at) == (TicketStatus.IN_PROGRESS, None)


def test_rebreach_after_the_window_opens_a_new_ticket_linking_the_old(any_world: World,
                                                                       ) -> None:
    w = any_world
    old_number = _resolved(w)
    old = w.ticket(old_number)
    w.tick(24 * HOUR)
    assert w.ticket(old_number).status is TicketStatus.CLOSED
    w.clock.advance(1)
    outcome = w.one(event())
    assert (outcome.outcome, outcome.ticket) == ("opened", "TS20231028001")
    new = w.ticket(outcome.ticket)
    assert new.previous_id == old.id and new.occurrences == 1
    assert w.texts(new.number, "opened")[0].endswith(
        f"; the same problem was ticketed before as {old_number}")
    assert "looked up past occurrences: 1 found" in new.body
    past = new.body.split("## Past occurrences")[1].split("## How to verify")[0]
    assert (f"| {old_number} | {iso_z(T0)} | {iso_z(old.resolved_at)} | "
            "verified: the check stayed OK for 5m |") in past


def test_rebreach_after_the_window_but_before_close_opens_a_new_ticket(
        tmp_path: object, request: pytest.FixtureRequest) -> None:
    """The old ticket is still resolved (not yet closed): it is closed and a new one
    opened in the same unit of work, never a second active ticket for the key."""
    policy = PolicyConfig(lifecycle=LifecycleConfig(reopen_window=HOUR, close_after=24 * HOUR))
    for w in _world("sqlite", request, tmp_path, policy):
        old_number = _resolved(w)
        w.clock.advance(2 * HOUR)
        outcome = w.one(event())
        assert outcome.outcome == "opened" and outcome.ticket != old_number
        assert w.ticket(old_number).status is TicketStatus.CLOSED
        assert w.texts(old_number, "closed") == [
            "superseded by a new ticket for the same problem"]
        assert w.ticket(outcome.ticket).previous_id == w.ticket(old_number).id


# -- 3. verification failures and flapping ----------------------------------------------


def test_failure_during_verification_keeps_the_ticket_open(any_world: World) -> None:
    w = any_world
    number = w.one(event()).ticket
    w.clock.advance(MINUTE)
    w.one(event(status="OK"))
    w.clock.advance(2 * MINUTE)
    assert w.one(event()).outcome == "repeated"
    t = w.ticket(number)
    assert (t.status, t.recovered_at, t.check_status) == (TicketStatus.NEW, None, "CRITICAL")
    assert w.texts(number, "verification_failed") == [
        "verification failed: the check broke again after 2m; ticket stays open"]
    w.tick(HOUR)
    assert w.ticket(number).status is TicketStatus.NEW
    assert "resolved" not in w.kinds(number) and "reopened" not in w.kinds(number)


def test_flapping_check_gets_one_annotated_ticket(world: World) -> None:
    number = world.one(event()).ticket
    for status in ["OK", "CRITICAL", "OK", "CRITICAL", "OK", "CRITICAL"]:
        world.clock.advance(MINUTE)
        world.one(event(status=status))
    t = world.ticket(number)
    assert t.flapping and t.status is TicketStatus.NEW and t.occurrences == 4
    assert world.texts(number, "flapping") == [
        "flapping: 4 state changes within 30m; kept open, verification period doubled"]
    assert [x.number for x in world.store.list_tickets()] == [number]
    world.clock.advance(MINUTE)
    world.one(event(status="OK"))
    world.tick(5 * MINUTE)  # the normal period is not enough while flapping
    assert world.ticket(number).status is TicketStatus.NEW
    world.tick(5 * MINUTE)
    assert world.ticket(number).status is TicketStatus.RESOLVED
    assert world.texts(number, "resolved") == ["verified: the check stayed OK for 10m"]


# -- 4. grouping ------------------------------------------------------------------------

WEB = {"role": "web", "tier": "standard"}


def _web(w: World, host: str, status: str = "WARNING", **over: object) -> object:
    return w.one(event(host, "http", status=status, check_type="http", labels=WEB,
                       summary=f"https://{host}/health answered 503",
                       observed_at=w.clock(), **over))


def test_same_check_on_three_hosts_of_a_role_becomes_one_group(any_world: World) -> None:
    w = any_world
    for host in ["web-01", "web-02", "web-03"]:
        w.clock.advance(MINUTE)
        _web(w, host)
    [parent] = [t for t in w.store.list_tickets() if t.is_group]
    children = sorted((t for t in w.store.list_tickets() if not t.is_group),
                      key=lambda t: t.host)
    assert parent.number == f"TS{DAY}004"
    assert (parent.title, parent.hosts, parent.priority) == (
        "http failing on 3 hosts with role=web", ["web-01", "web-02", "web-03"], Priority.P2)
    assert parent.respond_by == parent.opened_at + 30 * MINUTE  # P3 base, +1 for 3 hosts
    assert w.texts(parent.number, "opened") == [
        "opened as P2: http failing on 3 hosts with role=web "
        "(warning on a standard-tier host; 3 hosts affected (+1))"]
    assert "- **Impact scope**: 3 hosts: web-01, web-02, web-03" in parent.body
    assert [(c.host, c.parent_id, c.priority) for c in children] == [
        (h, parent.id, Priority.P3) for h in ("web-01", "web-02", "web-03")]
    for child in children:
        assert w.texts(child.number, "grouped") == [
            f"part of {parent.number}: http failing on 3 hosts with role=web"]
        assert f"- **Group**: part of group ticket {parent.number}\n" in child.body

    w.clock.advance(MINUTE)
    joined = _web(w, "web-04")
    parent = w.ticket(parent.number)
    assert parent.hosts == ["web-01", "web-02", "web-03", "web-04"]
    assert w.ticket(joined.ticket).parent_id == parent.id
    assert parent.title == "http failing on 4 hosts with role=web"
    assert "- **Impact scope**: 4 hosts: web-01, web-02, web-03, web-04" in parent.body
    assert w.texts(parent.number, "grouped") == ["web-04 joined: now 4 hosts"]
    assert parent.priority is Priority.P2

    for n in range(5, 11):  # the second scope step (10 hosts) raises it again
        _web(w, f"web-{n:02d}")
    parent = w.ticket(parent.number)
    assert parent.priority is Priority.P1
    assert parent.respond_by == parent.opened_at + 15 * MINUTE
    assert w.texts(parent.number, "priority") == [
        "priority P2 -> P1 (warning on a standard-tier host; 10 hosts affected (+2))"]

    for n in range(1, 11):
        _web(w, f"web-{n:02d}", status="OK")
    w.tick(5 * MINUTE)  # members verify and resolve; the parent follows in the same pass
    parent = w.ticket(parent.number)
    assert parent.status is TicketStatus.RESOLVED
    assert parent.resolution == "all 10 member tickets resolved"
    assert all(t.status is TicketStatus.RESOLVED for t in w.store.children(parent.id))


@pytest.mark.parametrize("third", ["other-role", "outside-window"])
def test_hosts_that_do_not_share_role_and_window_do_not_group(world: World,
                                                              third: str) -> None:
    _web(world, "web-01")
    world.clock.advance(MINUTE)
    _web(world, "web-02")
    if third == "other-role":
        world.one(event("db-01", "http", status="WARNING", check_type="http",
                        labels={"role": "db"}, observed_at=world.clock()))
    else:
        world.clock.advance(11 * MINUTE)  # web-01 first failed 12 minutes ago
        _web(world, "web-03")
    assert not [t for t in world.store.list_tickets() if t.is_group]
    assert all(t.parent_id is None for t in world.store.list_tickets())


# -- 5. maintenance ---------------------------------------------------------------------


def test_maintenance_suppresses_and_tickets_what_still_fails_when_it_ends(world: World,
                                                                         ) -> None:
    w = world
    old = w.one(event("db-02")).ticket  # opened before the window
    with w.store.transaction() as tx:
        tx.add_maintenance({"name": "db upgrade", "hosts": ["db-*"],
                            "start": at(T0 + 10 * MINUTE).isoformat(),
                            "end": at(T0 + 70 * MINUTE).isoformat()})
    w.engine.invalidate_windows()

    def beats() -> None:
        for host in ("db-01", "db-02"):
            w.engine.heartbeat(heartbeat(host, [snapshot(
                "root-disk", "CRITICAL", since=T0 + 15 * MINUTE, last_run=w.clock())],
                sent_at=w.clock()))

    w.clock.advance(20 * MINUTE)
    suppressed = w.one(event("db-01"))
    assert (suppressed.outcome, suppressed.ticket) == ("suppressed", None)
    assert suppressed.note == "db-01/root-disk is in a maintenance window (db upgrade)"
    assert w.one(event("web-01")).outcome == "opened"  # the window covers db-* only
    assert w.one(event("db-02")).outcome == "repeated"  # already open before it began
    beats()
    assert w.store.list_tickets(host="db-01") == []
    w.tick()
    w.clock.advance(49 * MINUTE)
    beats()
    assert w.tick()["maintenance_ended"] == 0 and w.store.list_tickets(host="db-01") == []

    # 70.5 minutes: the window ended (and db-01's last heartbeat is not yet lost).
    assert w.tick(90)["maintenance_ended"] == 2
    [ticket] = w.store.list_tickets(host="db-01")
    assert ticket.title == ("root-disk is CRITICAL (still failing when maintenance "
                            "'db upgrade' ended)")
    assert ticket.opened_at == T0 + 70.5 * MINUTE
    assert w.kinds(ticket.number) == ["opened", "maintenance"]
    assert "maintenance" not in w.kinds(old)  # merely repeated: no "ticketed" note
    assert w.ticket(old).occurrences == 3
    w.clock.advance(30)
    beats()
    assert w.tick()["maintenance_ended"] == 0
    assert len(w.store.list_tickets(host="db-01")) == 1


# -- 6. heartbeats ----------------------------------------------------------------------


def test_heartbeat_reconciles_missed_failures_and_recoveries(any_world: World) -> None:
    w = any_world
    beat = heartbeat("db-01", [
        snapshot("root-disk", "CRITICAL", summary="/var is 96.2% full on db-01",
                 since=T0 - 2 * MINUTE, last_run=T0),
        snapshot("cpu", "OK", check_type="cpu", last_run=T0)])
    [reconciled] = w.engine.heartbeat(beat)["reconciled"]
    assert reconciled["outcome"] == "opened"
    t = w.ticket(reconciled["ticket"])
    assert (t.title, t.first_seen, t.check_status) == (
        "/var is 96.2% full on db-01", T0 - 2 * MINUTE, "CRITICAL")
    assert w.store.host("db-01")["reachable"] is True
    w.clock.advance(30)
    assert w.engine.heartbeat(heartbeat("db-01", [snapshot(
        "root-disk", "CRITICAL", since=T0 - 2 * MINUTE, last_run=w.clock())],
        sent_at=w.clock()))["reconciled"] == []
    w.clock.advance(30)
    ok = heartbeat("db-01", [snapshot("root-disk", "OK", since=w.clock() - 5,
                                      last_run=w.clock())], sent_at=w.clock())
    [recovering] = w.engine.heartbeat(ok)["reconciled"]
    assert (recovering["outcome"], recovering["ticket"]) == ("recovering", t.number)
    assert w.ticket(t.number).recovered_at == T0 + MINUTE
    assert w.engine.heartbeat(ok)["reconciled"] == []  # already recovering
    assert w.engine.counters["heartbeats"] == 4


def test_a_check_that_has_not_run_yet_is_no_recovery(any_world: World) -> None:
    """An agent that just (re)started reports every check OK, "not run yet", until its
    first run: that says nothing about the failure the ticket is about."""
    w = any_world
    number = w.one(event()).ticket
    w.clock.advance(30)
    fresh = heartbeat("db-01", [snapshot("root-disk", "OK", summary="not run yet")],
                      sent_at=w.clock())
    assert w.engine.heartbeat(fresh)["reconciled"] == []
    t = w.ticket(number)
    assert (t.recovered_at, t.state_changes, w.kinds(number)) == (None, [], ["opened"])


def _beat(w: World, checks: list | None = None) -> None:
    w.engine.heartbeat(heartbeat("db-01", checks, sent_at=w.clock()))


def test_lost_heartbeat_opens_unreachable_ticket_until_the_host_returns(world: World) -> None:
    w = world
    _beat(w)
    assert w.tick(90)["unreachable"] == 0  # exactly 3 intervals: not yet
    assert w.tick(1)["unreachable"] == 1
    [t] = w.store.list_tickets(check="heartbeat")
    assert t.title == "db-01 is unreachable: no heartbeat for 2m (expected every 30s)"
    assert (t.host, t.category, t.status) == ("db-01", "network", TicketStatus.NEW)
    assert w.store.host("db-01")["reachable"] is False
    assert w.tick(5 * MINUTE)["unreachable"] == 0  # already known
    assert w.ticket(t.number).occurrences == 1
    _beat(w)
    t = w.ticket(t.number)
    assert t.recovered_at == w.clock() and w.store.host("db-01")["reachable"] is True
    assert w.kinds(t.number)[-1] == "recovering"
    for _ in range(10):
        w.tick(30)
        _beat(w)
    t = w.ticket(t.number)
    assert t.status is TicketStatus.RESOLVED
    assert t.resolution == "verified: the check stayed OK for 5m"


def test_check_whose_last_run_stops_advancing_gets_a_stale_ticket(world: World) -> None:
    w = world
    frozen = [snapshot("root-disk", "OK", last_run=T0, interval=60)]
    _beat(w, frozen)
    for _ in range(6):
        w.clock.advance(30)
        _beat(w, frozen)
        assert w.watchdog.run_once()["stale"] == 0  # up to 3 intervals of 60 s
    w.clock.advance(30)
    _beat(w, frozen)
    assert w.watchdog.run_once()["stale"] == 1
    [t] = w.store.list_tickets()
    assert (t.check, t.severity, t.priority) == ("stale:root-disk", "warning", Priority.P3)
    assert t.title == "root-disk on db-01 stopped reporting: last result 4m ago"
    w.tick(30)
    assert w.ticket(t.number).occurrences == 1  # the same silence is not a repeat
    _beat(w, [snapshot("root-disk", "OK", last_run=w.clock(), interval=60)])
    w.watchdog.run_once()
    assert w.ticket(t.number).recovered_at == w.clock()


def test_a_fast_check_is_not_stale_between_heartbeats(world: World) -> None:
    """Results travel with heartbeats: a check run every 2 s is fresh as long as the
    30-second heartbeats keep coming."""
    w = world
    for _ in range(10):
        _beat(w, [snapshot("load", "OK", check_type="load", last_run=w.clock() - 1,
                           interval=2)])
        w.clock.advance(30)
        assert w.watchdog.run_once()["stale"] == 0
    assert w.store.list_tickets() == []


def test_forced_resolve_is_not_undone_by_the_next_heartbeat(world: World) -> None:
    w = world
    failing = [snapshot("root-disk", "CRITICAL", since=T0, last_run=T0)]
    number = w.one(event()).ticket
    act(w.engine, number, "resolve", "alice", "won't fix: disk replaced Friday", force=True)
    w.clock.advance(30)
    _beat(w, failing)
    assert w.ticket(number).status is TicketStatus.RESOLVED
    w.clock.advance(30)  # it recovers, then fails again: a new failure reopens it
    _beat(w, [snapshot("root-disk", "OK", since=w.clock(), last_run=w.clock())])
    w.clock.advance(30)
    _beat(w, [snapshot("root-disk", "CRITICAL", since=w.clock(), last_run=w.clock())])
    assert w.ticket(number).status is TicketStatus.IN_PROGRESS
    assert w.kinds(number) == ["opened", "resolved", "reopened"]


# -- 7. SLA watchdog --------------------------------------------------------------------


def test_sla_escalations_are_commented_once_each(world: World) -> None:
    w = world
    number = w.one(event(labels={"tier": "critical"})).ticket  # P1: 15 min / 4 h
    assert w.tick(12 * MINUTE - 1)["escalations"] == 0
    assert w.tick(1)["escalations"] == 1
    assert w.ticket(number).escalation == 1
    assert w.tick(MINUTE)["escalations"] == 0
    assert w.tick(2 * MINUTE)["escalations"] == 1  # 15 minutes: passed
    assert w.tick(MINUTE)["escalations"] == 0
    assert w.texts(number, "escalation") == [
        "respond-by 2023-10-27T09:15:00Z is near (3m left); not acknowledged yet",
        "respond-by 2023-10-27T09:15:00Z passed 0s ago; not acknowledged yet"]
    assert w.ticket(number).escalation == 2


def test_acknowledging_stops_respond_escalations(world: World) -> None:
    w = world
    number = w.one(event(labels={"tier": "critical"})).ticket
    w.clock.advance(5 * MINUTE)
    acked = act(w.engine, number, "acknowledge", "alice")
    assert (acked.status, acked.acknowledged_at) == (TicketStatus.IN_PROGRESS, T0 + 300)
    assert w.tick(20 * MINUTE)["escalations"] == 0
    w.tick(3 * HOUR - 25 * MINUTE + 12 * MINUTE)  # 3h12m: 80 % of 4 h
    assert w.texts(number, "escalation") == [
        "resolve-by 2023-10-27T13:00:00Z is near (48m left); still open"]


# -- 10. concurrency --------------------------------------------------------------------


@pytest.mark.slow
def test_concurrent_repeats_of_one_incident_make_one_ticket(any_world: World) -> None:
    w = any_world
    first = w.one(event())
    assert first.outcome == "opened"
    events = [event() for _ in range(100)]
    barrier = threading.Barrier(len(events))

    def post(ev: object) -> object:
        barrier.wait()
        return w.engine.ingest([ev])[0]  # type: ignore[list-item]

    with ThreadPoolExecutor(len(events)) as pool:
        outcomes = list(pool.map(post, events))
    assert [o.outcome for o in outcomes] == ["repeated"] * 100
    assert {o.ticket for o in outcomes} == {first.ticket}
    [t] = w.store.list_tickets()
    assert t.occurrences == 101 and w.kinds(t.number) == ["opened"]


@pytest.mark.slow
def test_concurrent_first_events_open_exactly_one_ticket(any_world: World) -> None:
    w = any_world
    events = [event() for _ in range(30)]
    barrier = threading.Barrier(len(events))

    def post(ev: object) -> str:
        barrier.wait()
        return w.engine.ingest([ev])[0].outcome  # type: ignore[list-item]

    with ThreadPoolExecutor(len(events)) as pool:
        outcomes = sorted(pool.map(post, events))
    assert outcomes == ["opened"] + ["repeated"] * 29
    [t] = w.store.list_tickets()
    assert t.occurrences == 30



def test_old_events_are_pruned_after_the_retention_and_tickets_stay(world: World) -> None:
    """Received events are kept for idempotency, then deleted: the store does not grow
    with every event's diagnostics forever. Tickets and timelines are kept."""
    w = world
    DAY = 86400
    first = event()
    w.one(first)
    w.tick(1)  # the first pass prunes (nothing old yet)
    w.clock.advance(29 * DAY)
    assert w.one(first).outcome == "duplicate"  # a late retry is still recognised
    w.clock.advance(2 * DAY)
    assert w.tick(0)["pruned"] == 1
    assert w.store.list_tickets()[0].occurrences == 1
    assert w.tick(60)["pruned"] == 0  # hourly, not every pass
