"""The ticket list (API, web page, CLI) reads the index of its own order (migration 10)
instead of sorting every ticket: at 100,000 open tickets a sort cost 0.3-1 s per page
on SQLite. SQLite has no statistics here, so the plan is fixed by the query's shape:
assert it for the default list and for the status filters people use.
"""

from __future__ import annotations

import pytest

from patrol.collector.store import open_store


@pytest.mark.parametrize("status", [None, ["new"], ["new", "in_progress", "pending"],
                                    ["closed"], ["resolved", "new"]],
                         ids=["default", "new", "open", "closed", "mixed"])
def test_the_list_reads_its_index_in_order_on_sqlite(tmp_path: object, status: list[str] | None,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(f"sqlite:///{tmp_path}/patrol.db")
    plans: list[str] = []
    rows = store._rows

    def explained(sql: str, params: object = ()) -> object:
        plans.extend(row["detail"] for row in rows("EXPLAIN QUERY PLAN " + sql, params))
        return rows(sql, params)

    monkeypatch.setattr(store, "_rows", explained)
    try:
        store.list_tickets(status=status, limit=100, offset=5000)
    finally:
        store.close()
    assert plans == ["SCAN tickets USING INDEX tickets_list_order"]
