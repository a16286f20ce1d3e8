"""Memory: how much RAM is spoken for, counting reclaimable page cache as free.

``used_ratio`` is ``(total - available) / total`` from ``psutil.virtual_memory()``,
the kernel's ``MemAvailable`` estimate, not ``MemFree``: page cache and reclaimable
slab are free for practical purposes, so a host full of cache is not "out of memory".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

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
from patrol.contract.units import format_bytes

if TYPE_CHECKING:
    from patrol.checks.schemas.memory import MemoryConfig


class MemoryCheck:
    """RAM used (excluding reclaimable cache); warning 90 %, critical 95 % by default."""

    type: ClassVar[str] = "memory"
    Config: ClassVar[ConfigClass] = config_schema("memory", "MemoryConfig")
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = (
        MeasurementSpec(
            "used_ratio", "share of RAM not available to new work: (total - available) / total",
            True, 0.90, 0.95, primary=True,
        ),
        MeasurementSpec("available_bytes", "RAM available without swapping (MemAvailable)",
                        higher_is_worse=False),
        MeasurementSpec("total_bytes", "installed RAM visible to the kernel"),
    )
    REQUIRES: ClassVar[tuple[str, ...]] = ()
    DIAGNOSTICS: ClassVar[tuple[str, ...]] = ("top_processes",)

    def __init__(
        self,
        config: MemoryConfig,
        virtual_memory: Callable[[], Any] = psutil.virtual_memory,
    ) -> None:
        self.config = config
        self._virtual_memory = virtual_memory

    def run(self, ctx: RunContext) -> Result:
        vm = self._virtual_memory()
        total, available = float(vm.total), float(vm.available)
        if total <= 0:
            raise CheckError(f"the kernel reports no memory on {ctx.hostname}")
        used = max(0.0, min(1.0, (total - available) / total))
        measurements = (
            Measurement("used_ratio", used),
            Measurement("available_bytes", available),
            Measurement("total_bytes", total),
        )
        statuses = [ctx.judge(m) for m in measurements]
        status = Status.worst(*statuses)
        limit = limit_note(ctx.evaluator.levels("used_ratio"), statuses[0], used)
        summary = (
            f"Memory is {used:.1%} used on {ctx.hostname}{limit}; "
            f"{format_bytes(available)} available of {format_bytes(total)}"
        )
        return Result(status, summary, measurements)
