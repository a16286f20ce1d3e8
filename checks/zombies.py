"""Zombies: defunct processes, and the parents that do not reap them.

A zombie holds no memory or CPU, only a PID and a process-table slot; one that
lingers says its parent is broken (it never calls ``wait()``), and thousands of them
exhaust ``pid_max``. A process is a zombie for a moment after every exit, so only
zombies older than ``min_age`` (default 1 minute) count: a busy host never reports
the ones its parents are about to reap.

The fix is always in the parent (restart or signal it; killing the zombie does
nothing), so the diagnostics group zombies by parent, with the parent's command line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

import psutil

from patrol.checks.base import ConfigClass, Measurement, MeasurementSpec, Result, RunContext, Status
from patrol.checks.schemas import config_schema
from patrol.checks.thresholds import limit_note
from patrol.contract.units import format_duration

if TYPE_CHECKING:
    from patrol.checks.schemas.zombies import ZombiesConfig

_CMDLINE_LIMIT = 200


def _parent(ppid: int) -> dict[str, Any]:
    """What an operator needs to act on a parent: its pid, name and command line."""
    try:
        parent = psutil.Process(ppid)
        with parent.oneshot():
            cmdline = " ".join(parent.cmdline()) or parent.name()
            return {"pid": ppid, "name": parent.name(), "user": parent.username(),
                    "cmdline": cmdline[:_CMDLINE_LIMIT]}
    except (psutil.Error, OSError):
        return {"pid": ppid, "name": "?", "cmdline": "(gone)"}


class ZombiesCheck:
    """Zombies older than ``min_age``; warning 5, critical 50 by default."""

    type: ClassVar[str] = "zombies"
    Config: ClassVar[ConfigClass] = config_schema("zombies", "ZombiesConfig")
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = (
        MeasurementSpec("zombies", "defunct processes older than min_age", True, 5, 50,
                        primary=True),
        MeasurementSpec("oldest_zombie_age_seconds", "how long the oldest counted zombie "
                        "has existed (absent without zombies)"),
        MeasurementSpec("zombie_parents", "distinct parents of the counted zombies"),
    )
    REQUIRES: ClassVar[tuple[str, ...]] = ()
    DIAGNOSTICS: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        config: ZombiesConfig,
        process_iter: Callable[..., Iterable[Any]] = psutil.process_iter,
        parent_of: Callable[[int], dict[str, Any]] = _parent,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._process_iter = process_iter
        self._parent_of = parent_of
        self._clock = clock

    def _zombies(self) -> list[dict[str, Any]]:
        now = self._clock()
        found = []
        for proc in self._process_iter(["pid", "ppid", "name", "status", "create_time"]):
            info = proc.info
            if info.get("status") != psutil.STATUS_ZOMBIE:
                continue
            age = max(0.0, now - (info.get("create_time") or now))
            if age >= self.config.min_age:
                found.append({"pid": info["pid"], "ppid": info.get("ppid") or 0,
                              "name": info.get("name") or "?", "age": age})
        return found

    def run(self, ctx: RunContext) -> Result:
        zombies = self._zombies()
        by_parent: dict[int, list[dict[str, Any]]] = {}
        for z in zombies:
            by_parent.setdefault(z["ppid"], []).append(z)
        measurements = [Measurement("zombies", float(len(zombies))),
                        Measurement("zombie_parents", float(len(by_parent)))]
        if zombies:
            measurements.append(Measurement("oldest_zombie_age_seconds",
                                            max(z["age"] for z in zombies)))
        statuses = [ctx.judge(m) for m in measurements]
        status = Status.worst(*statuses)
        limit = limit_note(ctx.evaluator.levels("zombies"), statuses[0], float(len(zombies)))
        age = format_duration(self.config.min_age)
        if not zombies:
            return Result(status, f"No zombie processes older than {age} on {ctx.hostname}",
                          tuple(measurements))
        ranked = sorted(by_parent.items(), key=lambda kv: -len(kv[1]))
        parents = [{**self._parent_of(ppid), "zombies": len(children),
                    "zombie_pids": sorted(z["pid"] for z in children)[:20],
                    "zombie_names": sorted({z["name"] for z in children})}
                   for ppid, children in ranked[: self.config.top]]
        head = parents[0]
        summary = (
            f"{len(zombies)} zombie process{'es' * (len(zombies) != 1)} on {ctx.hostname}"
            f"{limit}; {head['zombies']} from parent {head['name']} (pid {head['pid']}), "
            f"oldest {format_duration(measurements[2].value)}"
        )
        return Result(status, summary, tuple(measurements), {"parents": parents})
