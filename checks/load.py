"""Load average, divided by the number of logical CPUs.

A load of 8 is idle on a 64-core machine and a queue on a 2-core one, so the
thresholded numbers are per core. The 5-minute average is the headline: the
1-minute one flaps with every cron job, the 15-minute one reacts too late. Linux
load counts tasks in uninterruptible sleep (usually waiting for disk or NFS) as
well as runnable ones, so high load with an idle CPU points at I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

import psutil

from patrol.checks.base import (
    CheckError,
    ConfigClass,
    Measurement,
    MeasurementSpec,
    Result,
    RunContext,
    Status,
)
from patrol.checks.schemas import config_schema
from patrol.checks.thresholds import limit_note

if TYPE_CHECKING:
    from patrol.checks.schemas.load import LoadConfig


class LoadCheck:
    """5-minute load per core; warning 1.5, critical 3.0 by default."""

    type: ClassVar[str] = "load"
    Config: ClassVar[ConfigClass] = config_schema("load", "LoadConfig")
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = (
        MeasurementSpec("load1_per_core", "1-minute load average divided by logical CPUs"),
        MeasurementSpec("load5_per_core", "5-minute load average divided by logical CPUs",
                        True, 1.5, 3.0, primary=True),
        MeasurementSpec("load15_per_core", "15-minute load average divided by logical CPUs"),
        MeasurementSpec("load1", "1-minute load average"),
        MeasurementSpec("load5", "5-minute load average"),
        MeasurementSpec("load15", "15-minute load average"),
        MeasurementSpec("cores", "logical CPUs"),
    )
    REQUIRES: ClassVar[tuple[str, ...]] = ()
    DIAGNOSTICS: ClassVar[tuple[str, ...]] = ("top_processes",)

    def __init__(
        self,
        config: LoadConfig,
        getloadavg: Callable[[], tuple[float, float, float]] = psutil.getloadavg,
        cpu_count: Callable[[], int | None] = psutil.cpu_count,
    ) -> None:
        self.config = config
        self._getloadavg = getloadavg
        self._count = cpu_count

    def run(self, ctx: RunContext) -> Result:
        try:
            load1, load5, load15 = (float(x) for x in self._getloadavg())
        except OSError as exc:
            raise CheckError(f"cannot read the load average on {ctx.hostname}: {exc}") from exc
        cores = float(self._count() or 1)
        measurements = (
            Measurement("load1_per_core", load1 / cores),
            Measurement("load5_per_core", load5 / cores),
            Measurement("load15_per_core", load15 / cores),
            Measurement("load1", load1),
            Measurement("load5", load5),
            Measurement("load15", load15),
            Measurement("cores", cores),
        )
        statuses = [ctx.judge(m) for m in measurements]
        status = Status.worst(*statuses)
        limit = limit_note(ctx.evaluator.levels("load5_per_core"), statuses[1],
                           measurements[1].value)
        summary = (
            f"Load is {load5 / cores:.2f} per core on {ctx.hostname}{limit}; "
            f"load average {load1:.2f} {load5:.2f} {load15:.2f} over {cores:g} "
            f"core{'s' * (cores != 1)}"
        )
        return Result(status, summary, measurements)

