"""What this host's CPU really did while a test ran, measured by the test itself.

A test of "no ticket on an idle host" runs on a shared CI machine that is often not
idle: other test sessions keep both cores busy for minutes. A cpu or load ticket is
then a TRUE ticket, and the test must tell it from a false one without trusting the
agent it checks. This samples ``/proc/stat`` and ``/proc/loadavg`` once a second in a
thread and answers "was the CPU busy at least RATIO for SECONDS in a row?".
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field


def _cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies since boot, from the aggregate ``cpu`` line."""
    with open("/proc/stat") as stat:
        fields = [float(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


@dataclass
class HostLoad:
    """Samples of (time, CPU busy ratio over the last second, load5 per core)."""

    period: float = 1.0
    samples: list[tuple[float, float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HostLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        cores = os.cpu_count() or 1
        busy, total = _cpu_times()
        while not self._stop.wait(self.period):
            now_busy, now_total = _cpu_times()
            ratio = (now_busy - busy) / max(now_total - total, 1.0)
            busy, total = now_busy, now_total
            self.samples.append((time.time(), ratio, os.getloadavg()[1] / cores))

    def sustained(self, which: str, ratio: float, seconds: float) -> bool:
        """Whether ``which`` ("cpu" busy ratio or "load5" per core) stayed at or above
        ``ratio`` for ``seconds`` in a row at some point."""
        column = {"cpu": 1, "load5": 2}[which]
        run_start: float | None = None
        for sample in self.samples:
            if sample[column] >= ratio:
                run_start = sample[0] - self.period if run_start is None else run_start
                if sample[0] - run_start >= seconds:
                    return True
            else:
                run_start = None
        return False

    def peak(self, which: str) -> float:
        column = {"cpu": 1, "load5": 2}[which]
        return max((s[column] for s in self.samples), default=0.0)
