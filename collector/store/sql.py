"""The store's queries, written once in the SQL both SQLite and PostgreSQL accept.

Backends subclass :class:`SqlReads` (the store's own reads) and :class:`SqlTransaction`
and supply the driver glue: ``_rows``/``_run`` (``?`` placeholders; the PostgreSQL backend
rewrites them; driver errors mapped to :mod:`collector.store.base` errors), JSON
``_dump``/``_load``, ``_savepoint`` and ``lock_key``. ``_lock`` is appended to
single-ticket reads: " FOR UPDATE" inside a PostgreSQL transaction, "" elsewhere.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from patrol.collector.model import Ticket, TicketStatus, TimelineEntry
from patrol.collector.store import codec
from patrol.collector.store.base import (
    ConcurrentUpdate,
    ConstraintViolation,
    DuplicateTicket,
    StoreError,
    WatchWindow,
)
from patrol.collector.store.check_set_pulls import CheckSetPullReads, CheckSetPullWrites
from patrol.collector.store.clean import clean_text, needs_cleaning
from patrol.collector.store.credentials import CredentialReads, CredentialWrites
from patrol.collector.store.dispatch import DispatchReads, DispatchWrites
from patrol.collector.store.history import HistoryReads, HistoryWrites, SampleRow
from patrol.collector.store.report_mailings import ReportMailReads, ReportMailWrites

_OPEN = tuple(s.value for s in TicketStatus if s.is_open)
_OPEN_SQL = "(" + ", ".join(f"'{s}'" for s in _OPEN) + ")"
_TICKET_COLUMNS = ", ".join(codec.column(f) for f in codec.TICKET_FIELDS)
_SELECT = f"SELECT id, version, {_TICKET_COLUMNS} FROM tickets"
_HEAVY = {"body": "''", "diagnostics": "'{}'", "measurements": "'[]'"}
_SELECT_LIGHT = "SELECT id, version, " + ", ".join(
    f"{_HEAVY[f]} AS {codec.column(f)}" if f in _HEAVY else codec.column(f)
    for f in codec.TICKET_FIELDS) + " FROM tickets"
_INSERT = (f"INSERT INTO tickets ({_TICKET_COLUMNS}, version) VALUES "
           f"({', '.join('?' for _ in codec.TICKET_FIELDS)}, 1) RETURNING id")
_UPDATE_ALL = tuple(range(len(codec.UPDATE_FIELDS)))
_UPDATES: dict[tuple[int, ...], str] = {}
_NUMBER_AT = codec.TICKET_FIELDS.index("number")
_JSON_AT = frozenset(i for i, f in enumerate(codec.UPDATE_FIELDS) if codec.is_json(f))
_JSON_AT_CREATE = frozenset(i for i, f in enumerate(codec.TICKET_FIELDS) if codec.is_json(f))


def _update_sql(changed: tuple[int, ...]) -> str:
    """``UPDATE`` of the columns at those positions of UPDATE_FIELDS (cached: few shapes)."""
    sql = _UPDATES.get(changed)
    if sql is None:
        sets = "".join(f"{codec.column(codec.UPDATE_FIELDS[i])} = ?, " for i in changed)
        sql = _UPDATES[changed] = (f"UPDATE tickets SET {sets}version = version + 1"
                                   " WHERE id = ? AND version = ?")
    return sql
_IS_OPEN = f"status IN {_OPEN_SQL}"
# The ticket list's order: these expressions must stay exactly those of the index
# tickets_list_order (migrations._list_order) for SQLite to read it in order.
_LIST_ORDER = (f"ORDER BY CASE WHEN {_IS_OPEN} THEN 0 ELSE 1 END,"
               f" CASE WHEN {_IS_OPEN} THEN priority END,"
               f" CASE WHEN {_IS_OPEN} THEN respond_by END, opened_at DESC, id DESC")
_KEYS_PER_READ = 500  # SQLite allows 32,766 parameters; PostgreSQL 65,535


class JsonText(str):
    """JSON text a store binds as it is: compact, valid, and clean by the rule of
    :mod:`collector.store.clean` (see :func:`model_json`)."""


def model_json(model: Any) -> Any:
    """What to store for a pydantic model's JSON column: its text as pydantic-core
    writes it (one pass in Rust, where ``model_dump(mode="json")`` plus our encoder
    built a Python dict and walked it again: 23 % of batched ingest), or, when that
    text shows anything the cleaning rule would change (or cannot be written), the
    plain dict, which the store then encodes and cleans as any other value. Same
    JSON value either way; only non-ASCII is written as UTF-8 instead of escapes."""
    try:
        raw = model.__pydantic_serializer__.to_json(model)
    except Exception:  # e.g. a lone surrogate: let the cleaning path deal with it
        return model.model_dump(mode="json")
    if needs_cleaning(raw):
        return model.model_dump(mode="json")
    return JsonText(raw.decode())
_NEXT_SERIAL = ("INSERT INTO ticket_serials (day, last_serial) VALUES (?, 1) "
                "ON CONFLICT (day) DO UPDATE SET last_serial = ticket_serials.last_serial + 1 "
                "RETURNING last_serial")


class SqlReads(DispatchReads, CredentialReads, HistoryReads, ReportMailReads,
               CheckSetPullReads):
    _lock = ""

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Mapping[str, Any]]:
        raise NotImplementedError

    def _dump(self, value: Any) -> Any:
        raise NotImplementedError

    def _load(self, value: Any) -> Any:
        raise NotImplementedError

    def _tickets(self, where: str, params: Sequence[Any] = (), tail: str = "") -> list[Ticket]:
        rows = self._rows(f"{_SELECT} WHERE {where} {tail}", params)
        return [codec.ticket_from_row(row, self._load) for row in rows]

    def _one(self, where: str, params: Sequence[Any], order: str = "") -> Ticket | None:
        found = self._tickets(where, params, f"{order} LIMIT 1{self._lock}")
        return found[0] if found else None

    def get_ticket(self, number: str) -> Ticket | None:
        return self._one("number = ?", (number,))

    def get_ticket_by_id(self, ticket_id: int) -> Ticket | None:
        return self._one("id = ?", (ticket_id,))

    def list_tickets(self, status: list[str] | None = None,
                     priority: list[str] | None = None, host: str | None = None,
                     check: str | None = None, limit: int = 100,
                     offset: int = 0) -> list[Ticket]:
        """Open tickets first (by priority, respond-by, newest), then the rest, newest
        first: the order of the index ``tickets_list_order`` (migration 10), read in
        order, so a page costs about its own rows instead of a sort of every ticket.

        The page is chosen on ids alone and only its own rows are read whole: a plan
        that sorts every match after all (PostgreSQL without statistics, e.g. right
        after a bulk load, took ``status = 'new'`` for 0.5 % of the rows) then sorts
        narrow keys in memory instead of every row's body on disk (100,000 open at
        offset 5,000: 62 ms instead of 0.8-2.5 s)."""
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        for name, values in (("status", status), ("priority", priority)):
            if values is not None:
                term = f"{name} IN ({', '.join('?' for _ in values)})" if values else "1 = 0"
                where.append(self._common(term) if name == "status" else term)
                params.extend(str(v) for v in values)
        for name, value in (("host", host), ("check_name", check)):
            if value is not None:
                where.append(f"{name} = ?")
                params.append(value)
        page = (f"SELECT id FROM tickets WHERE {' AND '.join(where)} {_LIST_ORDER}"
                " LIMIT ? OFFSET ?")
        return self._tickets(f"id IN ({page})", [*params, limit, offset], _LIST_ORDER)

    def _common(self, term: str) -> str:
        """``term``, marked for the planner as true of many rows where the backend
        needs telling: SQLite without statistics takes an equality on an indexed
        column (``status``) as selective, and would read every open ticket by status
        and sort them all instead of reading the list's index in order."""
        return term

    def timeline(self, ticket_id: int) -> list[TimelineEntry]:
        rows = self._rows("SELECT id, ticket_id, at, kind, text, author, data FROM timeline"
                          " WHERE ticket_id = ? ORDER BY at, id", (ticket_id,))
        return [codec.entry_from_row(row, self._load) for row in rows]

    def hosts(self) -> list[dict[str, Any]]:
        return [codec.host_from_row(row, self._load)
                for row in self._rows("SELECT * FROM hosts ORDER BY host")]

    def host(self, host: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM hosts WHERE host = ?", (host,))
        return codec.host_from_row(rows[0], self._load) if rows else None

    def check_states(self, host: str | None = None) -> list[dict[str, Any]]:
        where, params = ("WHERE host = ?", (host,)) if host is not None else ("", ())
        rows = self._rows(f"SELECT * FROM check_states {where} ORDER BY host, check_name",
                          params)
        return [codec.check_state_from_row(row) for row in rows]

    def past_tickets(self, host: str | None, check: str, limit: int = 5) -> list[Ticket]:
        where = "check_name = ? AND status IN ('resolved', 'closed') AND is_group = ?"
        params: list[Any] = [check, False]
        if host is not None:
            where += " AND host = ?"
            params.append(host)
        return self._tickets(where, [*params, limit], "ORDER BY opened_at DESC, id DESC LIMIT ?")

    def children(self, parent_id: int) -> list[Ticket]:
        return self._tickets("parent_id = ?", (parent_id,), "ORDER BY opened_at, id")

    def open_tickets(self, light: bool = False) -> list[Ticket]:
        """Every ticket not closed, oldest first. ``light`` leaves out the body,
        diagnostics and measurements (the watchdog needs only the timers; with
        10,000 open tickets that is most of the memory)."""
        if not light:
            return self._tickets("status <> 'closed'", (), "ORDER BY opened_at, id")
        rows = self._rows(f"{_SELECT_LIGHT} WHERE status <> 'closed' ORDER BY opened_at, id")
        tickets = [codec.ticket_from_row(row, self._load) for row in rows]
        for ticket in tickets:  # the placeholders' types differ by backend: normalise
            ticket.body, ticket.diagnostics, ticket.measurements = "", {}, []
        return tickets

    def open_ticket_pages(self, size: int = 1000) -> Iterator[list[Ticket]]:
        """Every ticket not closed, light (as ``open_tickets(light=True)``), ``size``
        at a time in id order (keyset on the primary key: each page is an index range).
        For the watchdog, which at 100,000 open tickets held ~300 MiB of them at once
        and kept the collector's RSS there afterwards."""
        return self._light_pages("status <> 'closed'", (), size)

    def watched_ticket_pages(self, window: WatchWindow, size: int = 1000
                             ) -> Iterator[list[Ticket]]:
        def level_due(column: str, bounds: Mapping[str, float], near_level: int
                      ) -> tuple[str, list[Any]]:
            near = " OR ".join(f"(priority = ? AND {column} <= ?)" for _ in bounds)
            return (f"((escalation < ? AND ({near})) OR (escalation < ? AND {column} <= ?))",
                    [near_level, *(v for item in sorted(bounds.items()) for v in item),
                     near_level + 1, window.now])

        respond, respond_params = level_due("respond_by", window.respond_near,
                                            window.respond_near_level)
        resolve, resolve_params = level_due("resolve_by", window.resolve_near,
                                            window.resolve_near_level)
        return self._light_pages(
            f"status <> 'closed' AND (is_group = ? OR flapping = ? OR check_name LIKE ?"
            f" OR (status IN {_OPEN_SQL} AND recovered_at IS NOT NULL)"
            " OR (status = 'resolved' AND resolved_at <= ?)"
            f" OR (status = 'new' AND acknowledged_at IS NULL AND {respond})"
            f" OR (status IN {_OPEN_SQL} AND {resolve}))",
            (True, True, "stale:%", window.resolved_before, *respond_params,
             *resolve_params), size)

    def _light_pages(self, where: str, params: tuple[Any, ...], size: int
                     ) -> Iterator[list[Ticket]]:
        after = 0
        while True:
            rows = self._rows(f"{_SELECT_LIGHT} WHERE {where} AND id > ? ORDER BY id LIMIT ?",
                              (*params, after, size))
            tickets = [codec.ticket_from_row(row, self._load) for row in rows]
            for ticket in tickets:
                ticket.body, ticket.diagnostics, ticket.measurements = "", {}, []
            if tickets:
                yield tickets
            if len(rows) < size:
                return
            after = rows[-1]["id"]

    def count_open(self) -> int:
        return self._rows("SELECT COUNT(*) AS n FROM tickets WHERE status <> 'closed'")[0]["n"]

    def stats(self) -> dict[str, dict[str, int]]:
        by_status = self._rows("SELECT status, COUNT(*) AS n FROM tickets GROUP BY status")
        by_priority = self._rows("SELECT priority, COUNT(*) AS n FROM tickets"
                                 f" WHERE status IN {_OPEN_SQL} GROUP BY priority")
        return {"status": {r["status"]: r["n"] for r in by_status},
                "priority": {r["priority"]: r["n"] for r in by_priority}}

    def maintenance_windows(self) -> list[dict[str, Any]]:
        rows = self._rows("SELECT id, spec FROM maintenance ORDER BY id")
        return [{**self._load(row["spec"]), "id": row["id"]} for row in rows]

    def events_since(self, since: float) -> list[dict[str, Any]]:
        """Events received at or after ``since``, oldest first: dedup_key and payload."""
        rows = self._rows("SELECT dedup_key, payload FROM events WHERE received_at >= ?"
                          " ORDER BY received_at, event_id", (since,))
        return [{"dedup_key": r["dedup_key"], "payload": self._load(r["payload"])}
                for r in rows]


class SqlTransaction(SqlReads, DispatchWrites, CredentialWrites, HistoryWrites,
                     ReportMailWrites, CheckSetPullWrites):

    def _fresh(self) -> dict[int, list[TimelineEntry]]:
        """Per ticket created by this transaction, the timeline entries it added (as the
        store would read them back): the whole timeline of such a ticket, since nothing
        else can see the ticket before this transaction commits. A new ticket's body is
        rendered from its timeline right after it is opened; this spares the query."""
        fresh = self.__dict__.get("_fresh_timelines")
        if fresh is None:
            fresh = self.__dict__["_fresh_timelines"] = {}
        return fresh

    def timeline(self, ticket_id: int) -> list[TimelineEntry]:
        entries = self._fresh().get(ticket_id)
        if entries is None:
            return super().timeline(ticket_id)
        return sorted((dataclasses.replace(e, data=copy.deepcopy(e.data)) for e in entries),
                      key=lambda e: (e.at, e.id))

    def _written(self) -> dict[int, tuple[int, list[Any]]]:
        """Per ticket id, (version, values of UPDATE_FIELDS with JSON as text) as this
        transaction last wrote them: ``update_ticket`` then writes only what changed."""
        written = self.__dict__.get("_written_rows")
        if written is None:
            written = self.__dict__["_written_rows"] = {}
        return written

    def _json_param(self, text: str) -> Any:
        """JSON text made by codec.dump_text, ready to bind (as it is on SQLite): the
        ticket's values are encoded once, for the snapshot and the statement alike."""
        return text

    def _bind(self, values: list[Any], at: Sequence[int], json_at: frozenset[int]
              ) -> list[Any]:
        return [self._json_param(values[i]) if i in json_at else values[i] for i in at]

    def _run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute a write; the number of rows it changed."""
        raise NotImplementedError

    def _send(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Execute a write whose outcome nobody waits for. A backend may hold it back to
        send it with the next statement (PostgreSQL: one round trip for both); its
        error then fails that statement or the commit, and so the unit of work."""
        self._run(sql, params)

    def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Execute a write once per row of parameters (the SQLite backend batches it)."""
        for row in rows:
            self._run(sql, row)

    def _savepoint(self) -> AbstractContextManager[None]:
        """Undo just the block's writes if it raises, keeping the transaction usable."""
        raise NotImplementedError

    def lock_key(self, dedup_key: str) -> None:
        raise NotImplementedError

    def record_event(self, event_id: str, dedup_key: str, received_at: float,
                     payload: dict[str, Any]) -> bool:
        return self._run(
            "INSERT INTO events (event_id, dedup_key, received_at, payload)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
            (event_id, dedup_key, received_at, self._payload(payload))) == 1

    def _payload(self, payload: Any) -> Any:
        """An event's payload ready to bind: :class:`JsonText` as it is."""
        return self._json_param(payload) if type(payload) is JsonText else \
            self._dump(payload)

    def record_events(self, rows: Sequence[tuple[str, str, float, dict[str, Any]]]
                      ) -> set[str]:
        """Remember a batch of events (event_id, dedup_key, received_at, payload) with
        distinct ids and keys, locking every key; the ids not recorded before."""
        return {row[0] for row in rows if self.record_event(*row)}

    def keys_with_tickets(self, keys: Sequence[str]) -> set[str]:
        """Which of these (locked) keys have any non-group ticket, closed ones
        included: one read for a batch instead of one per event."""
        found: set[str] = set()
        for start in range(0, len(keys), _KEYS_PER_READ):
            chunk = keys[start:start + _KEYS_PER_READ]
            found.update(row["dedup_key"] for row in self._rows(
                "SELECT DISTINCT dedup_key FROM tickets WHERE is_group = ? AND dedup_key IN"
                f" ({', '.join('?' for _ in chunk)})", (False, *chunk)))
        return found

    def _no_past(self) -> set[tuple[str, str]]:
        """(host, check) pairs this unit of work read as having no past tickets."""
        found = self.__dict__.get("_no_past_pairs")
        if found is None:
            found = self.__dict__["_no_past_pairs"] = set()
        return found

    def prefetch_past(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Read once for a batch which (host, check) pairs have past tickets, so that
        :meth:`past_tickets` of the others (a new incident's body) needs no query.
        Only a ticket this unit resolves or closes can add one: update_ticket forgets
        the pair then."""
        wanted = sorted(set(pairs))
        no_past = self._no_past()
        for start in range(0, len(wanted), _KEYS_PER_READ):
            chunk = wanted[start:start + _KEYS_PER_READ]
            hosts, checks = sorted({h for h, _ in chunk}), sorted({c for _, c in chunk})
            rows = self._rows(
                "SELECT DISTINCT host, check_name FROM tickets WHERE status IN"
                " ('resolved', 'closed') AND is_group = ? AND check_name IN"
                f" ({', '.join('?' for _ in checks)}) AND host IN"
                f" ({', '.join('?' for _ in hosts)})", (False, *checks, *hosts))
            have = {(row["host"], row["check_name"]) for row in rows}
            no_past.update(pair for pair in chunk if pair not in have)

    def past_tickets(self, host: str | None, check: str, limit: int = 5) -> list[Ticket]:
        if host is not None and (host, check) in self._no_past():
            return []
        return super().past_tickets(host, check, limit)

    def reserve_serials(self, opened_at: float, count: int) -> None:
        """A hint, before the unit of work's first statement: it may open about
        ``count`` tickets dated ``opened_at``. Nothing to do where one writer runs at
        a time (SQLite); PostgreSQL reserves the serials ahead (store/postgres.py)."""

    def known_vacant(self, dedup_key: str) -> None:
        """The caller read, under this unit of work's lock on the key, that it has no
        non-group ticket (:meth:`keys_with_tickets`); a backend may skip re-checking."""

    def _active(self, key: str, group: bool) -> Ticket | None:
        self.lock_key(key)
        return self._one("dedup_key = ? AND is_group = ? AND status <> 'closed'", (key, group))

    def active_ticket(self, dedup_key: str) -> Ticket | None:
        return self._active(dedup_key, False)

    def open_group(self, group_key: str) -> Ticket | None:
        return self._active(group_key, True)

    def latest_ticket(self, dedup_key: str, *, group: bool = False) -> Ticket | None:
        self.lock_key(dedup_key)
        return self._one("dedup_key = ? AND is_group = ?", (dedup_key, group),
                         "ORDER BY opened_at DESC, id DESC")

    def _has_active(self, ticket: Ticket) -> bool:
        return bool(self._rows("SELECT id FROM tickets WHERE dedup_key = ? AND is_group = ?"
                               " AND status <> 'closed'", (ticket.dedup_key, ticket.is_group)))

    def _vacant(self, ticket: Ticket) -> bool:
        """True when this unit of work has already seen, under its lock on the key, that
        the key has no ticket of this kind: the pre-check and its savepoint can go."""
        return False

    def _insert_ticket(self, ticket: Ticket, day: str, values: list[Any]) -> tuple[int, str]:
        """Take the day's next serial and insert ``values`` (TICKET_FIELDS, JSON as
        text, the number left to fill); the new (id, number)."""
        serial = self._rows(_NEXT_SERIAL, (day,))[0]["last_serial"]
        values[_NUMBER_AT] = number = f"TS{day}{serial:03d}"
        bound = self._bind(values, range(len(values)), _JSON_AT_CREATE)
        return self._rows(_INSERT, bound)[0]["id"], number

    def create_ticket(self, ticket: Ticket) -> Ticket:
        kind = "group ticket" if ticket.is_group else "ticket"
        duplicate = f"{ticket.dedup_key!r} already has an active {kind}"
        day = time.strftime("%Y%m%d", time.gmtime(ticket.opened_at))
        values = codec.ticket_values(ticket, codec.TICKET_FIELDS, codec.dump_text)
        snapshot = values[:_NUMBER_AT] + values[_NUMBER_AT + 1:]
        vacant = self._vacant(ticket)
        try:
            if vacant:
                ticket.id, ticket.number = self._insert_ticket(ticket, day, values)
            else:
                with self._savepoint():
                    if self._has_active(ticket):
                        raise DuplicateTicket(duplicate)
                    ticket.id, ticket.number = self._insert_ticket(ticket, day, values)
        except DuplicateTicket:
            ticket.number, ticket.id = "", None
            raise
        except ConstraintViolation as exc:
            ticket.number, ticket.id = "", None
            # A race the pre-check could not see (a key not locked by lock_key), or
            # another rule (a parent_id that does not exist): tell them apart. (Without
            # the savepoint PostgreSQL has aborted the transaction: nothing more to ask.)
            if not vacant and self._has_active(ticket):
                raise DuplicateTicket(f"{duplicate} ({exc})") from exc
            raise
        ticket.version = 1
        self._written()[ticket.id] = (1, snapshot)
        self._fresh()[ticket.id] = []
        return ticket

    def update_ticket(self, ticket: Ticket) -> Ticket:
        if ticket.id is None:
            raise StoreError(f"ticket {ticket.dedup_key!r} was never created; cannot update")
        if ticket.status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
            self._no_past().discard((ticket.host, ticket.check))
        values = codec.ticket_values(ticket, codec.UPDATE_FIELDS, codec.dump_text)
        written = self._written()
        previous = written.get(ticket.id)
        if previous is not None and previous[0] == ticket.version:
            # This transaction wrote the row at this very version (the WHERE below
            # re-checks it): the columns that did not change already hold these values.
            changed = tuple(i for i, (new, old) in enumerate(zip(values, previous[1], strict=True))
                            if new != old or type(new) is not type(old))
        else:
            changed = _UPDATE_ALL
        params = [*self._bind(values, changed, _JSON_AT), ticket.id, ticket.version]
        if previous is not None and previous[0] == ticket.version:
            # Written by this unit of work, so locked by it until it ends (PostgreSQL's
            # row lock; SQLite's single writer): the UPDATE cannot miss.
            self._send(_update_sql(changed), params)
        elif self._run(_update_sql(changed), params) != 1:
            raise ConcurrentUpdate(
                f"ticket {ticket.number or ticket.id} changed since it was read"
                f" (version {ticket.version} is stale, or the ticket is gone)")
        ticket.version += 1
        written[ticket.id] = (ticket.version, values)
        return ticket

    def _insert_timeline(self, ticket_id: int, entry: TimelineEntry) -> int:
        """Insert the entry; its new id."""
        return self._rows(
            "INSERT INTO timeline (ticket_id, at, kind, text, author, data)"
            " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (ticket_id, entry.at, entry.kind, entry.text, entry.author,
             self._dump(entry.data)))[0]["id"]

    def add_timeline(self, ticket_id: int, entry: TimelineEntry) -> TimelineEntry:
        entry.id, entry.ticket_id = self._insert_timeline(ticket_id, entry), ticket_id
        fresh = self._fresh().get(ticket_id)
        if fresh is not None:  # kept as a read would return it: cleaned, JSON round-tripped
            fresh.append(TimelineEntry(
                at=entry.at, kind=clean_text(entry.kind), text=clean_text(entry.text),
                author=clean_text(entry.author), data=json.loads(codec.dump_text(entry.data)),
                ticket_id=ticket_id, id=entry.id))
        return entry

    def upsert_host(self, host: str, agent_id: str, version: str, labels: dict[str, str],
                    heartbeat_at: float, interval: float, timezone: str | None = None,
                    metrics_address: str | None = None) -> None:
        self._run(
            "INSERT INTO hosts (host, agent_id, version, labels, last_heartbeat,"
            " interval_seconds, reachable, timezone, metrics_address)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (host) DO UPDATE SET agent_id = excluded.agent_id,"
            " version = excluded.version, labels = excluded.labels,"
            " last_heartbeat = excluded.last_heartbeat,"
            " interval_seconds = excluded.interval_seconds, timezone = excluded.timezone,"
            " metrics_address = excluded.metrics_address",
            (host, agent_id, version, self._dump(labels), heartbeat_at, interval, True,
             timezone, metrics_address))

    def set_check_states(self, host: str, states: list[dict[str, Any]]) -> None:
        self._run("DELETE FROM check_states WHERE host = ?", (host,))
        self._run_many(
            "INSERT INTO check_states (host, check_name, check_type, status, summary,"
            " since, last_run, interval_seconds, next_due, timeout_seconds)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(host, s["check"], s["type"], s["status"], s["summary"], s["since"],
              s["last_run"], s.get("interval"), s.get("next_due"), s.get("timeout"))
             for s in states])

    def touch_hosts(self, beats: Sequence[tuple[float, str]],
                    runs: Sequence[tuple[Any, ...]],
                    samples: Sequence[SampleRow] = ()) -> list[str]:
        """Heartbeats that changed nothing but times, summaries and measured values
        (collector/ingest/heartbeats.py): per host (last_heartbeat, host), per check
        (last_run, next_due, summary, host, check), and the runs' rollup samples, each
        (host, check, measurement, item, at, value). Returns the hosts marked
        unreachable meanwhile, whose next heartbeat must say so."""
        self._run_many("UPDATE hosts SET last_heartbeat = ? WHERE host = ?", beats)
        self._run_many("UPDATE check_states SET last_run = ?, next_due = ?, summary = ?"
                       " WHERE host = ? AND check_name = ?", runs)
        self.record_fleet_samples(samples)
        return [row["host"] for row in
                self._rows("SELECT host FROM hosts WHERE reachable = ?", (False,))]

    def set_host_reachable(self, host: str, reachable: bool) -> None:
        self._run("UPDATE hosts SET reachable = ? WHERE host = ?", (reachable, host))

    def add_maintenance(self, window: dict[str, Any]) -> int:
        spec = {k: v for k, v in window.items() if k != "id"}
        return self._rows("INSERT INTO maintenance (spec) VALUES (?) RETURNING id",
                          (self._dump(spec),))[0]["id"]

    def delete_maintenance(self, window_id: int) -> bool:
        return self._run("DELETE FROM maintenance WHERE id = ?", (window_id,)) == 1

    def prune_events(self, before: float) -> int:
        return self._run("DELETE FROM events WHERE received_at < ?", (before,))
