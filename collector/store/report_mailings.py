"""Which scheduled report has been mailed: one row per report name, in the store.

The mark used to be a ``.sent`` file beside the archived report. Replicas of one
collector on PostgreSQL may run on different machines, each with its own archive
folder: after the watchdog's leadership moved, the new leader found no mark in its
folder and mailed the day's report again. The database is what replicas share, so the
mark lives there; the first replica to record a report's mailing wins, and every
other replica (and every later pass) sees it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any


def _mailing(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"at": row["mailed_at"], "recipients": json.loads(row["recipients"]),
            "message_id": row["message_id"]}


class ReportMailReads:
    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Mapping[str, Any]]:
        raise NotImplementedError

    def report_mailing(self, name: str) -> dict[str, Any] | None:
        """When and to whom the report ``name`` (``daily-2026-12-04``) was mailed, or
        None if it was not."""
        rows = self._rows("SELECT mailed_at, recipients, message_id FROM report_mailings"
                          " WHERE name = ?", (name,))
        return _mailing(rows[0]) if rows else None

    def report_mailings(self, names: Sequence[str]) -> dict[str, float]:
        """Of ``names``, those mailed, with when (for the Reports page's list)."""
        if not names:
            return {}
        marks = ", ".join("?" for _ in names)
        rows = self._rows(f"SELECT name, mailed_at FROM report_mailings WHERE name IN ({marks})",
                          tuple(names))
        return {row["name"]: row["mailed_at"] for row in rows}


class ReportMailWrites(ReportMailReads):
    def record_report_mailing(self, name: str, at: float, recipients: list[str],
                              message_id: str) -> bool:
        """Mark ``name`` mailed; False if another replica (or an earlier pass) already
        had, in which case its mark stays."""
        return bool(self._rows(
            "INSERT INTO report_mailings (name, mailed_at, recipients, message_id)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING name",
            (name, at, json.dumps(recipients), message_id)))


def migration_sql(real: str) -> tuple[str, ...]:
    return (f"CREATE TABLE report_mailings (name TEXT PRIMARY KEY, mailed_at {real} NOT NULL,"
            " recipients TEXT NOT NULL, message_id TEXT NOT NULL)",)
