"""The agent's on-disk outbox: what must reach the collector(s), kept in SQLite.

``state_dir/outbox.db`` (WAL, ``synchronous=FULL``, mode 0600). :meth:`Outbox.put`
commits before it returns, so an event survives a SIGKILL or power loss the
instant after. Delivery is at-least-once: a row is deleted only when a collector
has acknowledged it, and the collector treats a repeated ``event_id`` as done.

Decisions:

- **One row per (collector, payload).** Each configured collector gets its own copy,
  so one collector being down never holds back, or loses, delivery to another.
- **Events keep their order.** Rows are served by ``sequence`` (then insertion id),
  and :meth:`next_batch` stops at the first row still waiting out a backoff, so a
  later event never overtakes an earlier one to the same collector.
- **Heartbeats are coalesced.** Only the latest undelivered heartbeat matters (it
  is the full state), so putting one replaces the pending one for that collector,
  and only the latest dead-lettered one is kept: an outage of a day queues one
  heartbeat, not 2,880.
- **Dead letters are kept.** A payload the collector refuses for good (a 4xx) is
  marked dead, not deleted: it still counts in :meth:`backlog` so the operator
  sees it, and :meth:`revive` requeues it after the cause (a token) is fixed.
- **The cap (default 100,000 rows per collector) drops, loudly, in this order:**
  heartbeats, then dead-lettered events, then the *oldest* pending events, each
  with an ERROR log line naming the sequence range. Keeping the newest events is
  deliberate: after an outage that long, the recent changes describe the present,
  the heartbeat reconciles the current state of every check anyway, and dropping
  new events instead would hide exactly the breach happening now. Losing events is
  the last resort and never silent (``dropped`` counts them).
- **The per-agent sequence is persisted here**, in the same database as the rows,
  so it survives restarts and resets only together with the outbox itself.
- **A full or read-only disk loses nothing it need not.** A put that cannot be
  written is held in memory (:mod:`agent.outbox_hold`: newest state per check,
  bounded), said once in the log and counted as ``memory`` rows in the metrics;
  the pusher delivers held rows as it does rows on disk, and every later put or
  batch tries to move them to disk again (at most once a second). Only a state
  replaced by a newer one of the same check, or pushed out by the bound, is lost,
  and counted in ``dropped``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

from patrol.agent.identity import ensure_state_dir
from patrol.agent.outbox_hold import DEFAULT_LIMIT, HeldRows

log = logging.getLogger("patrol.outbox")

Kind = Literal["event", "heartbeat"]
KINDS = ("event", "heartbeat")
DEFAULT_CAP = 100_000
FILE_NAME = "outbox.db"
MAX_ERROR = 1000
RETRY_WRITE_EVERY = 1.0  # seconds between attempts to move held rows to disk
# What a full disk (SQLITE_FULL), a read-only one (SQLITE_READONLY) or a failing one
# (SQLITE_IOERR) raises: sqlite3 reports them all as OperationalError.
WRITE_ERRORS = (sqlite3.OperationalError, OSError)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (name, value) VALUES ('sequence', 0);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collector TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('event', 'heartbeat')),
    key TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    dead INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_queue ON outbox (collector, kind, dead, sequence, id);
CREATE UNIQUE INDEX IF NOT EXISTS outbox_event_once ON outbox (collector, key)
    WHERE kind = 'event';
"""


@dataclass(frozen=True, slots=True)
class Row:
    """One payload waiting for one collector. Times are epoch seconds."""

    id: int
    collector: str
    kind: str
    key: str
    sequence: int
    payload: dict[str, Any]
    created_at: float
    attempts: int
    last_error: str | None
    dead: bool = False


class Backlog(NamedTuple):
    """Undelivered rows (dead letters included) and the age of the oldest, in seconds."""

    # Hides tuple.count on purpose: callers read backlog().count.
    count: int  # type: ignore[assignment]
    oldest_age_seconds: float


_COLUMNS = ("id, collector, kind, key, sequence, payload, created_at, attempts, last_error, "
            "dead")


def _row(values: tuple[Any, ...]) -> Row:
    id_, collector, kind, key, sequence, payload, created, attempts, error, dead = values
    return Row(id_, collector, kind, key, sequence, json.loads(payload), created, attempts,
               error, bool(dead))


class Outbox:
    """Thread-safe: check threads put, pusher threads read and acknowledge.

    ``collectors`` are the names (URLs) each put fans out to; change them with
    :attr:`collectors` after a reload (rows of a removed collector stay until
    :meth:`forget` removes them).
    """

    def __init__(self, state_dir: Path, collectors: Sequence[str] = (),
                 cap: int = DEFAULT_CAP, clock: Callable[[], float] = time.time,
                 hold_limit: int = DEFAULT_LIMIT) -> None:
        if cap < 1:
            raise ValueError("the outbox cap must be at least 1")
        self.path = ensure_state_dir(Path(state_dir)) / FILE_NAME
        self.collectors: list[str] = list(collectors)
        self.cap = cap
        self.dropped = 0  # events lost to the cap since start, for metrics
        self._clock = clock
        self._lock = threading.Lock()
        self._on_put: list[Callable[[], None]] = []
        if not self.path.exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(self.path, 0o600)  # the WAL and shm files inherit this mode
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._held = HeldRows(hold_limit)
        self._acked: set[int] = set()  # delivered, but the disk refused the delete
        self._sequence = self._stored_sequence()
        self._sequence_unsaved = False
        self._write_failure: str | None = None  # set while the disk refuses writes
        self._last_write_try = 0.0

    # -- plumbing ---------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Any:
        with self._lock, self._begun() as db:
            yield db

    @contextmanager
    def _begun(self) -> Any:
        """A write transaction; the caller holds the lock."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            with contextlib.suppress(sqlite3.Error):  # a failed COMMIT may have ended it
                self._db.execute("ROLLBACK")
            raise
        try:
            self._db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise

    def _stored_sequence(self) -> int:
        (value,) = self._db.execute("SELECT value FROM meta WHERE name = 'sequence'"
                                    ).fetchone()
        return int(value)

    def _refused(self, exc: BaseException) -> None:
        """The disk refused a write: say so once per episode (no traceback per event)."""
        if self._write_failure is None:
            self._write_failure = str(exc)
            log.warning("cannot write the outbox %s (%s): keeping state changes in memory "
                        "(the newest per check, up to %d) and delivering them from there "
                        "until the disk takes writes again; free space or fix the "
                        "permissions", self.path, exc, self._held.limit)

    def _lost(self, rows: list[Row]) -> None:
        events = [r for r in rows if r.kind == "event"]
        if events:
            self.dropped += len(events)
            log.error("outbox held in memory: %d older state change(s) replaced by newer "
                      "ones or over the limit of %d were dropped (sequence %s); the "
                      "heartbeat reports the current state", len(events), self._held.limit,
                      ", ".join(str(r.sequence) for r in events[:10]))

    def _move_held_to_disk(self, force: bool = False) -> None:
        """Write what is held in memory to disk, if the disk takes it now; the caller
        holds the lock."""
        if not (len(self._held) or self._acked or self._sequence_unsaved):
            return
        now = self._clock()
        if not force and now - self._last_write_try < RETRY_WRITE_EVERY:
            return
        self._last_write_try = now
        held = self._held.all()
        try:
            with self._begun() as db:
                db.execute("UPDATE meta SET value = MAX(value, ?) WHERE name = 'sequence'",
                           (self._sequence,))
                db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in self._acked])
                for row in held:
                    self._insert(db, row.collector, row.kind, row.key, row.sequence,
                                 json.dumps(row.payload, separators=(",", ":"),
                                            sort_keys=True), row.created_at)
        except WRITE_ERRORS:
            return
        self._held.clear()
        self._acked.clear()
        self._sequence_unsaved = False
        if self._write_failure is not None:
            log.info("the outbox %s takes writes again: %d state change(s) held in memory "
                     "are queued on disk", self.path, len(held))
            self._write_failure = None

    def on_put(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (no arguments, must not block) after every committed put."""
        self._on_put.append(callback)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writing ----------------------------------------------------------------------

    def next_sequence(self) -> int:
        """Allocate the next per-agent sequence number (1, 2, ...), durably; in memory
        while the disk refuses writes (saved with the held rows later)."""
        with self._lock:
            self._move_held_to_disk()
            try:
                with self._begun() as db:
                    (value,) = db.execute(
                        "UPDATE meta SET value = MAX(value, ?) + 1 WHERE name = 'sequence' "
                        "RETURNING value", (self._sequence,)).fetchone()
            except WRITE_ERRORS as exc:
                self._refused(exc)
                self._sequence += 1
                self._sequence_unsaved = True
                return self._sequence
            self._sequence = int(value)
            return self._sequence

    def last_sequence(self) -> int:
        """The latest sequence allocated (0 before the first)."""
        with self._lock:
            return max(self._sequence, self._stored_sequence())

    def put(self, kind: Kind, payload: dict[str, Any], key: str) -> int:
        """Queue ``payload`` for every collector; committed when this returns.

        ``key`` is the event_id for events (putting the same one twice is a no-op)
        and anything stable (the host) for heartbeats. ``payload["sequence"]``
        orders events. Returns the number of rows written.
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        text = json.dumps(payload, separators=(",", ":"), sort_keys=True)
        sequence = int(payload.get("sequence", 0))
        now = self._clock()
        written = 0
        with self._lock:
            self._move_held_to_disk(force=True)
            try:
                if len(self._held):  # still refused: keep the order, hold this one too
                    raise sqlite3.OperationalError(self._write_failure or "held rows first")
                with self._begun() as db:
                    for collector in self.collectors:
                        written += self._insert(db, collector, kind, key, sequence, text, now)
            except WRITE_ERRORS as exc:
                self._refused(exc)
                written = 0
                for collector in self.collectors:
                    row = Row(self._held.new_id(), collector, kind, key, sequence,
                              json.loads(text), now, 0, None)
                    self._lost(self._held.hold(row))
                    written += 1
        for callback in list(self._on_put):
            callback()
        return written

    def _insert(self, db: sqlite3.Connection, collector: str, kind: str, key: str,
                sequence: int, text: str, now: float) -> int:
        if kind == "heartbeat":
            db.execute("DELETE FROM outbox WHERE collector = ? AND kind = 'heartbeat' "
                       "AND dead = 0", (collector,))
        else:
            self._make_room(db, collector)
        cursor = db.execute(
            "INSERT OR IGNORE INTO outbox (collector, kind, key, sequence, payload, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (collector, kind, key, sequence, text, now))
        return cursor.rowcount

    def _make_room(self, db: sqlite3.Connection, collector: str) -> None:
        (count,) = db.execute("SELECT COUNT(*) FROM outbox WHERE collector = ?",
                              (collector,)).fetchone()
        excess = count + 1 - self.cap
        if excess <= 0:
            return
        victims = db.execute(
            "SELECT id, kind, dead, sequence FROM outbox WHERE collector = ? "
            "ORDER BY kind = 'event', dead DESC, sequence, id LIMIT ?",
            (collector, excess)).fetchall()
        db.executemany("DELETE FROM outbox WHERE id = ?", [(v[0],) for v in victims])
        events = [v for v in victims if v[1] == "event"]
        pending = [v[3] for v in events if not v[2]]
        if events:
            self.dropped += len(events)
            log.error(
                "outbox for %s is full (%d rows): dropped %d event(s) (%d dead-lettered, "
                "%d never delivered%s) to keep the newest; the collector has been "
                "unreachable for long, check it", collector, self.cap, len(events),
                len(events) - len(pending), len(pending),
                f", sequence {min(pending)}-{max(pending)}" if pending else "")

    # -- delivering -------------------------------------------------------------------

    def next_batch(self, limit: int, *, collector: str | None = None,
                   kind: Kind | None = None, now: float | None = None) -> list[Row]:
        """Up to ``limit`` rows due now, oldest first (events before heartbeats).

        Stops at the first row whose backoff has not expired, so rows to one
        collector are delivered strictly in order.
        """
        now = self._clock() if now is None else now
        where, args = ["dead = 0"], []
        if collector is not None:
            where.append("collector = ?")
            args.append(collector)
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        with self._lock:
            self._move_held_to_disk()
            rows = self._db.execute(
                f"SELECT {_COLUMNS}, next_attempt_at FROM outbox WHERE {' AND '.join(where)} "
                "ORDER BY kind = 'heartbeat', sequence, id LIMIT ?",
                (*args, limit + len(self._acked))).fetchall()
            rows = [values for values in rows if values[0] not in self._acked][:limit]
            due: list[Any] = []
            for values in rows:
                if values[-1] > now:
                    return due
                due.append(_row(values[:-1]))
            if len(due) < limit and len(self._held):
                for name in [collector] if collector is not None else self.collectors:
                    for held_kind in [kind] if kind is not None else list(KINDS):
                        due += self._held.due(name, held_kind, now, limit - len(due))
        return due[:limit]

    def next_due(self, collector: str) -> float | None:
        """When the head of ``collector``'s queue may next be tried (None: nothing)."""
        with self._lock:
            heads = [self._db.execute(
                "SELECT next_attempt_at FROM outbox WHERE collector = ? AND kind = ? "
                "AND dead = 0 ORDER BY sequence, id LIMIT 1", (collector, kind)).fetchone()
                for kind in KINDS]
            held = self._held.next_due(collector)
        times = [h[0] for h in heads if h is not None] + ([held] if held is not None else [])
        return min(times) if times else None

    def ack(self, ids: Iterable[int]) -> None:
        """The collector has these rows: forget them."""
        ids = set(ids)
        with self._lock:
            self._held.remove(ids)
            on_disk = [i for i in ids if i > 0]
            try:
                with self._begun() as db:
                    db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in on_disk])
            except WRITE_ERRORS as exc:  # delivered all the same: never send them again
                self._refused(exc)
                self._acked.update(on_disk)

    def attempt_failed(self, ids: Iterable[int], next_attempt_at: float, error: str) -> None:
        """A retryable failure: try these rows again at ``next_attempt_at`` (epoch s)."""
        ids = set(ids)
        with self._lock:
            self._held.retry_at(ids, next_attempt_at)
            try:
                with self._begun() as db:
                    db.executemany(
                        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, "
                        "last_error = ? WHERE id = ?",
                        [(next_attempt_at, error[:MAX_ERROR], i) for i in ids if i > 0])
            except WRITE_ERRORS as exc:  # the pusher's own backoff still spaces retries
                self._refused(exc)

    def dead_letter(self, ids: Iterable[int], error: str) -> None:
        """A permanent refusal: keep the rows, never send them again unless revived.
        Held rows the disk could not take are logged and let go (there is nowhere to
        keep a dead letter)."""
        ids = list(ids)
        with self._lock:
            for row in self._held.remove(set(ids)):
                log.error("collector refused held %s (sequence %d): %s; not kept, the "
                          "disk refuses writes", row.kind, row.sequence, error)
        with self._tx() as db:
            db.executemany(
                "UPDATE outbox SET attempts = attempts + 1, dead = 1, last_error = ? "
                "WHERE id = ?", [(error[:MAX_ERROR], i) for i in ids])
            # Only the latest refused heartbeat per collector is worth keeping.
            db.execute(
                "DELETE FROM outbox WHERE kind = 'heartbeat' AND dead = 1 AND id NOT IN "
                "(SELECT MAX(id) FROM outbox WHERE kind = 'heartbeat' AND dead = 1 "
                "GROUP BY collector)")

    def revive(self, collector: str | None = None) -> int:
        """Requeue dead letters (after fixing a token, say). Returns how many."""
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE outbox SET dead = 0, next_attempt_at = 0 WHERE dead = 1 "
                "AND (? IS NULL OR collector = ?)", (collector, collector))
            return cursor.rowcount

    def forget(self, collector: str) -> int:
        """Drop every row of a collector that is no longer configured."""
        with self._tx() as db:
            return db.execute("DELETE FROM outbox WHERE collector = ?", (collector,)).rowcount

    # -- looking ----------------------------------------------------------------------

    def backlog(self, collector: str | None = None) -> Backlog:
        """Everything not yet delivered, dead letters included."""
        with self._lock:
            count, oldest = self._db.execute(
                "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE ? IS NULL OR collector = ?",
                (collector, collector)).fetchone()
            held = [r for r in self._held.all() if collector in (None, r.collector)]
        count = int(count) + len(held) - len(self._acked)
        times = [t for t in [oldest, *(r.created_at for r in held)] if t is not None]
        age = max(0.0, self._clock() - min(times)) if times else 0.0
        return Backlog(count, age)

    def counts(self) -> dict[tuple[str, str], int]:
        """Rows by (kind, state), state being ``pending``, ``dead`` or ``memory`` (held
        while the disk refuses writes): for metrics."""
        with self._lock:
            rows = self._db.execute(
                "SELECT kind, dead, COUNT(*) FROM outbox GROUP BY kind, dead").fetchall()
            held = {kind: self._held.count(kind) for kind in KINDS}
        out = {(kind, state): 0 for kind in KINDS for state in ("pending", "dead")}
        for kind, dead, count in rows:
            out[(kind, "dead" if dead else "pending")] = int(count)
        for kind in KINDS:
            out[(kind, "memory")] = held[kind]
        return out

    def rows(self, collector: str | None = None) -> list[Row]:
        """Every row, dead letters included, in queue order (for tests and `patrol` CLI)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE ? IS NULL OR collector = ? "
                "ORDER BY collector, kind = 'heartbeat', sequence, id",
                (collector, collector)).fetchall()
        return [_row(values) for values in rows]
