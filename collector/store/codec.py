"""Ticket and TimelineEntry <-> database rows, the same for both backends.

Columns are the dataclass fields, derived from :class:`collector.model.Ticket` itself so
a new field cannot be silently dropped (its missing column fails loudly instead), with
one rename: ``check`` is reserved in SQL, so the column is ``check_name``. Lists and dicts
are JSON (TEXT on SQLite, jsonb on PostgreSQL): the backend passes ``dump`` to wrap a
value for writing and ``load`` to turn what its driver returns back into Python.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from patrol.collector.model import Priority, Ticket, TicketStatus, TimelineEntry
from patrol.collector.store.clean import json_text

Dump = Callable[[Any], Any]
Load = Callable[[Any], Any]

# From the declared types: lists and dicts are JSON, booleans are stored as such.
JSON_FIELDS = frozenset(f.name for f in dataclasses.fields(Ticket)
                        if str(f.type).startswith(("list[", "dict[")))
BOOL_FIELDS = frozenset(f.name for f in dataclasses.fields(Ticket) if f.type in ("bool", bool))
_COLUMN_OF = {"check": "check_name"}
_FIELD_OF = {column: name for name, column in _COLUMN_OF.items()}

# Written on create; update writes all but the identity (id, number) and version.
TICKET_FIELDS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(Ticket) if f.name not in ("id", "version"))
UPDATE_FIELDS: tuple[str, ...] = tuple(f for f in TICKET_FIELDS if f != "number")


def column(field_name: str) -> str:
    return _COLUMN_OF.get(field_name, field_name)


# Compact JSON, ``json.dumps(value, separators=(",", ":"))`` of the value as
# :func:`collector.store.clean.clean_json` leaves it (no NUL, surrogates or NaN),
# so what SQLite stores as text is what PostgreSQL's jsonb would accept.
dump_text: Dump = json_text

_PLAIN, _JSON, _BOOL = range(3)
_ENUMS = (Priority, TicketStatus)
_KINDS: dict[tuple[str, ...], tuple[tuple[str, int], ...]] = {}


def _kinds(fields: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    kinds = _KINDS.get(fields)
    if kinds is None:
        kinds = _KINDS[fields] = tuple(
            (name, _JSON if name in JSON_FIELDS else _BOOL if name in BOOL_FIELDS
             else _PLAIN) for name in fields)
    return kinds


def ticket_values(ticket: Ticket, fields: tuple[str, ...], dump: Dump) -> list[Any]:
    """``ticket``'s values for ``fields``, in that order, ready to bind."""
    values: list[Any] = []
    append = values.append
    for name, kind in _kinds(fields):
        value = getattr(ticket, name)
        if kind == _PLAIN:
            append(value.value if isinstance(value, _ENUMS) else value)
        elif kind == _JSON:
            append(dump(value))
        else:
            append(bool(value))
    return values


def is_json(field_name: str) -> bool:
    return field_name in JSON_FIELDS


def ticket_from_row(row: Mapping[str, Any], load: Load) -> Ticket:
    kwargs: dict[str, Any] = {}
    for key in row.keys():  # noqa: SIM118 - sqlite3.Row iterates values, not keys
        name = _FIELD_OF.get(key, key)
        value = row[key]
        if name in JSON_FIELDS:
            value = load(value)
        elif name in BOOL_FIELDS:
            value = bool(value)
        kwargs[name] = value
    kwargs["priority"] = Priority(kwargs["priority"])
    kwargs["status"] = TicketStatus(kwargs["status"])
    return Ticket(**kwargs)


def entry_from_row(row: Mapping[str, Any], load: Load) -> TimelineEntry:
    return TimelineEntry(at=row["at"], kind=row["kind"], text=row["text"],
                         author=row["author"], data=load(row["data"]),
                         ticket_id=row["ticket_id"], id=row["id"])


def host_from_row(row: Mapping[str, Any], load: Load) -> dict[str, Any]:
    return {"host": row["host"], "agent_id": row["agent_id"], "version": row["version"],
            "labels": load(row["labels"]), "last_heartbeat": row["last_heartbeat"],
            "interval": row["interval_seconds"], "reachable": bool(row["reachable"]),
            "timezone": row["timezone"], "metrics_address": row["metrics_address"]}


def check_state_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"host": row["host"], "check": row["check_name"], "type": row["check_type"],
            "status": row["status"], "summary": row["summary"], "since": row["since"],
            "last_run": row["last_run"], "interval": row["interval_seconds"],
            "next_due": row["next_due"], "timeout": row["timeout_seconds"]}
