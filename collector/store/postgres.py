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
- ``synchronous_commit = off`` for the collector's sessions, unless the URL sets it
  (``?options=-csynchronous_commit%3Don`` keeps every commit flushed). This is the
  guarantee the SQLite store gives with ``synchronous=NORMAL`` in WAL mode: a crash
  of the collector loses nothing, a crash of the database server or of its machine
  loses at most the last ~0.6 s of commits (3 x ``wal_writer_delay``) and never
  corrupts anything; agents' heartbeats reconcile the state those commits carried.
  Waiting for a WAL flush on every commit cost 3x the ingest rate (one unit of work
  per event: 175 -> 558 new events/s in one thread, bench/PG_INGEST.md).
- Round trips are the cost of an event (~100 us each on the 2-vCPU test VM, even for
  a bare BEGIN, plus ~100 us of backend CPU per statement), so the hot path saves
  them: ``record_event`` takes the key's advisory lock in the same statement (the
  reads after it run under the lock, each with a fresh READ COMMITTED snapshot, so
  nothing stale is read); a key that this unit of work saw empty under its lock
  needs no duplicate pre-check nor savepoint before ``create_ticket``; the serial
  and the insert are one statement; BEGIN and writes nobody waits for travel with
  the next statement (see :class:`PostgresTransaction`); one cursor serves the unit
  of work. A new incident takes 6 round trips (14 before).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from patrol.collector.model import Ticket
from patrol.collector.store import codec, migrations
from patrol.collector.store.base import ConcurrentUpdate, ConstraintViolation, StoreError
from patrol.collector.store.clean import clean_params, json_text
from patrol.collector.store.sql import _INSERT, _JSON_AT_CREATE, SqlReads, SqlTransaction

POOL_TIMEOUT = 30.0
ANALYZE_EVERY = 60.0  # seconds; autovacuum_naptime's default
# Whether tickets changed enough since their last analysis (autovacuum's rule; a table
# never analyzed has reltuples -1). The counters lag commits by up to a second or so.
_STALE_TICKETS = (
    "SELECT s.n_mod_since_analyze > 50 + 0.1 * GREATEST(c.reltuples, 0) AS stale"
    " FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid"
    " WHERE s.relid = 'tickets'::regclass")
_MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(7283, 1)"  # two-int keyspace: no key clash
_LOCK_KEY = "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))"
_RECORD_LOCKED = (
    "WITH locked AS (SELECT pg_advisory_xact_lock(hashtextextended(?, 0)))"
    " INSERT INTO events (event_id, dedup_key, received_at, payload)"
    " SELECT ?, ?, ?, ? FROM locked ON CONFLICT (event_id) DO NOTHING")
_RESERVE_SERIALS = (
    "WITH s AS (INSERT INTO ticket_serials (day, last_serial) VALUES (?, ?) ON CONFLICT (day)"
    " DO UPDATE SET last_serial = ticket_serials.last_serial + ? RETURNING last_serial)"
    " SELECT (SELECT last_serial FROM s) AS last_serial,"
    " ARRAY(SELECT nextval(pg_get_serial_sequence('tickets', 'id'))"
    " FROM generate_series(1, ?)) AS ticket_ids,"
    " ARRAY(SELECT nextval(pg_get_serial_sequence('timeline', 'id'))"
    " FROM generate_series(1, ?)) AS timeline_ids")
_TICKET_INSERT_HEAD = _INSERT.split(" VALUES ")[0].replace("(", "(id, ", 1)
_TIMELINE_INSERT_HEAD = "INSERT INTO timeline (id, ticket_id, at, kind, text, author, data)"
# Many keys in one statement; unnest keeps the array's (sorted) order.
_LOCK_KEYS = ("SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0)))"
              " FROM unnest(?::text[]) AS k")
_NUMBER_AT = codec.TICKET_FIELDS.index("number")
# The day's serial and the ticket in one statement (a data-modifying WITH runs once).
_INSERT_NUMBERED = (
    "WITH serial AS (INSERT INTO ticket_serials (day, last_serial) VALUES (?, 1)"
    " ON CONFLICT (day) DO UPDATE SET last_serial = ticket_serials.last_serial + 1"
    " RETURNING last_serial)"
    f" INSERT INTO tickets ({', '.join(codec.column(f) for f in codec.TICKET_FIELDS)},"
    " version) VALUES (" + ", ".join(
        "(SELECT 'TS' || ?::text || CASE WHEN last_serial < 1000"
        " THEN lpad(last_serial::text, 3, '0') ELSE last_serial::text END FROM serial)"
        if i == _NUMBER_AT else "?" for i in range(len(codec.TICKET_FIELDS)))
    + ", 1) RETURNING id, number")


class _Raw(str):
    """SQL written with PostgreSQL's own ``$n`` placeholders, for psycopg's RawCursor."""

    @property
    def sql(self) -> str:
        return str(self)


@functools.lru_cache(maxsize=64)
def _multirow(head: str, width: int, rows: int) -> _Raw:
    """``head VALUES ($1, ...), (...)``: ``rows`` rows of ``width`` values. With ``%s``
    placeholders psycopg re-parsed such a statement on every execution (it caches only
    statements under 4 KiB): 4 ms per batch of 100 tickets, a quarter of the unit's
    client CPU (cProfile); ``$n`` placeholders on a RawCursor are sent as written."""
    numbers = iter(range(1, width * rows + 1))
    values = ", ".join("(" + ", ".join(f"${next(numbers)}" for _ in range(width)) + ")"
                       for _ in range(rows))
    return _Raw(f"{head} VALUES {values}")


def _as_is(text: str) -> str:
    return text


def with_session_defaults(conninfo: str) -> str:
    """``conninfo`` plus ``-c synchronous_commit=off`` in its options, unless it sets
    synchronous_commit itself (see the module docstring)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    options = conninfo_to_dict(conninfo).get("options") or ""
    if "synchronous_commit" in str(options):
        return conninfo
    return make_conninfo(conninfo, options=f"{options} -c synchronous_commit=off".strip())


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

        self._connect = functools.partial(psycopg.connect, with_session_defaults(conninfo),
                                          autocommit=True, row_factory=dict_row)
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


class SpareSerials:
    """Ticket serials (per UTC day) and row ids this process reserved ahead; thread-safe.

    Why: a new ticket's serial comes from its day's ``ticket_serials`` row, whose row
    lock the unit of work holds until it commits. With one unit of work per batch
    that lock would serialise whole batches across every thread and replica (measured:
    4 threads ingested at a third of one thread's rate). So a batch reserves the
    serials it may need in one short autocommit statement *before* its transaction
    begins, and its creates take them from here without touching the row. With the
    ids of the ticket and of its first timeline entry reserved too, a new ticket's
    rows need no answer from the database, so a batch's new tickets are written as
    one multi-row INSERT (and their entries as another) when the unit next talks to
    the database. Serials a unit took but did not commit come back; what is left
    unused serves later units.

    The price: numbers are unique and increase per day within one process, but the
    serials still spare when a process stops (or the day ends) are never used, and
    replicas' numbers interleave by reservation rather than strictly by opening time.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_day: dict[str, list[int]] = {}
        self.ids: dict[str, list[int]] = {"tickets": [], "timeline": []}

    def add(self, day: str, serials: Iterable[int]) -> None:
        with self._lock:
            spare = self._by_day.setdefault(day, [])
            spare.extend(serials)
            spare.sort(reverse=True)  # pop() gives the lowest
            for old in [d for d in self._by_day if d < day]:
                del self._by_day[old]  # a day that is over needs no more numbers

    def add_ids(self, table: str, ids: Iterable[int]) -> None:
        with self._lock:
            self.ids[table].extend(ids)

    def take(self, day: str) -> int | None:
        with self._lock:
            spare = self._by_day.get(day)
            return spare.pop() if spare else None

    def take_ids(self) -> tuple[int, int] | None:
        """A reserved (ticket id, timeline id) pair, or None when either ran out."""
        with self._lock:
            tickets, timeline = self.ids["tickets"], self.ids["timeline"]
            if not tickets or not timeline:
                return None
            return tickets.pop(), timeline.pop()

    def count(self, day: str) -> int:
        with self._lock:
            return len(self._by_day.get(day, ()))

    def lend(self, day: str, count: int, to: SpareSerials) -> int:
        """Move up to ``count`` serials of ``day`` and id pairs to ``to`` (a unit of
        work's own, so that concurrent units do not drain each other's reservation);
        how many of each it got."""
        with self._lock:
            spare = self._by_day.get(day, [])
            tickets, timeline = self.ids["tickets"], self.ids["timeline"]
            n = min(count, len(spare), len(tickets), len(timeline))
            serials = [spare.pop() for _ in range(n)]
            pairs = [(tickets.pop(), timeline.pop()) for _ in range(n)]
        to.add(day, serials)
        to.add_ids("tickets", [t for t, _ in pairs])
        to.add_ids("timeline", [e for _, e in pairs])
        return n

    def give_all(self, to: SpareSerials) -> None:
        """Everything left here back to ``to`` (the store's, when a unit ends)."""
        with self._lock:
            by_day, self._by_day = self._by_day, {}
            ids, self.ids = self.ids, {"tickets": [], "timeline": []}
        for day, serials in by_day.items():
            to.add(day, serials)
        for table, values in ids.items():
            to.add_ids(table, values)


class PostgresTransaction(SqlTransaction):
    _lock = " FOR UPDATE"
    _skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, conn: Any, spare: SpareSerials | None = None) -> None:
        from psycopg import Error
        from psycopg.types.json import Jsonb

        self._conn = conn
        self._spare = spare if spare is not None else SpareSerials()
        self._mine = SpareSerials()  # what this unit reserved or borrowed
        self._taken: list[tuple[str, int]] = []  # spare serials used, returned on rollback
        # New tickets (with reserved ids) and their entries, not sent yet: written as
        # one multi-row INSERT each before the unit's next statement (see SpareSerials).
        self._pending_tickets: list[list[Any]] = []
        self._pending_entries: list[list[Any]] = []
        self._entry_ids: dict[int, int] = {}  # pending ticket id -> its reserved entry id
        # One cursor for the unit of work: psycopg caches the adapters it found for
        # each parameter type per cursor, so a cursor per statement looked them up
        # again every time (psycopg's largest item in a py-spy --gil profile).
        self._cur = conn.cursor()
        self._error = Error
        self._jsonb = Jsonb
        self._locked: set[str] = set()
        self._vacant_keys: set[tuple[str, bool]] = set()  # seen with no ticket, locked
        self._begun = not self.lazy_begin
        self._waiting: list[tuple[str, Sequence[Any]]] = []  # queued by _send
        self.done = False

    # A round trip costs ~100 us here (7 % of a new incident), so statements whose
    # answer nobody waits for -- BEGIN, and writes queued by ``_send`` -- travel with
    # the next statement that must be answered, or with the COMMIT, in one round trip
    # (psycopg's pipeline mode, used just for that group: per statement it costs more
    # client CPU than plain mode). An error in a queued write fails that statement or
    # the COMMIT, and so the whole unit of work.
    lazy_begin = True

    def _flush_pending(self) -> None:
        """Queue the pending new tickets and entries as multi-row INSERTs, ahead of
        anything sent after them (tickets first: entries refer to them)."""
        for rows, head in ((self._pending_tickets, _TICKET_INSERT_HEAD),
                           (self._pending_entries, _TIMELINE_INSERT_HEAD)):
            if rows:
                self._waiting.append((_multirow(head, len(rows[0]), len(rows)),
                                      clean_params([v for row in rows for v in row])))
                rows.clear()
        self._entry_ids.clear()

    def _raw_cursor(self) -> Any:
        raw = self.__dict__.get("_raw")
        if raw is None:
            from psycopg import RawCursor

            raw = self.__dict__["_raw"] = RawCursor(self._conn)
        return raw

    def _with_waiting(self, sql: str | None, params: Sequence[Any] = ()) -> Any:
        """Send BEGIN if due and the queued writes, then ``sql`` if given; one trip."""
        self._flush_pending()
        waiting, self._waiting = self._waiting, []
        with self._conn.pipeline():
            if not self._begun:
                self._begun = True
                self._conn.execute("BEGIN")
            for queued, queued_params in waiting:
                if isinstance(queued, _Raw):  # $n placeholders: nothing to parse
                    self._raw_cursor().execute(queued.sql, queued_params)
                else:
                    self._conn.execute(queued, queued_params)
            return None if sql is None else self._cur.execute(sql, params)

    def end(self, commit: bool) -> None:
        """COMMIT (with any queued writes) or ROLLBACK; nothing if nothing was sent."""
        self.done = True
        waiting = self._waiting
        if not commit:
            self._give_back()
            self._waiting = []
            self._pending_tickets.clear()
            self._pending_entries.clear()
            if self._begun:
                self._conn.execute("ROLLBACK")
            return
        if not self._begun and not waiting and not self._pending_tickets:
            self._mine.give_all(self._spare)
            return
        try:
            if waiting or not self._begun or self._pending_tickets:
                self._with_waiting("COMMIT")
            else:
                self._conn.execute("COMMIT")
        except self._error as exc:
            # Not given back: a COMMIT that failed in flight may still have committed.
            self._taken = []
            self._mine.give_all(self._spare)
            with suppress(self._error):
                self._conn.execute("ROLLBACK")
            raise _fail(exc) from exc
        self._taken = []
        self._mine.give_all(self._spare)

    def _give_back(self) -> None:
        """Spare serials this unit of work took but did not commit: usable again."""
        self._mine.give_all(self._spare)
        taken, self._taken = self._taken, []
        for day, serial in taken:
            self._spare.add(day, [serial])

    def reserve_serials(self, opened_at: float, count: int) -> None:
        """Take ``count`` serials of ``opened_at``'s day in one short autocommit
        statement, if this unit of work has not begun yet (see :class:`SpareSerials`);
        already spare ones count. Otherwise creates use the day's row as usual."""
        day = time.strftime("%Y%m%d", time.gmtime(opened_at))
        if self._begun or self._waiting or self.done:
            return
        wanted = count - self._spare.lend(day, count, self._mine)
        if wanted <= 0:
            return
        try:
            row = self._cur.execute(_pg(_RESERVE_SERIALS),
                                    (day, wanted, wanted, wanted, wanted)).fetchone()
        except self._error as exc:
            raise _fail(exc) from exc
        last = row["last_serial"]
        self._mine.add(day, range(last - wanted + 1, last + 1))
        self._mine.add_ids("tickets", row["ticket_ids"])
        self._mine.add_ids("timeline", row["timeline_ids"])

    def _cursor(self, sql: str, params: Sequence[Any]) -> Any:
        if self.done:
            raise StoreError("this transaction has ended; open a new one")
        try:  # not _mapped(): a context manager per statement shows in profiles
            if self._waiting or not self._begun or self._pending_tickets:
                return self._with_waiting(_pg(sql), clean_params(params))
            return self._cur.execute(_pg(sql), clean_params(params))
        except self._error as exc:
            raise _fail(exc) from exc

    def _send(self, sql: str, params: Sequence[Any] = ()) -> None:
        if self.done:
            raise StoreError("this transaction has ended; open a new one")
        if not self.lazy_begin:  # a store-level (autocommit) write: nothing to ride with
            self._run(sql, params)
            return
        self._flush_pending()
        self._waiting.append((_pg(sql), clean_params(params)))

    def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """One executemany (psycopg pipelines it): one round trip, not one per row."""
        if not rows:
            return
        if self.done:
            raise StoreError("this transaction has ended; open a new one")
        try:
            if self._waiting or not self._begun or self._pending_tickets:
                self._with_waiting(None)
            self._cur.executemany(_pg(sql), [clean_params(row) for row in rows])
        except self._error as exc:
            raise _fail(exc) from exc

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Mapping[str, Any]]:
        cursor = self._cursor(sql, params)
        try:
            return cursor.fetchall()
        except self._error as exc:
            raise _fail(exc) from exc

    def _run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._cursor(sql, params).rowcount

    def _dump(self, value: Any) -> Any:
        return self._jsonb(value, json_text)  # cleaned as on SQLite: see store/clean.py

    def _json_param(self, text: str) -> Any:
        return self._jsonb(text, _as_is)

    def _load(self, value: Any) -> Any:
        return value  # psycopg already turned jsonb into Python

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        if self._waiting or not self._begun or self._pending_tickets:  # else psycopg
            # would make the block a transaction
            with _mapped():
                self._with_waiting(None)
        with _mapped(), self._conn.transaction():  # inside one: a SAVEPOINT
            yield

    def lock_key(self, dedup_key: str) -> None:
        if dedup_key not in self._locked:
            self._send(_LOCK_KEY, (dedup_key,))  # the next statement runs after it
            self._locked.add(dedup_key)

    def record_event(self, event_id: str, dedup_key: str, received_at: float,
                     payload: dict[str, Any]) -> bool:
        """Also locks ``dedup_key`` (see the module docstring): every unit of work
        that records an event goes on to read the key's tickets."""
        if dedup_key in self._locked:
            return super().record_event(event_id, dedup_key, received_at, payload)
        recorded = self._run(_RECORD_LOCKED, (dedup_key, event_id, dedup_key, received_at,
                                              self._payload(payload))) == 1
        self._locked.add(dedup_key)
        return recorded

    def record_events(self, rows: Sequence[tuple[str, str, float, dict[str, Any]]]
                      ) -> set[str]:
        """Every key's advisory lock, in sorted order so that two batches sharing keys
        queue instead of deadlocking, then one multi-row INSERT: one round trip."""
        if len(rows) == 1:
            return super().record_events(rows)
        keys = sorted({row[1] for row in rows} - self._locked)
        if keys:
            self._send(_LOCK_KEYS, (keys,))
            self._locked.update(keys)
        params: list[Any] = []
        for event_id, dedup_key, received_at, payload in rows:
            params += (event_id, dedup_key, received_at, self._payload(payload))
        found = self._rows(
            "INSERT INTO events (event_id, dedup_key, received_at, payload) VALUES "
            + ", ".join("(?, ?, ?, ?)" for _ in rows)
            + " ON CONFLICT (event_id) DO NOTHING RETURNING event_id", params)
        return {row["event_id"] for row in found}

    def known_vacant(self, dedup_key: str) -> None:
        self._vacant_keys.add((dedup_key, False))

    def _active(self, key: str, group: bool) -> Ticket | None:
        found = super()._active(key, group)
        if found is None:
            self._vacant_keys.add((key, group))
        return found

    def latest_ticket(self, dedup_key: str, *, group: bool = False) -> Ticket | None:
        found = super().latest_ticket(dedup_key, group=group)
        if found is None:
            self._vacant_keys.add((dedup_key, group))
        return found

    def _vacant(self, ticket: Ticket) -> bool:
        # Only keys read under this unit of work's advisory lock get here, and every
        # writer of a key's tickets takes that lock first: none can have appeared.
        return (ticket.dedup_key, ticket.is_group) in self._vacant_keys

    def _insert_ticket(self, ticket: Ticket, day: str, values: list[Any]) -> tuple[int, str]:
        vacant = (ticket.dedup_key, ticket.is_group) in self._vacant_keys
        self._vacant_keys.discard((ticket.dedup_key, ticket.is_group))
        serial = self._mine.take(day)
        if serial is None:
            serial = self._spare.take(day)
        if serial is not None:
            self._taken.append((day, serial))
            values[_NUMBER_AT] = number = f"TS{day}{serial:03d}"
            bound = self._bind(values, range(len(values)), _JSON_AT_CREATE)
            # A vacant key (read empty under this unit's lock) cannot meet a duplicate:
            # the INSERT needs no answer, and is written with the batch's others.
            ids = (self._mine.take_ids() or self._spare.take_ids()) if vacant else None
            if ids is not None:
                self._pending_tickets.append([ids[0], *bound, 1])
                self._entry_ids[ids[0]] = ids[1]
                return ids[0], number
            try:
                return self._rows(_INSERT, bound)[0]["id"], number
            except ConstraintViolation:
                self._taken.pop()
                self._spare.add(day, [serial])  # not consumed: see create_ticket
                raise
        values[_NUMBER_AT] = day
        bound = self._bind(values, range(len(values)), _JSON_AT_CREATE)
        row = self._rows(_INSERT_NUMBERED, [day, *bound])[0]
        return row["id"], row["number"]

    def _insert_timeline(self, ticket_id: int, entry: Any) -> int:
        entry_id = self._entry_ids.pop(ticket_id, None)
        if entry_id is None:
            return super()._insert_timeline(ticket_id, entry)
        self._pending_entries.append([entry_id, ticket_id, entry.at, entry.kind, entry.text,
                                      entry.author, self._dump(entry.data)])
        return entry_id

    def update_ticket(self, ticket: Ticket) -> Ticket:
        self._vacant_keys.discard((ticket.dedup_key, ticket.is_group))  # e.g. reopened
        return super().update_ticket(ticket)


class _ReadOnly(PostgresTransaction):
    """A store-level read on an autocommit connection: no row locks, no BEGIN."""

    _lock = ""
    _skip_locked = ""
    lazy_begin = False


class PostgresStore(SqlReads):
    backend = "postgresql"

    def __init__(self, conninfo: str, pool_size: int = 8) -> None:
        self._pool = _Pool(conninfo, pool_size)
        self._local = threading.local()
        self._spare = SpareSerials()
        self._analyzed_at = float("-inf")  # time.monotonic() of our last ANALYZE

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
            tx = PostgresTransaction(conn, self._spare)
            try:
                try:
                    yield tx
                except BaseException:
                    with suppress(Exception):  # keep the original error
                        tx.end(commit=False)
                    raise
                tx.end(commit=True)
            finally:
                tx.done = True
                self._local.in_tx = False

    def migrate(self) -> list[int]:
        with self.transaction() as tx:
            tx._rows(_MIGRATION_LOCK)  # replicas starting together upgrade one at a time
            return migrations.apply(tx._rows, tx._run, "postgres")

    def schema_version(self) -> int:
        return migrations.current(self._rows)

    def refresh_statistics(self) -> bool:
        """``ANALYZE tickets`` once the rows changed since its last analysis pass
        autovacuum's own threshold (50 + 10 % of the table), at most every
        ``ANALYZE_EVERY`` seconds. Without statistics (autovacuum off, as on the test
        VM, or not yet run after a bulk load or a restore) the planner took
        ``status = 'new'`` for 0.5 % of 100,000 new tickets and sorted all of them
        for one page of the list (0.8-2.5 s) instead of reading its index in order
        (4 ms); autovacuum, where it runs, looks only once a minute."""
        now = time.monotonic()
        if now - self._analyzed_at < ANALYZE_EVERY:
            return False
        found = self._rows(_STALE_TICKETS)
        if not found or not found[0]["stale"]:
            return False
        with self._pool.connection() as conn, _mapped():
            conn.execute("ANALYZE tickets")
        self._analyzed_at = now
        return True

    def close(self) -> None:
        self._pool.close()
