"""The TicketStore contract, one suite run against every backend.

``sqlite`` uses a file in tmp_path; ``postgres`` a database created once for the test
session on 127.0.0.1:5432 (skipped locally, failed in CI when PostgreSQL is missing)
with a fresh schema per test.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from patrol.collector.model import Priority, Ticket, TicketStatus, TimelineEntry
from patrol.collector.store import (
    ConcurrentUpdate,
    ConstraintViolation,
    DuplicateTicket,
    StoreError,
    TicketStore,
    open_store,
)
from patrol.collector.store.migrations import LATEST

T0 = datetime(2023, 10, 27, 9, 0, tzinfo=UTC).timestamp()


def ticket(key: str = "db-01/root-disk", opened_at: float = T0, **over: object) -> Ticket:
    host, _, check = key.partition("/")
    fields: dict[str, object] = dict(
        dedup_key=key, title=f"{check} failing on {host}", host=host, check=check,
        check_type="disk", severity="critical", priority=Priority.P2, status=TicketStatus.NEW,
        category="capacity", opened_at=opened_at, first_seen=opened_at, last_seen=opened_at,
        respond_by=opened_at + 1800, resolve_by=opened_at + 86400)
    fields.update(over)
    return Ticket(**fields)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/patrol.db"
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture
def store(store_url: str) -> Iterator[TicketStore]:
    s = open_store(store_url)
    yield s
    s.close()


def create(store: TicketStore, *tickets: Ticket) -> list[Ticket]:
    with store.transaction() as tx:
        return [tx.create_ticket(t) for t in tickets]


def test_every_ticket_field_round_trips(store: TicketStore) -> None:
    group, previous = create(store, ticket("web/cpu", is_group=True, hosts=["web-01"]),
                             ticket("db-01/var-disk", status=TicketStatus.CLOSED))
    full = ticket(
        "db-01/var-disk", title="/var is 93.4% full on db-01 (critical at 95%) — ünïcode",
        check_type="disk", severity="error", priority=Priority.P1,
        status=TicketStatus.PENDING, category="storage", opened_at=T0 + 0.25,
        first_seen=T0 - 60.5, last_seen=T0 + 30.125, respond_by=T0 + 900.5,
        resolve_by=T0 + 14400.75, labels={"tier": "gold", "env": "prod"},
        check_status="WARNING", occurrences=7, state_changes=[T0, T0 + 1.5], flapping=True,
        recovered_at=T0 + 40.0, acknowledged_at=T0 + 41.0, resolved_at=T0 + 42.0,
        closed_at=T0 + 43.0, resolution="cleaned /var/log", parent_id=group.id,
        is_group=True, hosts=["db-01", "db-02"], previous_id=previous.id, escalation=2,
        runbook="https://wiki/var-disk",
        measurements=[{"name": "used_ratio", "value": 0.934, "item": "/var"}],
        diagnostics={"largest": [["/var/log", 123456789]], "note": None, "ok": False},
        body="## Symptom\n/var is full")
    required = {f.name for f in dataclasses.fields(Ticket)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    defaults = Ticket(**{name: getattr(full, name) for name in required})
    unset = [f.name for f in dataclasses.fields(Ticket)
             if f.name not in required | {"number", "id", "version"}
             and getattr(full, f.name) == getattr(defaults, f.name)]
    assert unset == [], "the round trip must cover every field with a non-default value"

    (created,) = create(store, full)
    assert (created.id, created.version) == (full.id, 1) and created.id is not None
    assert store.get_ticket(created.number) == created
    assert store.get_ticket_by_id(created.id) == created
    assert store.get_ticket("TS19700101999") is None and store.get_ticket_by_id(9999) is None


def test_update_writes_every_field_and_bumps_version(store: TicketStore) -> None:
    (t,) = create(store, ticket())
    with store.transaction() as tx:
        t.status, t.closed_at, t.resolution = TicketStatus.CLOSED, T0 + 99, "fixed"
        t.hosts, t.diagnostics, t.priority = ["a"], {"x": [1, 2]}, Priority.P4
        assert tx.update_ticket(t) is t
    assert t.version == 2
    assert store.get_ticket(t.number) == t


@pytest.mark.parametrize(("opened", "expected"), [
    ([T0, T0 + 1, T0 + 2], ["TS20231027001", "TS20231027002", "TS20231027003"]),
    ([datetime(2023, 10, 27, 23, 59, 59, 500000, tzinfo=UTC).timestamp(),
      datetime(2023, 10, 28, 0, 0, tzinfo=UTC).timestamp(), T0, T0 + 86400],
     ["TS20231027001", "TS20231028001", "TS20231027002", "TS20231028002"]),
], ids=["same-day", "utc-midnight-restarts-serial"])
def test_numbers_count_per_utc_day(store: TicketStore, opened: list[float],
                                   expected: list[str]) -> None:
    made = create(store, *(ticket(f"h{i}/c", opened_at=at) for i, at in enumerate(opened)))
    assert [t.number for t in made] == expected


@pytest.mark.slow
def test_serial_past_999_grows_to_four_digits(store: TicketStore) -> None:
    made = create(store, *(ticket(f"h{i}/c") for i in range(1000)))
    assert [t.number for t in made[-2:]] == ["TS20231027999", "TS202310271000"]


def test_one_active_ticket_per_key_and_a_new_one_after_close(store: TicketStore) -> None:
    with store.transaction() as tx:
        first = tx.create_ticket(ticket())
        with pytest.raises(DuplicateTicket, match="'db-01/root-disk' already has an active"):
            tx.create_ticket(ticket())
        # The transaction stays usable and the refused ticket consumed no serial.
        other = tx.create_ticket(ticket("db-02/root-disk"))
        group = tx.create_ticket(ticket(is_group=True))  # a group may share the key
    assert (first.number, other.number, group.number) == (
        "TS20231027001", "TS20231027002", "TS20231027003")
    with store.transaction() as tx:
        assert tx.active_ticket("db-01/root-disk") == first
        assert tx.open_group("db-01/root-disk") == group
        first.status = TicketStatus.CLOSED
        tx.update_ticket(first)
        again = tx.create_ticket(ticket(opened_at=T0 + 60))
        assert tx.active_ticket("db-01/root-disk") == again
        assert tx.latest_ticket("db-01/root-disk") == again
    with store.transaction() as tx:
        assert tx.active_ticket("nobody/none") is None and tx.open_group("db-02/x") is None
        again.status = TicketStatus.CLOSED
        tx.update_ticket(again)
        assert tx.active_ticket("db-01/root-disk") is None
        assert tx.latest_ticket("db-01/root-disk") == again  # closed ones count


def test_stale_version_raises_concurrent_update(store: TicketStore) -> None:
    (t,) = create(store, ticket())
    stale = dataclasses.replace(t)
    with store.transaction() as tx:
        t.title = "first writer"
        tx.update_ticket(t)
    changed = f"ticket {t.number} changed since it was read"
    with pytest.raises(ConcurrentUpdate, match=changed), store.transaction() as tx:
        stale.title = "second writer"
        tx.update_ticket(stale)
    assert store.get_ticket(t.number).title == "first writer"  # type: ignore[union-attr]


def test_record_event_is_idempotent_and_rolled_back_with_its_unit(store: TicketStore) -> None:
    with store.transaction() as tx:
        assert tx.record_event("ev-00000001", "h/c", T0, {"summary": "x"}) is True
        assert tx.record_event("ev-00000001", "h/c", T0, {"summary": "x"}) is False
    with store.transaction() as tx:
        assert tx.record_event("ev-00000001", "h/c", T0 + 5, {}) is False
    with pytest.raises(RuntimeError), store.transaction() as tx:
        assert tx.record_event("ev-00000002", "h/c", T0, {}) is True
        tx.create_ticket(ticket())
        raise RuntimeError("crash mid-unit")
    assert store.list_tickets() == []
    with store.transaction() as tx:  # the retry of the failed unit is not a duplicate
        assert tx.record_event("ev-00000002", "h/c", T0, {}) is True
        assert tx.create_ticket(ticket()).number == "TS20231027001"
        assert tx.prune_events(T0 + 1) == 2


def test_timeline_in_time_order(store: TicketStore) -> None:
    a, b = create(store, ticket("h/a"), ticket("h/b"))
    with store.transaction() as tx:
        late = tx.add_timeline(a.id, TimelineEntry(T0 + 2, "comment", "late", "alice"))
        early1 = tx.add_timeline(a.id, TimelineEntry(T0 + 1, "opened", "one", data={"p": "P2"}))
        early2 = tx.add_timeline(a.id, TimelineEntry(T0 + 1, "severity", "two"))
        tx.add_timeline(b.id, TimelineEntry(T0, "opened", "other ticket"))
    assert early1.ticket_id == a.id and early1.id is not None
    assert store.timeline(a.id) == [early1, early2, late]


def test_timeline_for_a_missing_ticket_is_refused(store: TicketStore) -> None:
    with pytest.raises(ConstraintViolation) as caught, store.transaction() as tx:
        tx.add_timeline(424242, TimelineEntry(T0, "comment", "orphan"))
    assert caught.value.__cause__ is not None  # the driver's error, chained


@pytest.fixture
def five(store: TicketStore) -> dict[str, Ticket]:
    made = create(
        store,
        ticket("db-01/root-disk", T0, title="A", respond_by=T0 + 1800),
        ticket("db-01/cpu", T0 + 1, title="B", priority=Priority.P1,
               status=TicketStatus.IN_PROGRESS, respond_by=T0 + 900),
        ticket("web-01/root-disk", T0 + 3, title="C", priority=Priority.P3,
               status=TicketStatus.RESOLVED),
        ticket("web-02/cpu", T0 + 2, title="D", priority=Priority.P1, respond_by=T0 + 600),
        ticket("web-01/cpu", T0 + 4, title="E", priority=Priority.P4,
               status=TicketStatus.CLOSED))
    return {t.title: t for t in made}


@pytest.mark.parametrize(("filters", "expected"), [
    ({}, "DBAEC"),
    ({"status": ["new"]}, "DA"),
    ({"status": ["resolved", "closed"]}, "EC"),
    ({"status": []}, ""),
    ({"priority": ["P1"]}, "DB"),
    ({"host": "db-01"}, "BA"),
    ({"check": "root-disk"}, "AC"),
    ({"host": "web-01", "check": "cpu"}, "E"),
    ({"limit": 2, "offset": 1}, "BA"),
], ids=["all-open-first-by-priority-then-respond-by", "status", "closed-newest-first",
        "no-status", "priority", "host", "check", "host-and-check", "page"])
def test_list_tickets(store: TicketStore, five: dict[str, Ticket], filters: dict[str, object],
                      expected: str) -> None:
    assert "".join(t.title for t in store.list_tickets(**filters)) == expected  # type: ignore[arg-type]


def test_open_tickets_counts_and_children(store: TicketStore, five: dict[str, Ticket]) -> None:
    assert [t.title for t in store.open_tickets()] == ["A", "B", "D", "C"]
    assert store.count_open() == 4
    assert store.stats() == {"status": {"new": 2, "in_progress": 1, "resolved": 1, "closed": 1},
                             "priority": {"P1": 2, "P2": 1}}
    (group,) = create(store, ticket("group/cpu", T0 + 9, title="G", is_group=True))
    with store.transaction() as tx:
        for title in "DB":
            five[title].parent_id = group.id
            tx.update_ticket(five[title])
    assert [t.title for t in store.children(group.id)] == ["B", "D"]  # type: ignore[arg-type]


def test_past_tickets_are_resolved_or_closed_of_the_check_newest_first(
        store: TicketStore) -> None:
    closed, resolved = TicketStatus.CLOSED, TicketStatus.RESOLVED
    create(store,
           ticket("db-01/root-disk", T0, title="old", status=closed),
           ticket("db-01/root-disk", T0 + 10, title="mid", status=closed),
           ticket("db-01/root-disk", T0 + 20, title="recent", status=closed),
           ticket("db-03/root-disk", T0 + 18, title="resolved", status=resolved),
           ticket("db-01/root-disk", T0 + 30, title="open"),
           ticket("db-02/root-disk", T0 + 15, title="other host", status=closed),
           ticket("db-01/cpu", T0 + 25, title="other check", status=closed),
           ticket("db-01/root-disk", T0 + 5, title="group", status=closed, is_group=True))

    def titles(host: str | None, limit: int = 5) -> list[str]:
        return [t.title for t in store.past_tickets(host, "root-disk", limit)]

    assert titles("db-01") == ["recent", "mid", "old"]
    assert titles("db-01", limit=2) == ["recent", "mid"]
    assert titles(None) == ["recent", "resolved", "other host", "mid", "old"]


def test_hosts_and_check_states(store: TicketStore) -> None:
    with store.transaction() as tx:
        tx.upsert_host("db-01", "agent-a", "0.1.0", {"tier": "gold"}, T0, 30.0)
        tx.upsert_host("app-01", "agent-b", "0.1.0", {}, T0, 60.0)
        tx.set_host_reachable("db-01", False)
        tx.set_host_reachable("never-seen", False)
        tx.set_check_states("db-01", [
            {"check": "root-disk", "type": "disk", "status": "OK", "summary": "ok",
             "since": T0 - 10, "last_run": T0},
            {"check": "cpu", "type": "cpu", "status": "WARNING", "summary": "busy",
             "since": None, "last_run": None}])
        tx.set_check_states("app-01", [{"check": "cpu", "type": "cpu", "status": "OK",
                                        "summary": "", "since": T0, "last_run": T0}])
    with store.transaction() as tx:  # a later heartbeat keeps reachable as the engine set it
        tx.upsert_host("db-01", "agent-a2", "0.2.0", {"tier": "silver"}, T0 + 30, 15.0,
                       "Europe/Berlin", "db-01:9731")
        tx.set_check_states("db-01", [{"check": "cpu", "type": "cpu", "status": "CRITICAL",
                                       "interval": 30.0, "next_due": T0 + 65,
                                       "timeout": 10.0, "summary": "pegged", "since": T0 + 30,
                                       "last_run": T0 + 30}])
        assert tx.host("db-01")["reachable"] is False  # type: ignore[index]
    db01 = {"host": "db-01", "agent_id": "agent-a2", "version": "0.2.0",
            "labels": {"tier": "silver"}, "last_heartbeat": T0 + 30, "interval": 15.0,
            "reachable": False, "timezone": "Europe/Berlin", "metrics_address": "db-01:9731"}
    assert store.hosts() == [
        {"host": "app-01", "agent_id": "agent-b", "version": "0.1.0", "labels": {},
         "last_heartbeat": T0, "interval": 60.0, "reachable": True, "timezone": None,
         "metrics_address": None},
        db01]
    assert store.host("db-01") == db01 and store.host("never-seen") is None
    assert store.check_states() == [
        {"host": "app-01", "check": "cpu", "type": "cpu", "status": "OK", "summary": "",
         "since": T0, "last_run": T0, "interval": None, "next_due": None, "timeout": None},
        {"host": "db-01", "check": "cpu", "type": "cpu", "status": "CRITICAL",
         "summary": "pegged", "since": T0 + 30, "last_run": T0 + 30, "interval": 30.0,
         "next_due": T0 + 65, "timeout": 10.0}]
    assert [s["host"] for s in store.check_states("db-01")] == ["db-01"]


def test_maintenance_windows_crud(store: TicketStore) -> None:
    nightly = {"hosts": ["db-*"], "cron": "0 2 * * *", "duration": 3600.0, "reason": "backup"}
    with store.transaction() as tx:
        first = tx.add_maintenance(nightly)
        second = tx.add_maintenance({"id": 77, "checks": ["cpu"], "start": T0, "end": T0 + 60})
    assert store.maintenance_windows() == [
        {**nightly, "id": first}, {"checks": ["cpu"], "start": T0, "end": T0 + 60, "id": second}]
    with store.transaction() as tx:
        assert tx.delete_maintenance(first) is True
        assert tx.delete_maintenance(first) is False
        assert [w["id"] for w in tx.maintenance_windows()] == [second]


def test_reopening_migrates_nothing_and_keeps_data(store: TicketStore, store_url: str) -> None:
    (t,) = create(store, ticket())
    again = open_store(store_url)
    try:
        assert again.migrate() == [] and again.schema_version() == LATEST
        assert again.get_ticket(t.number) == t
    finally:
        again.close()


def test_misuse_of_transactions_is_an_error_not_a_hang(store: TicketStore) -> None:
    with (store.transaction() as tx, pytest.raises(StoreError, match="already open"),
          store.transaction()):
        pass
    with pytest.raises(StoreError, match="transaction has ended"):
        tx.create_ticket(ticket())


def _hammer(store: TicketStore, threads: int, work: Callable[[], None]) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def worker() -> None:
        start.wait()
        try:
            work()
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
    return errors


@pytest.mark.slow
def test_100_concurrent_updates_lose_nothing(store: TicketStore) -> None:
    (t,) = create(store, ticket())

    def bump() -> None:
        with store.transaction() as tx:
            current = tx.active_ticket(t.dedup_key)
            assert current is not None
            current.occurrences += 1
            tx.update_ticket(current)

    assert _hammer(store, 100, bump) == []
    final = store.get_ticket(t.number)
    assert final is not None and (final.occurrences, final.version) == (101, 101)


@pytest.mark.slow
def test_concurrent_first_events_open_one_ticket(store: TicketStore) -> None:
    def first_or_repeat() -> None:
        with store.transaction() as tx:
            current = tx.active_ticket("db-01/root-disk")
            if current is None:
                tx.create_ticket(ticket())
            else:
                current.occurrences += 1
                tx.update_ticket(current)

    assert _hammer(store, 20, first_or_repeat) == []
    (only,) = store.list_tickets()
    assert (only.number, only.occurrences) == ("TS20231027001", 20)


# -- text and numbers PostgreSQL cannot hold: cleaned the same way on both stores ------

NUL, SURROGATE, FFFD = "\x00", "\ud800", "\ufffd"


def test_nul_surrogates_and_non_finite_numbers_are_cleaned_alike(store: TicketStore) -> None:
    """A Nagios plugin's output may carry a NUL byte, an undecodable byte (a lone
    surrogate once decoded with surrogateescape) or NaN: PostgreSQL's text and jsonb
    refuse all three, SQLite takes them. Both stores keep U+FFFD for the bad
    character and JSON null for the number, so every page reads the same."""
    dirty = ticket(
        title=f"load{NUL} high{SURROGATE}", labels={f"te{NUL}am": f"db{SURROGATE}a"},
        measurements=[{"name": "load1", "value": float("nan"), "item": f"c{NUL}"}],
        diagnostics={"check": {"output": f"ERR{NUL}", "ratio": float("inf"),
                               "series": [1.0, float("-inf")]}},
        body=f"## Problem{NUL}\n", runbook=f"https://wiki/{SURROGATE}")
    with store.transaction() as tx:
        created = tx.create_ticket(dirty)
        tx.add_timeline(created.id, TimelineEntry(at=T0, kind="comment", text=f"a{NUL}b",
                                                   author=f"op{SURROGATE}",
                                                   data={"x": float("nan")}))
        assert tx.record_event(f"evt-{NUL}-0001", "db-01/load", T0,
                               {"summary": f"x{NUL}", "value": float("nan")})
        tx.upsert_host(f"db{NUL}01", "agent", "0.1.0", {"tier": f"g{SURROGATE}"}, T0, 30.0)
        tx.set_check_states(f"db{NUL}01", [
            {"check": "load", "type": "load", "status": "CRITICAL", "summary": f"hi{NUL}",
             "since": T0, "last_run": T0, "interval": float("nan")}])
        window = tx.add_maintenance({"reason": f"patch{NUL}", "ratio": float("nan")})
    stored = store.get_ticket(created.number)
    assert stored is not None
    assert (stored.title, stored.labels, stored.body, stored.runbook) == (
        f"load{FFFD} high{FFFD}", {f"te{FFFD}am": f"db{FFFD}a"}, f"## Problem{FFFD}\n",
        f"https://wiki/{FFFD}")
    assert stored.measurements == [{"name": "load1", "value": None, "item": f"c{FFFD}"}]
    assert stored.diagnostics == {"check": {"output": f"ERR{FFFD}", "ratio": None,
                                            "series": [1.0, None]}}
    [entry] = store.timeline(created.id)
    assert (entry.text, entry.author, entry.data) == (f"a{FFFD}b", f"op{FFFD}", {"x": None})
    assert store.host(f"db{NUL}01") == store.host(f"db{FFFD}01")  # a read is cleaned too
    assert store.host(f"db{FFFD}01")["labels"] == {"tier": f"g{FFFD}"}  # type: ignore[index]
    [state] = store.check_states(f"db{FFFD}01")
    assert (state["summary"], state["interval"]) == (f"hi{FFFD}", None)
    assert store.maintenance_windows() == [{"reason": f"patch{FFFD}", "ratio": None,
                                            "id": window}]
    with store.transaction() as tx:  # the cleaned event_id is the one remembered
        assert not tx.record_event(f"evt-{FFFD}-0001", "db-01/load", T0, {})


def test_clean_text_survives_an_update(store: TicketStore) -> None:
    [created] = create(store, ticket())
    with store.transaction() as tx:
        current = tx.get_ticket(created.number)
        assert current is not None
        current.title, current.resolution = f"now{NUL}", f"fixed{SURROGATE}"
        tx.update_ticket(current)
    stored = store.get_ticket(created.number)
    assert stored is not None and (stored.title, stored.resolution) == (
        f"now{FFFD}", f"fixed{FFFD}")


def test_a_new_key_read_first_then_created_gets_the_next_number(store: TicketStore) -> None:
    """The engine's path for a new incident: read the key (nothing), then create. The
    number continues the day's serial, past 999 too; a second create of the same key
    in the same unit of work is still refused and consumes no serial."""
    with store.transaction() as tx:
        tx._run("INSERT INTO ticket_serials (day, last_serial)"  # type: ignore[attr-defined]
                " VALUES (?, 998)", ("20231027",))
    numbers = []
    for n in range(3):
        key = f"db-{n:02d}/root-disk"
        with store.transaction() as tx:
            assert tx.record_event(f"evt-new-key-{n}", key, T0, {})
            assert tx.latest_ticket(key) is None
            numbers.append(tx.create_ticket(ticket(key)).number)
            with pytest.raises(DuplicateTicket):
                tx.create_ticket(ticket(key))
            assert tx.active_ticket(key).number == numbers[-1]  # type: ignore[union-attr]
    assert numbers == ["TS20231027999", "TS202310271000", "TS202310271001"]
    assert sorted(t.number for t in store.list_tickets()) == sorted(numbers)


def test_a_new_tickets_timeline_reads_the_same_inside_its_unit_of_work(
        store: TicketStore) -> None:
    """Inside the unit of work that opened it, a ticket's timeline is what a read after
    commit returns: entries in time order, text cleaned, data as stored."""
    with store.transaction() as tx:
        [opened] = [tx.create_ticket(ticket())]
        tx.add_timeline(opened.id, TimelineEntry(at=T0 + 5, kind="grouped", text="later"))
        tx.add_timeline(opened.id, TimelineEntry(at=T0, kind="opened", text=f"x{NUL}",
                                                 data={"n": float("nan"), "p": "P2"}))
        inside = tx.timeline(opened.id)
        inside[0].data["p"] = "changed by a caller"  # a copy: the next read is unchanged
        again = tx.timeline(opened.id)
    after = store.timeline(opened.id)
    assert again == after
    assert [(e.kind, e.text, e.data) for e in after] == [
        ("opened", f"x{FFFD}", {"n": None, "p": "P2"}), ("grouped", "later", {})]


def test_a_unit_of_work_that_starts_with_a_create_is_still_one_unit(store: TicketStore) -> None:
    """Rolled back as a whole even when creating a ticket is the first thing it does."""
    with pytest.raises(RuntimeError), store.transaction() as tx:
        created = tx.create_ticket(ticket())
        tx.add_timeline(created.id, TimelineEntry(at=T0, kind="opened", text="x"))
        raise RuntimeError("the engine failed half way")
    assert store.list_tickets() == [] and store.count_open() == 0
