"""The PostgreSQL store (psycopg 3), for several collector replicas or large fleets.

Decisions:

- psycopg is imported here only, when this backend is chosen, so the embedded SQLite
  setup does not need it.
- A small bounded pool of autocommit connections (psycopg_pool is not a dependency):
  at most ``pool_size`` connections however many threads ask, since PostgreSQL's
  default ``max_connections`` is 100 and a web server may run more threads. A thread
  that waits more than ``POOL_TIMEOUT`` seconds for one gets a StoreError.
- Units of work run in READ COMMITTED. Serialising per dedup_key takes a transaction
  advisory lock on the key (``pg_advisory_xact_lock(hashtextextended(key, 0))``): a row
  lock alone cannot stop two replicas from both seeing "no active ticket" and racing to
  create one. Returned ticket rows are also locked ``FOR UPDATE`` for the API's
  acknowledge/close paths, which find tickets by number, not by key.
- Deadlocks and serialization failures become ConcurrentUpdate (retry the unit of work).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from collector.store import migrations
from collector.store.base import ConcurrentUpdate, ConstraintViolation, StoreError
from collector.store.clean import clean_params, json_text
from collector.store.sql import SqlReads, SqlTransaction

POOL_TIMEOUT = 30.0
_MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(7283, 1)"  # two-int keyspace: no key clash


@functools.lru_cache(maxsize=256)
def _pg(sql: str) -> str:
    """The portable SQL's ``?`` placeholders in psycopg's style (the SQL has no ``%``)."""
    return sql.replace("?", "%s")


def _fail(exc: Exception) -> StoreError:
    import psycopg.errors as e

    if isinstance(exc, e.SerializationFailure | e.DeadlockDetected):
        return ConcurrentUpdate(f"PostgreSQL aborted the unit of work: {exc}")
    if isinstance(exc, e.IntegrityError):
        return ConstraintViolation(f"PostgreSQL refused the write: {exc}")
    return StoreError(f"PostgreSQL: {exc}")


@contextmanager
def _mapped() -> Iterator[None]:
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        raise _fail(exc) from exc


class _Pool:
    """At most ``size`` connections, reused LIFO; broken ones are dropped on return."""

    def __init__(self, conninfo: str, size: int) -> None:
        try:
            import psycopg
            from psycopg.rows import dict_row
        except ImportError as exc:
            raise StoreError("a postgresql:// store needs psycopg 3: "
                             "pip install 'patrol-inspect[postgres]'") from exc

        self._connect = functools.partial(psycopg.connect, conninfo, autocommit=True,
                                          row_factory=dict_row)
        self._idle: list[Any] = []
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[Any]:
        from psycopg.pq import TransactionStatus

        if self._closed:
            raise StoreError("the PostgreSQL store is closed")
        if not self._slots.acquire(timeout=POOL_TIMEOUT):
            raise StoreError(f"no PostgreSQL connection came free within {POOL_TIMEOUT:g} s")
        try:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None or conn.closed:
                with _mapped():
                    conn = self._connect()
            try:
                yield conn
            finally:
                reusable = (not self._closed and not conn.closed
                            and conn.info.transaction_status == TransactionStatus.IDLE)
                if reusable:
                    with self._lock:
                        self._idle.append(conn)
                else:
                    conn.close()
        finally:
            self._slots.release()

    def close(self) -> None:
        self._closed = True
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class PostgresTransaction(SqlTransaction):
    _lock = " FOR UPDATE"
    _skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, conn: Any) -> None:
        from psycopg.types.json import Jsonb

        self._conn = conn
        self._jsonb = Jsonb
        self._locked: set[str] = set()
        self.done = False

    def _cursor(self, sql: str, params: Sequence[Any]) -> Any:
        if self.done:
            raise StoreError("this transaction has ended; open a new one")
        with _mapped():
            return self._conn.execute(_pg(sql), clean_params(params))

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Mapping[str, Any]]:
        cursor = self._cursor(sql, params)
        with _mapped():
            return cursor.fetchall()

    def _run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._cursor(sql, params).rowcount

    def _dump(self, value: Any) -> Any:
        return self._jsonb(value, json_text)  # cleaned as on SQLite: see store/clean.py

    def _load(self, value: Any) -> Any:
        return value  # psycopg already turned jsonb into Python

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        with _mapped(), self._conn.transaction():
            yield

    def lock_key(self, dedup_key: str) -> None:
        if dedup_key not in self._locked:
            self._rows("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (dedup_key,))
            self._locked.add(dedup_key)


class _ReadOnly(PostgresTransaction):
    """A store-level read on an autocommit connection: no row locks."""

    _lock = ""
    _skip_locked = ""


class PostgresStore(SqlReads):
    backend = "postgresql"

    def __init__(self, conninfo: str, pool_size: int = 8) -> None:
        self._pool = _Pool(conninfo, pool_size)
        self._local = threading.local()

    def __repr__(self) -> str:
        return "PostgresStore(...)"  # the conninfo may hold a password

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Mapping[str, Any]]:
        with self._pool.connection() as conn:
            return _ReadOnly(conn)._rows(sql, params)

    def _load(self, value: Any) -> Any:
        return value

    @contextmanager
    def transaction(self) -> Iterator[PostgresTransaction]:
        if getattr(self._local, "in_tx", False):
            raise StoreError("a transaction is already open in this thread; pass its tx along")
        with self._pool.connection() as conn:
            self._local.in_tx = True
            tx = PostgresTransaction(conn)
            try:
                with _mapped(), conn.transaction():
                    yield tx
            finally:
                tx.done = True
                self._local.in_tx = False

    def migrate(self) -> list[int]:
        with self.transaction() as tx:
            tx._rows(_MIGRATION_LOCK)  # replicas starting together upgrade one at a time
            return migrations.apply(tx._rows, tx._run, "postgres")

    def schema_version(self) -> int:
        return migrations.current(self._rows)

    def close(self) -> None:
        self._pool.close()
