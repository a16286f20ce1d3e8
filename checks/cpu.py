"""CPU utilisation: how busy the host is, and where the time goes.

The busy ratio is averaged over the time since the previous run (like
``rate()`` over a scrape interval), so a check every 15 s sees the whole 15 s,
not a 1 s peek. The first run, with no previous sample, samples for ``sample``
seconds. iowait and steal are reported separately: they point at disks and at the
hypervisor, not at a process, so the diagnosis differs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import psutil

from patrol.checks.base import ConfigClass, Measurement, MeasurementSpec, Result, RunContext, Status
from patrol.checks.schemas import config_schema

if TYPE_CHECKING:
    from patrol.checks.schemas.cpu import CpuConfig

# Fields of psutil.cpu_times() that are already counted inside user/nice on Linux.
_DOUBLE_COUNTED = ("guest", "guest_nice")


def _split(times: Any) -> tuple[float, float, float, float]:
    """(total, idle, iowait, steal) seconds from a psutil cpu_times tuple."""
    fields = times._asdict()
    total = sum(v for k, v in fields.items() if k not in _DOUBLE_COUNTED)
    return total, fields.get("idle", 0.0), fields.get("iowait", 0.0), fields.get("steal", 0.0)


class CpuCheck:
    """Busy ratio of all cores; warning 80 %, critical 95 % by default."""

    type: ClassVar[str] = "cpu"
    Config: ClassVar[ConfigClass] = config_schema("cpu", "CpuConfig")
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = (
        MeasurementSpec(
            "used_ratio", "share of CPU time busy (not idle, not iowait), all cores",
            True, 0.80, 0.95, primary=True,
        ),
        MeasurementSpec("iowait_ratio", "share of CPU time idle while waiting for I/O"),
        MeasurementSpec("steal_ratio", "share of CPU time taken by the hypervisor"),
        MeasurementSpec("cores", "logical CPUs"),
    )
    REQUIRES: ClassVar[tuple[str, ...]] = ()
    DIAGNOSTICS: ClassVar[tuple[str, ...]] = ("top_processes",)

    def __init__(
        self,
        config: CpuConfig,
        cpu_times: Callable[[], Any] = psutil.cpu_times,
        cpu_count: Callable[[], int | None] = psutil.cpu_count,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self._times = cpu_times
        self._count = cpu_count
        self._sleep = sleep
        self._last: tuple[float, float, float, float] | None = None

    def _delta(self) -> tuple[float, float, float]:
        current = _split(self._times())
        previous = self._last
        if previous is None or current[0] - previous[0] <= 0:
            self._sleep(self.config.sample)
            previous, current = current, _split(self._times())
        self._last = current
        total, idle, iowait, steal = (c - p for c, p in zip(current, previous, strict=True))
        if total <= 0:
            return 0.0, 0.0, 0.0
        busy = total - idle - iowait

        def clamp(x: float) -> float:
            return max(0.0, min(1.0, x / total))

        return clamp(busy), clamp(iowait), clamp(steal)

    def run(self, ctx: RunContext) -> Result:
        used, iowait, steal = self._delta()
        cores = float(self._count() or 1)
        measurements = (
            Measurement("used_ratio", used),
            Measurement("iowait_ratio", iowait),
            Measurement("steal_ratio", steal),
            Measurement("cores", cores),
        )
        status = Status.worst(*(ctx.judge(m) for m in measurements))
        extra = [f"{name} {value:.0%}" for name, value in (("iowait", iowait), ("steal", steal))
                 if value >= 0.05]
        detail = f" ({', '.join(extra)})" if extra else ""
        summary = f"CPU is {used:.1%} busy on {ctx.hostname} ({cores:g} cores){detail}"
        return Result(status, summary, measurements)
