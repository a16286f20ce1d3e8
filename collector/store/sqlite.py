"""The embedded default store: one SQLite file in WAL mode.

Decisions:

- One connection per thread (``threading.local``), so no connection is ever used by two
  threads at once; a connection dies with its thread. ``check_same_thread=False`` so
  that :meth:`SqliteStore.close` may close them all from one thread, and so that units
  of work queued behind each other can share one transaction on the connection of the
  unit that began it (group commit, :meth:`SqliteStore.transaction`; that unit's
  thread waits for the COMMIT meanwhile, so the connection is still used by one thread
  at a time).
- Writers are serialised twice: by a process-local lock, so threads queue fairly instead
  of polling SQLite's busy handler (a hundred contending writers would otherwise
  exhaust ``busy_timeout``), and by ``BEGIN IMMEDIATE``, which takes the file's write
  lock up front so another process (``patrol tickets`` on the same file) waits up to
  ``busy_timeout`` (5 s) instead of failing half way through a unit of work.
- WAL lets readers proceed while one unit of work writes; ``synchronous=NORMAL`` in WAL
  mode is durable across a process crash and loses at most the last commits on a power
  cut, which the agents' outboxes re-deliver (events are idempotent).
- The file is created 0600 (it holds diagnostics); SQLite gives the -wal and -shm
  files the same permissions.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from patrol.collector.store import codec, migrations
from patrol.collector.store.base import ConstraintViolation, StoreError
from patrol.collector.store.clean import clean_params
from patrol.collector.store.sql import SqlReads, SqlTransaction

BUSY_TIMEOUT_MS = 5000
CHECKPOINT_INTERVAL = 2.0  # seconds between background WAL checkpoints
GROUP_MAX = 64  # units of work sharing one commit, at most (bounds the wait for it)
# A group takes more units only while it is younger than this: single events (~0.5 ms
# each) share commits, a batch of 100 (~30 ms) commits alone, as sharing its commit
# saves little and would hold its answer for the next batch (measured: 2-7 % more CPU).
GROUP_WINDOW = 0.002
_EVENTS_PER_INSERT = 250  # 4 parameters each; SQLite allows 32,766 per statement


class _Connection(sqlite3.Connection):
    """A subclass only because sqlite3.Connection itself cannot be weakly referenced."""


_dump = codec.dump_text  # json.dumps(value, separators=(",", ":")), one encoder reused


def _fail(exc: sqlite3.Error, path: str) -> StoreError:
    if isinstance(exc, sqlite3.IntegrityError):
        return ConstraintViolation(f"SQLite {path}: {exc}")
    return StoreError(f"SQLite {path}: {exc}")


def _common(term: str) -> str:
    """SQLite's planner hint that ``term`` holds for most rows (SqlReads._common)."""
    return f"likelihood({term}, 0.9)"


class SqliteTransaction(SqlTransaction):
    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self._conn = conn
        self._path = path
        self.done = False

    def _cursor(self, sql: str, params: Sequence[Any]) -> sqlite3.Cursor:
        if self.done:
            raise StoreError("this transaction has ended; open a new one")
        try:
            return self._conn.execute(sql, clean_params(params))
        except sqlite3.Error as exc:
            raise _fail(exc, self._path) from exc

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Mapping[str, Any]]:
        cursor = self._cursor(sql, params)
        try:
            return cursor.fetchall()
        except sqlite3.Error as exc:  # RETURNING runs its write while rows are fetched
            raise _fail(exc, self._path) from exc

    def _run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._cursor(sql, params).rowcount

    def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if self.done:
            raise StoreError("this transaction has ended; open a new one")
        try:
            self._conn.executemany(sql, [clean_params(row) for row in rows])
        except sqlite3.Error as exc:
            raise _fail(exc, self._path) from exc

    def _dump(self, value: Any) -> Any:
        return _dump(value)

    def _load(self, value: Any) -> Any:
        return json.loads(value)

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        self._run("SAVEPOINT create_ticket")
        try:
            yield
        except BaseException:
            self._run("ROLLBACK TO create_ticket")
            self._run("RELEASE create_ticket")
            raise
        self._run("RELEASE create_ticket")

    def lock_key(self, dedup_key: str) -> None:
        """Nothing to do: BEGIN IMMEDIATE already made this the only writer."""

    def _common(self, term: str) -> str:
        return _common(term)

    def record_events(self, rows: Sequence[tuple[str, str, float, Any]]) -> set[str]:
        """A batch in multi-row ``INSERT ... RETURNING`` statements (one per
        _EVENTS_PER_INSERT rows) instead of one statement per event."""
        if len(rows) == 1:
            return super().record_events(rows)
        found: set[str] = set()
        for start in range(0, len(rows), _EVENTS_PER_INSERT):
            chunk = rows[start:start + _EVENTS_PER_INSERT]
            params: list[Any] = []
            for event_id, dedup_key, received_at, payload in chunk:
                params += (event_id, dedup_key, received_at, self._payload(payload))
            found.update(row["event_id"] for row in self._rows(
                "INSERT INTO events (event_id, dedup_key, received_at, payload) VALUES "
                + ", ".join("(?, ?, ?, ?)" for _ in chunk)
                + " ON CONFLICT (event_id) DO NOTHING RETURNING event_id", params))
        return found


class _Group:
    """Units of work sharing one SQLite transaction on ``conn``, committed once."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.units = 0
        self.began = time.monotonic()
        self.ended = False  # rolled back as a whole (its first unit failed)
        self.committed = threading.Event()
        self.error: sqlite3.Error | None = None


class SqliteStore(SqlReads):
    backend = "sqlite"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._group: _Group | None = None  # the open shared transaction, if any
        self._queue_lock = threading.Lock()
        self._queued = 0  # threads waiting for the write lock
        self._connections: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._registry_lock = threading.Lock()
        self._closed = False
        if not os.path.exists(self.path):
            os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._rows("PRAGMA journal_mode=WAL")  # persistent, and opening fails here, not later
        # Checkpoints (and their fsync) run here, off the request path: SQLite's own
        # auto-checkpoint would run inside whichever commit crosses 1,000 pages.
        self._stop_checkpoints = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, daemon=True,
                                              name="sqlite-checkpoint")
        self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        while not self._stop_checkpoints.wait(CHECKPOINT_INTERVAL):
            with suppress(sqlite3.Error, StoreError):
                self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)")

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    def _connection(self) -> sqlite3.Connection:
        # Inside a unit of work, the group's connection: a read sees the unit's writes.
        conn = getattr(self._local, "unit_conn", None) or getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise StoreError(f"the store {self.path} is closed")
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=BUSY_TIMEOUT_MS / 1000, factory=_Connection)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA wal_autocheckpoint=0")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {self.path}: {exc}") from exc
        with self._registry_lock:
            self._connections.add(conn)
        self._local.conn = conn
        return conn

    def _tx(self, conn: sqlite3.Connection) -> SqliteTransaction:
        return SqliteTransaction(conn, self.path)

    # Reads outside a transaction: autocommit, each statement its own WAL snapshot.
    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Mapping[str, Any]]:
        return self._tx(self._connection())._rows(sql, params)

    def _dump(self, value: Any) -> Any:
        return _dump(value)

    def _load(self, value: Any) -> Any:
        return json.loads(value)

    @contextmanager
    def transaction(self) -> Iterator[SqliteTransaction]:
        """One unit of work, committed with the units queued behind it (group commit).

        Units still run one at a time, under the write lock; each unit that joins an
        open group runs in a savepoint (a unit that raises undoes only its own writes;
        the first unit's failure rolls back the transaction, which holds only it). The
        unit holding the lock commits when nobody else is queued for it or the group
        has GROUP_MAX units; otherwise it leaves the transaction open for the next.
        Every unit returns only after the COMMIT that holds it (so a 202 still means
        "on disk, survives kill -9"), and if that COMMIT fails every unit in the group
        raises StoreError: none of them was acknowledged."""
        if getattr(self._local, "in_tx", False):
            raise StoreError("a transaction is already open in this thread; pass its tx along")
        own = self._connection()
        with self._queue_lock:
            self._queued += 1
        self._write_lock.acquire()
        with self._queue_lock:
            self._queued -= 1
        group: _Group | None = None
        try:
            group = self._group
            first = group is None  # began the transaction: nobody else's writes in it yet
            if group is None:
                self._tx(own)._run("BEGIN IMMEDIATE")
                group = self._group = _Group(own)
            self._local.in_tx, self._local.unit_conn = True, group.conn
            tx = self._tx(group.conn)
            if not first:  # a savepoint costs a copy of every page it touches: only joiners
                tx._run("SAVEPOINT unit")
            try:
                yield tx
            except BaseException:
                with suppress(sqlite3.Error):  # keep the original error
                    if first:
                        group.ended = True
                        if group.conn.in_transaction:
                            group.conn.execute("ROLLBACK")
                    elif group.conn.in_transaction:
                        group.conn.execute("ROLLBACK TO unit")
                        group.conn.execute("RELEASE unit")
                    else:  # SQLite rolled it all back: the other units' writes are gone
                        group.ended = True
                        group.error = sqlite3.OperationalError(
                            "the shared transaction was rolled back by a later unit's error")
                raise
            finally:
                tx.done = True
            if not first:
                self._tx(group.conn)._run("RELEASE unit")
            group.units += 1
        finally:
            self._local.in_tx, self._local.unit_conn = False, None
            if group is not None and (group.ended or self._queued == 0 or
                                      group.units >= GROUP_MAX or
                                      time.monotonic() - group.began >= GROUP_WINDOW):
                self._commit(group)
            self._write_lock.release()
            if group is not None:
                group.committed.wait()  # also when raising: the connection is the group's
        if group.error is not None:
            raise StoreError(f"SQLite {self.path}: commit failed: {group.error}") \
                from group.error

    def _commit(self, group: _Group) -> None:
        """COMMIT the group (under the write lock) and wake its units."""
        try:
            if group.ended:  # its first unit failed and rolled it back: nothing to commit
                return
            group.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            group.error = exc
            if group.conn.in_transaction:
                with suppress(sqlite3.Error):
                    group.conn.execute("ROLLBACK")
        finally:
            self._group = None
            group.committed.set()

    def _common(self, term: str) -> str:
        return _common(term)

    def migrate(self) -> list[int]:
        with self.transaction() as tx:
            return migrations.apply(tx._rows, tx._run, "sqlite")

    def schema_version(self) -> int:
        return migrations.current(self._rows)

    def refresh_statistics(self) -> bool:
        """Nothing: this store keeps no planner statistics (no ``ANALYZE``), so the
        ticket list's plan is fixed by the query's shape and its ``likelihood`` hints
        (tests/test_ticket_list_plan.py) rather than by what the data looked like."""
        return False

    def close(self) -> None:
        self._stop_checkpoints.set()
        with suppress(sqlite3.Error, StoreError):
            self._connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._closed = True
        with self._registry_lock:
            for conn in list(self._connections):
                conn.close()
        self._local = threading.local()
