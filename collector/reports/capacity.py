"""Capacity forecasts for the daily report: days until each disk or inode table is full.

From the hourly rollups of the last :data:`WINDOW_DAYS` days (each hour's ``last``
value): a least-squares line through the points, in ratio per day. A filesystem whose
line rises gets "full in N days" at that rate from its latest value; one that is flat
or shrinking gets no forecast (it is not filling). A line needs :data:`MIN_HOURS`
points, so a check that has reported for an hour does not claim a trend.

Why a straight line over a week rather than the agent's ``full_in_seconds`` (growth
since the previous run): a log rotation or a backup makes the run-to-run rate swing
wildly; a week's trend is what a capacity plan is made from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

DAY = 86400.0
WINDOW_DAYS = 7
MIN_HOURS = 6
MEASUREMENTS = {"used_ratio": "space", "inodes_used_ratio": "inodes"}
DISK_TYPES = frozenset({"disk"})


def slope_per_day(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of ``(epoch seconds, value)`` points, in value per day."""
    n = len(points)
    if n < 2:
        return None
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return None
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread * DAY


def forecast(rollups: Iterable[Mapping[str, Any]], as_of: float, top: int = 10
             ) -> dict[str, Any]:
    """``{"filling": [...] soonest full first, "fastest": [...] by growth}`` from hourly
    rollup rows (the store's ``rollups("hour", ...)``)."""
    series: dict[tuple[str, str, str, str], list[tuple[float, float]]] = {}
    for row in rollups:
        if row["name"] in MEASUREMENTS and row["bucket"] < as_of:
            key = (row["host"], row["check_name"], row["item"], row["name"])
            series.setdefault(key, []).append((row["last_at"], row["last"]))
    rows: list[dict[str, Any]] = []
    for (host, check, item, name), points in sorted(series.items()):
        if len(points) < MIN_HOURS:
            continue
        points.sort()
        growth = slope_per_day(points)
        latest_at, latest = points[-1]
        days = (1.0 - latest) / growth if growth and growth > 0 and latest < 1 else None
        rows.append({"host": host, "check": check, "item": item,
                     "what": MEASUREMENTS[name], "measurement": name, "latest": latest,
                     "latest_at": latest_at, "growth_per_day": growth,
                     "days_to_full": days,
                     "full_at": None if days is None else latest_at + days * DAY})
    filling = sorted((r for r in rows if r["days_to_full"] is not None),
                     key=lambda r: (r["days_to_full"], r["host"], r["item"]))
    fastest = sorted((r for r in rows if (r["growth_per_day"] or 0) > 0),
                     key=lambda r: (-r["growth_per_day"], r["host"], r["item"]))
    return {"window_days": WINDOW_DAYS, "filesystems": len(rows),
            "filling": filling[:top], "fastest": fastest[:top]}
