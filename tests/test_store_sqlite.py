"""What only the embedded SQLite store promises: WAL, waiting for other writers, file
permissions, migrations on the file, and the URLs it accepts."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from patrol.collector.model import Priority, Ticket, TicketStatus
from patrol.collector.store import StoreError, open_store, sqlite_path
from patrol.collector.store.migrations import LATEST, MIGRATIONS


def _ticket() -> Ticket:
    return Ticket(dedup_key="db-01/cpu", title="cpu", host="db-01", check="cpu",
                  check_type="cpu", severity="warning", priority=Priority.P3,
                  status=TicketStatus.NEW, category="performance", opened_at=1e9,
                  first_seen=1e9, last_seen=1e9, respond_by=1e9, resolve_by=1e9)


def test_wal_mode_is_on_for_every_reader(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/t.db")
    try:
        with sqlite3.connect(tmp_path / "t.db") as other:
            assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        store.close()


def test_files_are_private_and_parent_directories_made(tmp_path: Path) -> None:
    path = tmp_path / "state" / "collector" / "tickets.db"
    store = open_store(str(path))
    try:
        with store.transaction() as tx:
            tx.create_ticket(_ticket())
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.parent.iterdir()}
        assert modes == {"tickets.db": 0o600, "tickets.db-wal": 0o600, "tickets.db-shm": 0o600}
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700 & ~_umask()
    finally:
        store.close()


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


_HOLD_WRITE_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(0.3)
db.execute("COMMIT")
"""


@pytest.mark.slow
def test_a_unit_of_work_waits_for_another_process_writing(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/t.db")
    # e.g. `patrol tickets close` writing to the same file
    other = subprocess.Popen([sys.executable, "-c", _HOLD_WRITE_LOCK, str(tmp_path / "t.db")],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None and other.stdout.readline() == "locked\n"
        started = time.monotonic()
        with store.transaction() as tx:
            number = tx.create_ticket(_ticket()).number
        assert time.monotonic() - started >= 0.2
        assert store.get_ticket(number) is not None
        assert other.wait(timeout=10) == 0
    finally:
        store.close()
        if other.poll() is None:
            other.kill()
            other.wait()


def test_migrations_are_recorded_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/t.db"
    for _ in range(2):
        store = open_store(url)
        assert store.migrate() == []
        store.close()
    with sqlite3.connect(tmp_path / "t.db") as db:
        rows = db.execute("SELECT version, name FROM schema_migrations ORDER BY version")
        assert rows.fetchall() == [(m.version, m.name) for m in MIGRATIONS]


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    open_store(f"sqlite:///{tmp_path}/t.db").close()
    with sqlite3.connect(tmp_path / "t.db") as db:
        db.execute("INSERT INTO schema_migrations VALUES (?, 'from the future', 0)",
                   (LATEST + 1,))
    with pytest.raises(StoreError) as caught:
        open_store(f"sqlite:///{tmp_path}/t.db")
    assert str(caught.value) == (
        f"the database has schema version {LATEST + 1} but this Patrol knows only up to "
        f"{LATEST}; upgrade Patrol or point it at another database")


@pytest.mark.parametrize(("url", "path"), [
    ("sqlite:///tickets.db", "tickets.db"),
    ("sqlite:///var/tickets.db", "var/tickets.db"),
    ("sqlite:////var/lib/patrol/tickets.db", "/var/lib/patrol/tickets.db"),
    ("/var/lib/patrol/tickets.db", "/var/lib/patrol/tickets.db"),
    ("tickets.db", "tickets.db"),
], ids=["relative", "relative-dir", "absolute", "bare-absolute", "bare-relative"])
def test_sqlite_urls(url: str, path: str) -> None:
    assert sqlite_path(url) == path


@pytest.mark.parametrize(("url", "message"), [
    ("sqlite:///:memory:", "store URL 'sqlite:///:memory:' names no file; the ticket store "
     "needs one (an in-memory database would be empty in every thread)"),
    ("mysql://root@localhost/patrol", "cannot use store URL 'mysql://root@localhost/patrol': "
     "expected sqlite:///relative.db, sqlite:////absolute/path.db, a file path or "
     "postgresql://..."),
], ids=["memory", "unknown-scheme"])
def test_unusable_urls_say_why(url: str, message: str) -> None:
    with pytest.raises(StoreError) as caught:
        open_store(url)
    assert str(caught.value) == message


def test_closed_store_refuses_work(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/t.db")
    store.close()
    with pytest.raises(StoreError, match="is closed"):
        store.list_tickets()
