"""File descriptors: the system-wide table and each process against its own limit.

Two different walls. The kernel's table (``/proc/sys/fs/file-nr``: allocated,
unused, maximum) fails every ``open()`` on the host when full ("VFS: file-max limit
reached"); a single process hits its own ``RLIMIT_NOFILE`` soft limit long before
that ("Too many open files"), which is the common case: a leaking or undersized
service. Both are ratios, so one pair of thresholds fits every host.

Per process, only the worst ratio is a measurement (one series, not one per PID);
the diagnostics list the processes closest to their limit. Processes this agent may
not inspect (another user's, without root) are skipped and counted, not guessed.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from pathlib import Path
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
from patrol.contract.units import format_number, format_ratio

if TYPE_CHECKING:
    from patrol.checks.schemas.fd import FdConfig

FILE_NR = Path("/proc/sys/fs/file-nr")


def read_file_nr(path: Path = FILE_NR) -> tuple[float, float]:
    """(allocated, maximum) from ``file-nr``; unused handles count as allocated, as the
    kernel counts them against ``file-max``."""
    allocated, _unused, maximum = path.read_text(encoding="ascii").split()[:3]
    return float(allocated), float(maximum)


def process_fds(names: list[str] | None) -> tuple[list[dict[str, Any]], int]:
    """Open descriptors and soft limit of every visible process (optionally only those
    whose name matches a glob), and how many could not be read."""
    found: list[dict[str, Any]] = []
    denied = 0
    for proc in psutil.process_iter(["pid", "name"]):
        name = proc.info.get("name") or "?"
        if names and not any(fnmatch.fnmatchcase(name, g) for g in names):
            continue
        try:
            count = proc.num_fds()
            soft, _hard = proc.rlimit(psutil.RLIMIT_NOFILE)
        except psutil.AccessDenied:
            denied += 1
            continue
        except (psutil.NoSuchProcess, psutil.ZombieProcess, OSError):
            continue
        if soft > 0 and soft != psutil.RLIM_INFINITY:
            found.append({"pid": proc.info["pid"], "name": name, "open": count,
                          "limit": soft, "ratio": count / soft})
    return found, denied


class FdCheck:
    """System table used (warning 80 %, critical 90 %) and the process closest to its
    own limit (same defaults)."""

    type: ClassVar[str] = "fd"
    Config: ClassVar[ConfigClass] = config_schema("fd", "FdConfig")
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = (
        MeasurementSpec("used_ratio", "system-wide file handles allocated / fs.file-max",
                        True, 0.80, 0.90, primary=True),
        MeasurementSpec("open_files", "file handles allocated system-wide"),
        MeasurementSpec("max_files", "fs.file-max", higher_is_worse=False),
        MeasurementSpec("process_used_ratio", "the highest share of its RLIMIT_NOFILE soft "
                        "limit any watched process uses", True, 0.80, 0.90),
        MeasurementSpec("process_open_files", "open descriptors of that process"),
    )
    REQUIRES: ClassVar[tuple[str, ...]] = ()
    DIAGNOSTICS: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        config: FdConfig,
        file_nr: Callable[[], tuple[float, float]] = read_file_nr,
        processes: Callable[[list[str] | None], tuple[list[dict[str, Any]], int]] = process_fds,
    ) -> None:
        self.config = config
        self._file_nr = file_nr
        self._processes = processes

    def run(self, ctx: RunContext) -> Result:
        try:
            allocated, maximum = self._file_nr()
        except (OSError, ValueError) as exc:
            raise CheckError(f"cannot read {FILE_NR} on {ctx.hostname}: {exc}; the check "
                             "needs Linux procfs mounted at /proc") from exc
        procs, denied = self._processes(self.config.processes)
        ranked: list[dict[str, Any]] = sorted(procs, key=lambda p: -p["ratio"])
        measurements = [Measurement("used_ratio", allocated / maximum if maximum else 0.0),
                        Measurement("open_files", allocated), Measurement("max_files", maximum)]
        if ranked:
            measurements += [Measurement("process_used_ratio", ranked[0]["ratio"]),
                             Measurement("process_open_files", float(ranked[0]["open"]))]
        judged = {m.name: ctx.judge(m) for m in measurements}
        status = Status.worst(*judged.values())
        system = f"{format_number(allocated)} of {format_number(maximum)} file handles in use"
        if ranked:
            worst = ranked[0]
            limit = limit_note(ctx.evaluator.levels("process_used_ratio"),
                               judged["process_used_ratio"], worst["ratio"])
            process = (f"{worst['name']} (pid {worst['pid']}) has {worst['open']:,} of "
                       f"{worst['limit']:,} descriptors open ({format_ratio(worst['ratio'])})"
                       f"{limit}")
        else:
            process = "no process readable"
        if judged["used_ratio"] >= judged.get("process_used_ratio", Status.OK):
            limit = limit_note(ctx.evaluator.levels("used_ratio"), judged["used_ratio"],
                               measurements[0].value)
            summary = f"{system} on {ctx.hostname}{limit}; {process}"
        else:
            summary = f"{process} on {ctx.hostname}; {system}"
        diagnostics: dict[str, Any] = {"closest_to_limit": ranked[: self.config.top]}
        if denied:
            diagnostics["unreadable_processes"] = denied
        return Result(status, summary, tuple(measurements), diagnostics)
