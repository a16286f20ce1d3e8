"""Swap: how full the swap space is, and how fast pages move in and out of it.

A full swap area is a slow-burning memory problem; heavy swap-*in* traffic is the
one users feel right now (every page fault waits for the disk). The traffic rates
are averaged over the time since the previous run, from the kernel's cumulative
``pswpin``/``pswpout`` counters (``psutil.swap_memory().sin/.sout``, in bytes), so
the first run reports no rate rather than guessing one.

A host without swap is a deliberate choice, not a fault: OK, with no ratio emitted
(0 of 0 has no meaningful share), and the summary says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import psutil

from patrol.checks.base import ConfigClass, Measurement, MeasurementSpec, Result, RunContext, Status
from patrol.checks.schemas import config_schema
from patrol.checks.thresholds import limit_note
from patrol.contract.units import format_bytes, format_rate

if TYPE_CHECKING:
    from patrol.checks.schemas.swap import SwapConfig


class SwapCheck:
    """Swap used; warning 50 %, critical 80 % by default."""

    type: ClassVar[str] = "swap"
    Config: ClassVar[ConfigClass] = config_schema("swap", "SwapConfig")
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = (
        MeasurementSpec("used_ratio", "share of swap space in use", True, 0.50, 0.80,
                        primary=True),
        MeasurementSpec("used_bytes", "swap space in use"),
        MeasurementSpec("total_bytes", "swap space configured (0 when there is none)"),
        MeasurementSpec("swap_in_bytes_per_second",
                        "pages read back from swap since the previous run, per second"),
        MeasurementSpec("swap_out_bytes_per_second",
                        "pages written to swap since the previous run, per second"),
    )
    REQUIRES: ClassVar[tuple[str, ...]] = ()
    DIAGNOSTICS: ClassVar[tuple[str, ...]] = ("top_processes",)

    def __init__(
        self,
        config: SwapConfig,
        swap_memory: Callable[[], Any] = psutil.swap_memory,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._swap_memory = swap_memory
        self._clock = clock
        self._last: tuple[float, float, float] | None = None  # (time, sin, sout)

    def _rates(self, sin: float, sout: float) -> tuple[float, float] | None:
        """Bytes per second in and out since the previous run; None on the first
        run, after a counter reset, or when no time has passed."""
        now = self._clock()
        previous, self._last = self._last, (now, sin, sout)
        if previous is None:
            return None
        elapsed, d_in, d_out = now - previous[0], sin - previous[1], sout - previous[2]
        if elapsed <= 0 or d_in < 0 or d_out < 0:
            return None
        return d_in / elapsed, d_out / elapsed

    def run(self, ctx: RunContext) -> Result:
        sm = self._swap_memory()
        total, used = float(sm.total), float(sm.used)
        rates = self._rates(float(sm.sin), float(sm.sout))
        measurements: list[Measurement] = []
        if total > 0:
            measurements.append(Measurement("used_ratio", max(0.0, min(1.0, used / total))))
        measurements += [Measurement("used_bytes", used), Measurement("total_bytes", total)]
        if rates is not None:
            measurements += [
                Measurement("swap_in_bytes_per_second", rates[0]),
                Measurement("swap_out_bytes_per_second", rates[1]),
            ]
        statuses = {m.name: ctx.judge(m) for m in measurements}
        status = Status.worst(*statuses.values())
        traffic = (
            f"; swapping in {format_rate(rates[0])}, out {format_rate(rates[1])}"
            if rates is not None and (rates[0] > 0 or rates[1] > 0) else ""
        )
        if total <= 0:
            summary = f"No swap configured on {ctx.hostname}{traffic}"
        else:
            ratio = measurements[0].value  # used_ratio, clamped as judged
            limit = limit_note(ctx.evaluator.levels("used_ratio"), statuses["used_ratio"], ratio)
            summary = (
                f"Swap is {used / total:.1%} used on {ctx.hostname}{limit}; "
                f"{format_bytes(used)} of {format_bytes(total)}{traffic}"
            )
        return Result(status, summary, tuple(measurements))
