"""The ticket list (API, web page, CLI) reads the index of its own order (migration 10)
instead of sorting every ticket: at 100,000 open tickets a sort cost 0.3-1 s per page
on SQLite, and 0.8-2.5 s on PostgreSQL whenever the planner misjudged a status filter
(no statistics yet after a bulk load: ``status = 'new'`` taken for 0.5 % of the rows).

SQLite has no statistics here, so the plan is fixed by the query's shape: assert it for
the default list and for the status filters people use. PostgreSQL plans by its
statistics, which the watchdog refreshes (``refresh_statistics``): assert the plan once
they are taken. Whatever the plan, a page is chosen on ids and only its own rows are
read whole and sorted, and the list's rows, order and count stay the same: asserted on
both stores, on PostgreSQL before and after its statistics exist.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from patrol.collector.model import Priority, Ticket, TicketStatus
from patrol.collector.store import TicketStore, open_store
from tests.collector_fixtures import World
from tests.test_store_contract import T0, ticket

OPEN = ("new", "in_progress", "pending")


@pytest.mark.parametrize("status", [None, ["new"], ["new", "in_progress", "pending"],
                                    ["closed"], ["resolved", "new"]],
                         ids=["default", "new", "open", "closed", "mixed"])
def test_the_list_reads_its_index_in_order_on_sqlite(tmp_path: object, status: list[str] | None,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(f"sqlite:///{tmp_path}/patrol.db")
    plans: list[tuple[int, int, str]] = []
    rows = store._rows

    def explained(sql: str, params: object = ()) -> object:
        plans.extend((row["id"], row["parent"], row["detail"])
                     for row in rows("EXPLAIN QUERY PLAN " + sql, params))
        return rows(sql, params)

    monkeypatch.setattr(store, "_rows", explained)
    try:
        store.list_tickets(status=status, limit=100, offset=5000)
    finally:
        store.close()
    (subquery,) = [at for at, _, detail in plans if detail.startswith("LIST SUBQUERY")]
    # The page's ids: the index read in order, nothing sorted.
    assert [detail for _, parent, detail in plans if parent == subquery] == \
        ["SCAN tickets USING INDEX tickets_list_order"]
    # Then only the page's own rows, by id, put back in order.
    assert [detail for _, parent, detail in plans if parent == 0] == \
        ["SEARCH tickets USING INTEGER PRIMARY KEY (rowid=?)", "LIST SUBQUERY 1",
         "USE TEMP B-TREE FOR ORDER BY"]


@pytest.fixture
def pg_store(pg_schema_url: str) -> Iterator[TicketStore]:
    store = open_store(pg_schema_url)
    yield store
    store.close()


def bulk(store: TicketStore, tickets: list[Ticket]) -> None:
    with store.transaction() as tx:
        for t in tickets:
            tx.create_ticket(t)


def last_analyzed(store: TicketStore, manual: bool = False) -> object:
    """When the tickets table's statistics were last taken (by autovacuum too, unless
    ``manual``), or None."""
    column = "last_analyze" if manual else "GREATEST(last_analyze, last_autoanalyze)"
    (row,) = store._rows(  # type: ignore[attr-defined]
        f"SELECT {column} AS at FROM pg_stat_user_tables WHERE relid = 'tickets'::regclass")
    return row["at"]


def analyzed(store: TicketStore) -> None:
    """The watchdog's statistics duty, until it has run (PostgreSQL counts changed rows
    a moment after their commit), or autovacuum did it first where it runs."""
    deadline = time.monotonic() + 30
    while not store.refresh_statistics() and last_analyzed(store) is None:
        assert time.monotonic() < deadline, "the bulk load was never seen as a change"
        time.sleep(0.2)


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from plan_nodes(child)


@pytest.mark.parametrize("status", [None, ["new"], list(OPEN)], ids=["default", "new", "open"])
def test_the_list_reads_its_index_in_order_on_postgres(
        pg_store: TicketStore, status: list[str] | None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    bulk(pg_store, [ticket(f"h{i // 10}/c{i % 10}", opened_at=T0 + i) for i in range(3000)]
         + [ticket(f"old{i}/c", status=TicketStatus.CLOSED) for i in range(100)])
    analyzed(pg_store)
    assert pg_store.refresh_statistics() is False  # once is enough until rows change again
    plans: list[dict[str, Any]] = []
    rows = pg_store._rows  # type: ignore[attr-defined]

    def explained(sql: str, params: object = ()) -> object:
        (row,) = rows("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        found = row["QUERY PLAN"]
        plans.append((json.loads(found) if isinstance(found, str) else found)[0]["Plan"])
        return rows(sql, params)

    monkeypatch.setattr(pg_store, "_rows", explained)
    page = pg_store.list_tickets(status=status, limit=100, offset=1000)
    assert len(page) == 100
    (plan,) = plans
    nodes = list(plan_nodes(plan))
    assert any(n.get("Index Name") == "tickets_list_order" for n in nodes), plan
    # Sorted, if at all, is the page's own rows, never every match.
    assert all(n["Actual Rows"] <= 100 for n in nodes if n["Node Type"] == "Sort"), plan


def order_key(t: Ticket) -> tuple[Any, ...]:
    """The list's order as documented (TicketReads.list_tickets), in Python."""
    is_open = t.status.value in OPEN
    return (0 if is_open else 1, t.priority.value if is_open else "",
            t.respond_by if is_open else 0.0, -t.opened_at, -t.stored_id)


def varied() -> list[Ticket]:
    """Every status and priority, a few hosts and checks, ties on opened_at and
    respond_by, so order and filters both have something to get wrong."""
    statuses, priorities = list(TicketStatus), list(Priority)
    return [ticket(f"host{i % 4}/check{i % 3}-{i}", opened_at=T0 + (i // 3),
                   check=f"check{i % 3}", status=statuses[i % len(statuses)],
                   priority=priorities[(i // 2) % len(priorities)],
                   respond_by=T0 + 600 * (i % 5)) for i in range(150)]


FILTERS: list[dict[str, Any]] = [
    {}, {"status": ["new"]}, {"status": list(OPEN)}, {"status": ["closed"]},
    {"status": ["resolved", "new"]}, {"status": []}, {"priority": ["P1", "P3"]},
    {"host": "host2"}, {"check": "check1", "status": list(OPEN)},
    {"host": "host1", "priority": ["P2"], "status": ["new", "pending"]}]


def assert_lists_like_the_reference(store: TicketStore) -> None:
    everything = store.list_tickets(limit=1000)
    for wanted in FILTERS:
        def keep(t: Ticket, wanted: dict[str, Any] = wanted) -> bool:
            return (t.status.value in wanted.get("status", [t.status.value])
                    and t.priority.value in wanted.get("priority", [t.priority.value])
                    and t.host == wanted.get("host", t.host)
                    and t.check == wanted.get("check", t.check))

        expected = [t.number for t in sorted(filter(keep, everything), key=order_key)]
        whole = [t.number for t in store.list_tickets(**wanted, limit=1000)]
        paged: list[str] = []
        for offset in range(0, len(expected) + 7, 7):
            paged += [t.number for t in store.list_tickets(**wanted, limit=7, offset=offset)]
        assert whole == expected, wanted
        assert paged == expected, wanted  # pages neither skip nor repeat a ticket
    assert [t.number for t in everything] == [t.number for t in sorted(everything,
                                                                        key=order_key)]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_filtered_pages_keep_the_rows_order_and_count(
        backend: str, tmp_path: object, request: pytest.FixtureRequest) -> None:
    url = f"sqlite:///{tmp_path}/patrol.db" if backend == "sqlite" else \
        request.getfixturevalue("pg_schema_url")
    store = open_store(url)
    try:
        bulk(store, varied())
        assert len(store.list_tickets(limit=1000)) == 150
        assert_lists_like_the_reference(store)
        if backend == "postgres":  # again with the plans statistics lead to
            analyzed(store)
            assert_lists_like_the_reference(store)
    finally:
        store.close()


def test_a_watchdog_pass_takes_the_statistics_a_bulk_load_left_without(
        pg_store: TicketStore) -> None:
    bulk(pg_store, [ticket(f"h{i}/c") for i in range(500)])
    world = World(pg_store)
    assert last_analyzed(pg_store, manual=True) is None
    deadline = time.monotonic() + 30
    while last_analyzed(pg_store, manual=True) is None:  # counted a moment after commit
        assert time.monotonic() < deadline, "no pass analyzed the tickets table"
        world.watchdog.run_once()
        time.sleep(0.2)
    assert "statistics" in world.watchdog.health.snapshot()[1]
