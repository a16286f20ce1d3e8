"""Kernel: OOM kills, hung tasks, I/O and filesystem errors, read-only remounts.

Each run reads the kernel log lines written since the previous run (see
:mod:`checks.kernel_log` for the sources and cursors) and counts the lines of each
kind; the matching lines are the diagnostics, since they name the victim process,
the device or the filesystem. The first run looks back ``lookback`` (default 1 h)
so a one-shot ``patrol check`` or a freshly started agent sees recent trouble
without reporting the whole boot again.

Only lines from the kernel itself count (facility 0): a program writing "I/O error"
into /dev/kmsg is not a disk fault. ``userspace: true`` counts those too.

The patterns are the kernel's own wording: ``Killed process`` (global and cgroup
OOM killer), ``blocked for more than N seconds`` (hung task detector), ``I/O error``
(block layer and buffer cache), ``EXT4-fs error``/XFS corruption/BTRFS errors, and
``Remounting filesystem read-only``/XFS shutdowns.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from patrol.checks import kernel_log
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
from patrol.checks.systemd import run_command
from patrol.checks.thresholds import limit_text
from patrol.contract.units import format_duration

if TYPE_CHECKING:
    from patrol.checks.schemas.kernel import KernelConfig

PATTERNS: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    ("oom_kills", "OOM kill", re.compile(r"\bKilled process \d+|\boom-kill:.*task=")),
    ("hung_tasks", "hung task", re.compile(r"blocked for more than \d+ seconds")),
    ("io_errors", "I/O error", re.compile(
        r"I/O error|critical medium error|blk_update_request: .*error|"
        r"\bata\d+(\.\d+)?: (failed command|exception Emask)|nvme\S*: I/O \d+ .*timeout")),
    ("filesystem_errors", "filesystem error", re.compile(
        r"EXT[234]-fs error|XFS \(.*\): (Corruption|Internal error|metadata I/O error)|"
        r"BTRFS (error|critical)|FAT-fs \(.*\): error|F2FS-fs \(.*\): .*(error|corrupt)")),
    ("readonly_remounts", "read-only remount", re.compile(
        r"[Rr]emounting filesystem read-only|Filesystem has been shut down|"
        r"forced shutdown|switching to read-only")),
)
_PLURALS = {"OOM kill": "OOM kills", "hung task": "hung tasks", "I/O error": "I/O errors",
            "filesystem error": "filesystem errors", "read-only remount": "read-only remounts"}


class KernelCheck:
    """Kernel trouble since the last run: any OOM kill, hung task or I/O error is a
    warning (ten I/O errors critical); any filesystem error or read-only remount is
    critical."""

    type: ClassVar[str] = "kernel"
    Config: ClassVar[ConfigClass] = config_schema("kernel", "KernelConfig")
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = (
        MeasurementSpec("oom_kills", "processes the OOM killer killed since the last run",
                        True, 1, None),
        MeasurementSpec("hung_tasks", "hung-task reports (blocked > 120 s) since the last run",
                        True, 1, None),
        MeasurementSpec("io_errors", "block-device I/O error lines since the last run",
                        True, 1, 10),
        MeasurementSpec("filesystem_errors", "filesystem error lines (ext4, XFS, btrfs, ...) "
                        "since the last run", True, None, 1),
        MeasurementSpec("readonly_remounts", "filesystems remounted read-only or shut down "
                        "since the last run", True, None, 1),
    )
    REQUIRES: ClassVar[tuple[str, ...]] = ()
    DIAGNOSTICS: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        config: KernelConfig,
        readers: dict[str, kernel_log.Reader] | None = None,
        uptime: Callable[[], float] = time.monotonic,
        kmsg_path: str = kernel_log.KMSG,
        journal_has_data: Callable[[], bool] = kernel_log.journal_has_data,
    ) -> None:
        self.config = config
        timeout = config.timeout or 10.0
        self._readers: dict[str, kernel_log.Reader] = readers or {
            "kmsg": lambda cursor: kernel_log.read_kmsg(cursor, kmsg_path),
            "journal": kernel_log.journal_reader(
                run_command, timeout, lambda: time.time() - config.lookback),
            "dmesg": kernel_log.dmesg_reader(run_command, timeout),
        }
        self._kmsg_path = kmsg_path
        self._journal_has_data = journal_has_data
        self._uptime = uptime
        self._ignore = [re.compile(p) for p in config.ignore]
        self._cursor: tuple[str, Any] | None = None  # (source, its cursor)

    def _candidates(self) -> list[str]:
        if self.config.source != "auto":
            return [self.config.source]
        out = []
        if os.access(self._kmsg_path, os.R_OK):
            out.append("kmsg")
        if self._journal_has_data():
            out.append("journal")
        return [*out, "dmesg"]

    def _read(self, hostname: str) -> tuple[str, list[kernel_log.KernelLine], bool]:
        """(source, new lines, whether this is the first read of that source)."""
        errors = []
        for source in self._candidates():
            previous = self._cursor[1] if self._cursor and self._cursor[0] == source else None
            first = previous is None
            try:
                lines, cursor = self._readers[source](previous)
            except OSError as exc:
                what = f"{exc.filename}: " if exc.filename else ""  # e.g. no journalctl
                errors.append(f"{source}: {what}{exc.strerror or exc}")
                continue
            self._cursor = (source, cursor)
            if first:
                since = self._uptime() - self.config.lookback
                lines = [ln for ln in lines if ln.seconds >= since]
            return source, lines, first
        raise CheckError(
            f"cannot read the kernel log on {hostname} ({'; '.join(errors)}); run the agent "
            "as root or with CAP_SYSLOG for /dev/kmsg, add its user to the systemd-journal "
            "group for journalctl -k, or set kernel.dmesg_restrict=0 for dmesg"
        )

    def run(self, ctx: RunContext) -> Result:
        source, lines, first = self._read(ctx.hostname)
        counts = {name: 0 for name, _, _ in PATTERNS}
        matched: list[dict[str, Any]] = []
        for line in lines:
            if line.facility != 0 and not self.config.userspace:
                continue
            if any(rx.search(line.text) for rx in self._ignore):
                continue
            for name, label, rx in PATTERNS:
                if rx.search(line.text):
                    counts[name] += 1
                    matched.append({"kind": label, "seconds_since_boot": round(line.seconds, 3),
                                    "line": line.text[:500]})
                    break
        measurements = tuple(Measurement(name, float(n)) for name, n in counts.items())
        judged = [ctx.judge(m) for m in measurements]
        status = Status.worst(*judged)
        window = f"in the last {format_duration(self.config.lookback)}" if first \
            else "since the last run"
        if not matched:
            summary = f"No kernel problems in the log of {ctx.hostname} {window} ({source})"
            return Result(status, summary, measurements, {"source": source})
        worst = max(range(len(measurements)), key=lambda i: (judged[i], measurements[i].value))
        note = limit_text(ctx.evaluator.levels(measurements[worst].name), judged[worst],
                          measurements[worst].value)
        limit = f" ({PATTERNS[worst][0].replace('_', ' ')}: {note})" if note else ""
        found = [f"{n} {_PLURALS[label] if n != 1 else label}"
                 for (name, label, _), n in zip(PATTERNS, counts.values(), strict=True) if n]
        summary = (f"Kernel log of {ctx.hostname} shows {', '.join(found)} {window}{limit}")
        diagnostics = {"source": source, "lines": matched[-self.config.max_lines:]}
        return Result(status, summary, measurements, diagnostics)
