"""A small in-memory history of each check's measurements, for the breach event.

Why here and not only in the collector: a ticket should show how the disk filled up
*before* the breach, and the agent is the one place that saw every run. The buffer is
bounded per measurement, whatever the check's interval: the window (24 h) is cut into
``points`` buckets (288, one per 5 minutes) and each bucket keeps one point, the
latest value seen in it, so a check every 10 s costs the same as one every 5 min.
Values are kept in ``array('d')`` pairs rather than tuples of floats: 16 bytes a point
instead of ~100 (``bench/history_bench.py`` measures it).

Nothing is persisted: after a restart the series starts again (the collector's rollups
hold the long view).
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Iterable
from dataclasses import dataclass

WINDOW_SECONDS = 24 * 3600.0
POINTS = 288


@dataclass(frozen=True, slots=True)
class Series:
    """One measurement's recent points, oldest first, as ``(epoch seconds, value)``."""

    name: str
    item: str
    points: list[tuple[float, float]]


class Ring:
    """One measurement's bucketed ring: at most ``points`` entries, one per bucket."""

    __slots__ = ("bucket", "points", "times", "values")

    def __init__(self, bucket: float, points: int) -> None:
        self.bucket = bucket
        self.points = points
        self.times = array("d")
        self.values = array("d")

    def add(self, at: float, value: float) -> None:
        """A new sample: replaces the last point when it falls in the same bucket (the
        latest value of a bucket is what a breach chart needs), else appends, dropping
        the oldest once full."""
        times = self.times
        if times and at // self.bucket == times[-1] // self.bucket:
            if at >= times[-1]:
                times[-1], self.values[-1] = at, value
            return
        if times and at < times[-1]:
            return  # a clock step backwards: keep the series monotonic
        times.append(at)
        self.values.append(value)
        if len(times) > self.points:
            del times[0]
            del self.values[0]

    def since(self, start: float) -> list[tuple[float, float]]:
        return [(t, v) for t, v in zip(self.times, self.values, strict=True) if t >= start]


class MeasurementHistory:
    """Every check's measurement rings, keyed by check name and (name, item).

    Thread-safe: checks run on the scheduler's worker threads while the emitter reads.
    """

    def __init__(self, window: float = WINDOW_SECONDS, points: int = POINTS) -> None:
        if window <= 0 or points < 2:
            raise ValueError("history window must be positive and keep at least 2 points")
        self.window = window
        self.points = points
        self._rings: dict[str, dict[tuple[str, str], Ring]] = {}
        self._lock = threading.Lock()

    def record(self, check: str, at: float, measurements: Iterable[tuple[str, str, float]]
               ) -> None:
        """One run's ``(name, item, value)`` triples; non-finite values are skipped (a
        measurement that has no number cannot be charted)."""
        bucket = self.window / self.points
        with self._lock:
            rings = self._rings.setdefault(check, {})
            for name, item, value in measurements:
                if value != value or value in (float("inf"), float("-inf")):
                    continue
                ring = rings.get((name, item))
                if ring is None:
                    ring = rings[(name, item)] = Ring(bucket, self.points)
                ring.add(at, value)

    def series(self, check: str, now: float,
               keys: Iterable[tuple[str, str]] | None = None) -> list[Series]:
        """The last window of the check's measurements (``keys``: only those)."""
        start = now - self.window
        with self._lock:
            rings = self._rings.get(check, {})
            wanted = list(rings) if keys is None else [k for k in keys if k in rings]
            return [Series(name, item, rings[(name, item)].since(start))
                    for name, item in wanted]

    def retain(self, checks: Iterable[str]) -> None:
        """Forget checks no longer configured (after a reload)."""
        keep = set(checks)
        with self._lock:
            for name in list(self._rings):
                if name not in keep:
                    del self._rings[name]
