"""Group commit on SQLite (collector/store/sqlite.py): a unit of work queued behind
another joins its transaction. Joining must not change what each unit means: a unit
that fails undoes only its own writes, the others commit, and nobody returns before the
COMMIT that holds its writes. (PostgreSQL commits each unit itself: nothing to share.)
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from patrol.collector.store import open_store, sqlite


def _hosts(path: Path) -> set[str]:
    reader = open_store(f"sqlite:///{path}")
    try:
        return {h["host"] for h in reader.hosts()}
    finally:
        reader.close()


@pytest.mark.parametrize("second_fails", [False, True], ids=["both-commit", "joiner-fails"])
def test_a_queued_unit_joins_the_open_transaction_and_fails_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, second_fails: bool) -> None:
    monkeypatch.setattr(sqlite, "GROUP_WINDOW", 60.0)
    path = tmp_path / "patrol.db"
    store = open_store(f"sqlite:///{path}")
    seen_before_return: dict[str, set[str]] = {}
    errors: list[BaseException] = []

    def first() -> None:
        with store.transaction() as tx:
            tx.upsert_host("db-01", "agent-1", "1.0", {}, time.time(), 30.0)
            deadline = time.monotonic() + 10
            while store._queued == 0 and time.monotonic() < deadline:
                time.sleep(0.001)  # hold the lock until the second unit is queued
        seen_before_return["first"] = _hosts(path)  # returned: its COMMIT happened

    def second() -> None:
        try:
            with store.transaction() as tx:
                tx.upsert_host("db-02", "agent-2", "1.0", {}, time.time(), 30.0)
                if second_fails:
                    raise RuntimeError("the second unit fails")
        except RuntimeError as exc:
            errors.append(exc)
        seen_before_return["second"] = _hosts(path)

    one = threading.Thread(target=first)
    one.start()
    while store._group is None:
        time.sleep(0.001)
    two = threading.Thread(target=second)
    two.start()
    one.join(15)
    two.join(15)
    store.close()

    expected = {"db-01"} if second_fails else {"db-01", "db-02"}
    # The first unit left the transaction open for the second and returned only after
    # the one COMMIT: it sees the second unit's outcome already on disk.
    assert seen_before_return == {"first": expected, "second": expected}
    assert len(errors) == int(second_fails)
    assert _hosts(path) == expected
