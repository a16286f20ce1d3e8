"""Measurement history in the store: hourly and daily rollups, breach series, archive.

Mixed into the SQL store classes (:class:`HistoryReads` into ``SqlReads``,
:class:`HistoryWrites` into ``SqlTransaction``) from this file, so the rollups' SQL lives
in one place for both backends.

Why rollups and not raw samples: 10,000 hosts x 25 checks x ~2 measurements sampled
every minute is 720 M rows a day; an hourly row (count, sum, min, max, last) per
measurement is 60x fewer and is all a daily report, a capacity forecast or a "how did
it get here" chart needs. The minute-level picture right before a breach comes with the
breach event itself (the agent's ring buffer) and is kept in ``breach_series``.

Rollups are upserts keyed by (host, check, measurement, item, bucket). A heartbeat
repeats the latest run's values until the check runs again, so a sample whose time is
not after the bucket's ``last_at`` is ignored by the upsert's ``WHERE``: the same run
counted once however many heartbeats carry it. Buckets are UTC hours and UTC days.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

HOUR = 3600.0
DAY = 86400.0
HOURLY_RETENTION = 14 * DAY
DAILY_RETENTION = 400 * DAY
SERIES_RETENTION = 400 * DAY
ROLLUP_TABLES = {"hour": "measurement_hourly", "day": "measurement_daily"}


@dataclass(frozen=True, slots=True)
class Sample:
    """One measured value of one run, as a heartbeat or an event carries it."""

    check: str
    name: str
    item: str
    at: float
    value: float


# A sample of one host as the group write of heartbeats passes it:
# (host, check, measurement, item, at, value).
SampleRow = tuple[str, str, str, str, float, float]


def _rollup_table(real: str, table: str) -> tuple[str, ...]:
    return (
        f"""CREATE TABLE {table} (
            host TEXT NOT NULL,
            check_name TEXT NOT NULL,
            name TEXT NOT NULL,
            item TEXT NOT NULL,
            bucket {real} NOT NULL,
            samples INTEGER NOT NULL,
            total {real} NOT NULL,
            low {real} NOT NULL,
            high {real} NOT NULL,
            last {real} NOT NULL,
            last_at {real} NOT NULL,
            PRIMARY KEY (host, check_name, name, item, bucket)
        )""",
        f"CREATE INDEX {table}_bucket ON {table} (bucket)",
    )


def migration_sql(ident: str, json_type: str, real: str) -> tuple[str, ...]:
    """Migration 8's statements in one dialect (see :mod:`collector.store.migrations`)."""
    return (
        *_rollup_table(real, "measurement_hourly"),
        *_rollup_table(real, "measurement_daily"),
        f"""CREATE TABLE breach_series (
            id {ident},
            dedup_key TEXT NOT NULL,
            host TEXT NOT NULL,
            check_name TEXT NOT NULL,
            observed_at {real} NOT NULL,
            name TEXT NOT NULL,
            item TEXT NOT NULL,
            points {json_type} NOT NULL,
            levels {json_type} NOT NULL
        )""",
        "CREATE INDEX breach_series_key ON breach_series (dedup_key, observed_at)",
        "CREATE INDEX breach_series_observed ON breach_series (observed_at)",
        f"""CREATE TABLE resolutions (
            id {ident},
            ticket_number TEXT NOT NULL,
            host TEXT NOT NULL,
            check_name TEXT NOT NULL,
            check_type TEXT NOT NULL,
            category TEXT NOT NULL,
            note TEXT NOT NULL,
            author TEXT NOT NULL,
            at {real} NOT NULL
        )""",
        "CREATE INDEX resolutions_type ON resolutions (check_type, at)",
    )


def _upsert(table: str) -> str:
    """Portable upsert (SQLite >= 3.24 and PostgreSQL): CASE instead of LEAST/GREATEST,
    which SQLite lacks."""
    t = table
    return (
        f"INSERT INTO {t} (host, check_name, name, item, bucket, samples, total, low, high,"
        " last, last_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)"
        " ON CONFLICT (host, check_name, name, item, bucket) DO UPDATE SET"
        f" samples = {t}.samples + 1, total = {t}.total + excluded.total,"
        f" low = CASE WHEN excluded.low < {t}.low THEN excluded.low ELSE {t}.low END,"
        f" high = CASE WHEN excluded.high > {t}.high THEN excluded.high ELSE {t}.high END,"
        " last = excluded.last, last_at = excluded.last_at"
        f" WHERE excluded.last_at > {t}.last_at")


_UPSERTS = {size: _upsert(table) for size, table in ROLLUP_TABLES.items()}
_WIDTH = {"hour": HOUR, "day": DAY}


class HistoryReads:
    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Mapping[str, Any]]:
        raise NotImplementedError

    def _load(self, value: Any) -> Any:
        raise NotImplementedError

    def rollups(self, size: str, start: float, end: float, host: str | None = None,
                check: str | None = None) -> list[dict[str, Any]]:
        """Rollup rows (``size`` "hour" or "day") with ``bucket`` in [start, end), each
        with its ``avg``; ordered by host, check, measurement, item and time."""
        where = ["bucket >= ?", "bucket < ?"]
        params: list[Any] = [start, end]
        for column, value in (("host", host), ("check_name", check)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        rows = self._rows(
            f"SELECT host, check_name, name, item, bucket, samples, total, low, high, last,"
            f" last_at FROM {ROLLUP_TABLES[size]} WHERE {' AND '.join(where)}"
            " ORDER BY host, check_name, name, item, bucket", params)
        return [{**row, "avg": row["total"] / row["samples"]} for row in rows]

    def breach_series(self, dedup_key: str, before: float | None = None
                      ) -> list[dict[str, Any]]:
        """The series sent with the latest breach of ``dedup_key`` at or before
        ``before`` (None: the latest of all), one row per measurement."""
        cutoff = "" if before is None else " AND observed_at <= ?"
        params: list[Any] = [dedup_key] + ([] if before is None else [before])
        latest = self._rows(f"SELECT MAX(observed_at) AS at FROM breach_series"
                            f" WHERE dedup_key = ?{cutoff}", params)
        if not latest or latest[0]["at"] is None:
            return []
        rows = self._rows("SELECT host, check_name, observed_at, name, item, points, levels"
                          " FROM breach_series WHERE dedup_key = ? AND observed_at = ?"
                          " ORDER BY id", (dedup_key, latest[0]["at"]))
        return [{**row, "points": self._load(row["points"]),
                 "levels": self._load(row["levels"])} for row in rows]

    def resolutions(self, check_type: str | None = None, limit: int = 200
                    ) -> list[dict[str, Any]]:
        """Archived resolutions, newest first (``check_type``: only that type's)."""
        where, params = ("WHERE check_type = ? ", [check_type]) if check_type else ("", [])
        return [dict(row) for row in self._rows(
            "SELECT ticket_number, host, check_name, check_type, category, note, author, at"
            f" FROM resolutions {where}ORDER BY at DESC, id DESC LIMIT ?", [*params, limit])]


class HistoryWrites(HistoryReads):
    def _run(self, sql: str, params: Sequence[Any] = ()) -> int:
        raise NotImplementedError

    def _run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    def _dump(self, value: Any) -> Any:
        raise NotImplementedError

    def record_samples(self, host: str, samples: Iterable[Sample]) -> None:
        """Fold samples into the hourly and daily rollups (a repeated sample: no-op)."""
        self.record_fleet_samples([(host, s.check, s.name, s.item, s.at, s.value)
                                   for s in samples])

    def record_fleet_samples(self, samples: Sequence[SampleRow]) -> None:
        """:meth:`record_samples` for many hosts at once, in order, each sample as a
        plain tuple: two statements for a whole group write of heartbeats, not two per
        host."""
        if not samples:
            return
        for size, sql in _UPSERTS.items():
            width = _WIDTH[size]
            self._run_many(sql, [
                (host, check, name, item, at // width * width, value, value, value, value,
                 at) for host, check, name, item, at, value in samples])

    def record_breach_series(self, dedup_key: str, host: str, check: str, observed_at: float,
                             series: Iterable[tuple[str, str, list[Any]]],
                             levels: Mapping[str, Any]) -> None:
        """The series a breach event carried, with each measurement's levels (keyed
        like ``used_ratio[/var]``) for the chart's warning and critical lines."""
        rows = []
        for name, item, points in series:
            key = f"{name}[{item}]" if item else name
            rows.append((dedup_key, host, check, observed_at, name, item,
                         self._dump([list(p) for p in points]),
                         self._dump(dict(levels.get(key) or {}))))
        if rows:
            self._run_many(
                "INSERT INTO breach_series (dedup_key, host, check_name, observed_at, name,"
                " item, points, levels) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def archive_resolution(self, ticket_number: str, host: str, check: str, check_type: str,
                           category: str, note: str, author: str, at: float) -> None:
        """A person's resolution of a ticket, for the next ticket of its kind."""
        self._run("INSERT INTO resolutions (ticket_number, host, check_name, check_type,"
                  " category, note, author, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                  (ticket_number, host, check, check_type, category, note, author, at))

    def prune_history(self, now: float) -> int:
        """Drop rollups and breach series past their retention; the rows removed."""
        return (self._run("DELETE FROM measurement_hourly WHERE bucket < ?",
                          (now - HOURLY_RETENTION,))
                + self._run("DELETE FROM measurement_daily WHERE bucket < ?",
                            (now - DAILY_RETENTION,))
                + self._run("DELETE FROM breach_series WHERE observed_at < ?",
                            (now - SERIES_RETENTION,)))
