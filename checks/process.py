"""Process: is the daemon running, how many copies, and how much memory they hold.

Selection is by ``process_name:`` (the exact process name, as ``pgrep -x``; the
option cannot be called ``name:``, which every check entry already uses for its own
name) or by ``pattern:`` (a regular expression searched in the full command line,
as ``pgrep -f``; kernel threads, which have none, are matched on their name),
optionally narrowed to ``user:``. Zombies are dead and do not count; neither does
the agent itself, whose own command line may well contain the pattern.

Decision: how many copies must run is *structural*, not a threshold: ``min:``
(default 1) and ``max:`` (optional). Fewer than ``min`` or more than ``max`` is
CRITICAL ("the thing is broken"), the way a refused port is. ``count`` is still the
primary measurement, so ``warning:``/``critical:`` can flag "too many" softly (a
worker pool that keeps growing) without inventing a lower-is-worse count.
``cpu_ratio`` is CPU seconds per second summed over the matching processes since
the previous run (1.0 = one core busy, as ``top`` shows 100 %); it appears from
the second run on.

Cost: the process table is walked reading only what selects (pid, name, cmdline,
and username when ``user:`` is set); memory, CPU times, start time and status are
read for the matching processes only (``oneshot()``, so /proc/PID/stat is read
once). Reading all eight attributes of every process cost 12-18 ms of CPU per run
on a quiet host; most of it was spent on processes that were then thrown away.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

import psutil

from patrol.checks.base import ConfigClass, Measurement, MeasurementSpec, Result, RunContext, Status
from patrol.checks.schemas import config_schema
from patrol.checks.thresholds import limit_note
from patrol.contract.units import format_bytes

if TYPE_CHECKING:
    from patrol.checks.schemas.process import ProcessConfig

_SELECT = ["pid", "name", "cmdline"]  # read for every process (plus username with user:)
_DETAILS = ["username", "memory_info", "cpu_times", "create_time", "status"]  # matches only
_SHOWN = 10  # matching processes listed in the result's diagnostics


class ProcessCheck:
    """Count of matching processes (CRITICAL outside ``min``..``max``), their RSS and CPU."""

    type: ClassVar[str] = "process"
    Config: ClassVar[ConfigClass] = config_schema("process", "ProcessConfig")
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = (
        MeasurementSpec("count", "matching processes (min:/max: options make the "
                        "structural rule; thresholds flag too many)", primary=True),
        MeasurementSpec("rss_bytes", "resident memory of the matching processes, summed"),
        MeasurementSpec("cpu_ratio", "CPU seconds per second of the matching processes since "
                        "the previous run (1.0 = one core)"),
    )
    REQUIRES: ClassVar[tuple[str, ...]] = ()
    DIAGNOSTICS: ClassVar[tuple[str, ...]] = ("top_processes",)

    def __init__(
        self,
        config: ProcessConfig,
        process_iter: Callable[..., Iterable[Any]] = psutil.process_iter,
        self_pid: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._process_iter = process_iter
        self._self_pid = os.getpid() if self_pid is None else self_pid
        self._clock = clock
        self._regex = re.compile(config.pattern) if config.pattern else None
        self._last_cpu: tuple[float, dict[tuple[int, float], float]] | None = None

    def _matches(self, info: dict[str, Any]) -> bool:
        if info.get("pid") == self._self_pid:
            return False
        if self.config.user is not None and info.get("username") != self.config.user:
            return False
        if self._regex is None:
            return info.get("name") == self.config.process_name
        cmdline = " ".join(info.get("cmdline") or ()) or (info.get("name") or "")
        return self._regex.search(cmdline) is not None

    def _cpu_ratio(self, found: list[dict[str, Any]]) -> float | None:
        """CPU seconds per second since the previous run, over processes seen both times
        (identified by pid and start time, so a recycled pid is a new process)."""
        now = self._clock()
        cpu: dict[tuple[int, float], float] = {}
        for info in found:
            times = info.get("cpu_times")
            if times is not None:
                cpu[(info["pid"], info.get("create_time") or 0.0)] = times.user + times.system
        previous, self._last_cpu = self._last_cpu, (now, cpu)
        if previous is None or now <= previous[0]:
            return None
        spent = sum(max(0.0, v - previous[1][k]) for k, v in cpu.items() if k in previous[1])
        return spent / (now - previous[0])

    def _found(self) -> list[dict[str, Any]]:
        """The matching live processes, each with the selecting and detail attributes
        (``None`` where access is denied); zombies and processes gone meanwhile left out."""
        select = _SELECT + (["username"] if self.config.user is not None else [])
        found = []
        for proc in self._process_iter(attrs=select, ad_value=None):
            if not self._matches(proc.info):
                continue
            try:
                with proc.oneshot():
                    details = proc.as_dict(attrs=_DETAILS, ad_value=None)
            except psutil.NoSuchProcess:  # exited since the walk
                continue
            if details.get("status") != psutil.STATUS_ZOMBIE:
                found.append({**proc.info, **details})
        return found

    def run(self, ctx: RunContext) -> Result:
        found = self._found()
        found.sort(key=lambda i: i["pid"])
        count = len(found)
        rss = float(sum(i["memory_info"].rss for i in found if i.get("memory_info")))
        measurements = [Measurement("count", float(count)), Measurement("rss_bytes", rss)]
        cpu = self._cpu_ratio(found)
        if cpu is not None:
            measurements.append(Measurement("cpu_ratio", cpu))
        statuses = [ctx.judge(m) for m in measurements]
        status = Status.worst(*statuses)
        summary = self._summary(ctx, count, rss, cpu, statuses[0])
        if count < self.config.min or (self.config.max is not None and count > self.config.max):
            status = Status.worst(status, Status.CRITICAL)
        diagnostics = {"processes": [
            {"pid": i["pid"], "user": i.get("username"),
             "rss_bytes": i["memory_info"].rss if i.get("memory_info") else None,
             "cmdline": " ".join(i.get("cmdline") or ())[:200] or i.get("name")}
            for i in found[:_SHOWN]
        ]}
        return Result(status, summary, tuple(measurements), diagnostics)

    def _summary(self, ctx: RunContext, count: int, rss: float, cpu: float | None,
                 count_status: Status) -> str:
        cfg = self.config
        what = f"'{cfg.process_name or cfg.pattern}'"
        if cfg.user is not None:
            what += f" owned by {cfg.user}"
        host = ctx.hostname
        noun = "process" if count == 1 else "processes"
        if count == 0 and cfg.min > 0:
            return f"no process matching {what} on {host}"
        if count < cfg.min:
            return f"only {count} {noun} matching {what} on {host} (expected at least {cfg.min})"
        if cfg.max is not None and count > cfg.max:
            return f"{count} {noun} matching {what} on {host} (expected at most {cfg.max})"
        limit = limit_note(ctx.evaluator.levels("count"), count_status, count)
        usage = f" using {format_bytes(rss)} RSS" if count else ""
        if cpu is not None and count:
            usage += f" and {cpu:.0%} CPU"
        return f"{count} {noun} matching {what} on {host}{limit}{usage}"
