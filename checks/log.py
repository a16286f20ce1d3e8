"""Log pattern: count the lines matching a regex appended since the previous run.

``matches`` is a count per run interval, so the default (warning at 1 match, no
critical) alerts on any new match and recovers on the next quiet interval. The
first run starts at the end of the file (``start_at_end``), so old history does
not alert when the agent starts. Rotation and truncation are handled by
:class:`checks.log_tail.LogTail`.

A missing or unreadable file is UNKNOWN (``CheckError``: "cannot read"), not
CRITICAL: the log is the witness, not the thing monitored; if the file's absence
itself matters, add a ``file`` check. After a rotation that has not recreated the
file yet, the old file is still read and the run is not an error.

The read position lives in the check instance only (no state file): after an agent
restart the check starts at the end again, so lines written while the agent was
down are not counted. That trades a possible missed match for never re-alerting on
history.
"""

from __future__ import annotations

import re
from collections import deque
from typing import TYPE_CHECKING, Any, ClassVar

from patrol.checks.base import (
    CheckError,
    ConfigClass,
    Measurement,
    MeasurementSpec,
    Result,
    RunContext,
    Status,
)
from patrol.checks.log_tail import LogTail
from patrol.checks.schemas import config_schema
from patrol.contract.units import format_bytes

if TYPE_CHECKING:
    from patrol.checks.schemas.log import LogConfig

KEEP_LINES = 20
LINE_CHARS = 500


class LogCheck:
    """New lines matching ``pattern`` (and not ``ignore``) per run."""

    type: ClassVar[str] = "log"
    Config: ClassVar[ConfigClass] = config_schema("log", "LogConfig")
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = (
        MeasurementSpec(
            "matches", "new lines matching the pattern since the previous run",
            True, 1, None, primary=True,
        ),
        MeasurementSpec("lines_read", "complete new lines read since the previous run"),
    )
    REQUIRES: ClassVar[tuple[str, ...]] = ()
    DIAGNOSTICS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: LogConfig) -> None:
        self.config = config
        self._pattern = re.compile(config.pattern)
        self._ignore = re.compile(config.ignore) if config.ignore else None
        self._tail = LogTail(config.path, config.start_at_end, int(config.max_read))

    def run(self, ctx: RunContext) -> Result:
        path = self.config.path
        try:
            chunk = self._tail.read()
        except FileNotFoundError:
            raise CheckError(f"cannot read log file {path}: it does not exist") from None
        except OSError as exc:
            raise CheckError(f"cannot read log file {path}: {exc.strerror or exc}") from exc
        count = 0
        last: deque[str] = deque(maxlen=KEEP_LINES)
        for raw in chunk.lines:
            line = raw.decode(self.config.encoding, "replace")
            if self._pattern.search(line) and not (self._ignore and self._ignore.search(line)):
                count += 1
                last.append(line[:LINE_CHARS])
        measurements = (
            Measurement("matches", float(count)),
            Measurement("lines_read", float(len(chunk.lines))),
        )
        status = Status.worst(*(ctx.judge(m) for m in measurements))
        diagnostics: dict[str, Any] = {"match_count": count, "matching_lines": list(last)}
        notes = []
        if chunk.rotated:
            notes.append("rotated")
            diagnostics["rotated"] = True
        if chunk.truncated:
            notes.append("truncated")
            diagnostics["truncated"] = True
        if chunk.skipped_bytes:
            notes.append(f"skipped {format_bytes(chunk.skipped_bytes)} over the read limit")
            diagnostics["skipped_bytes"] = chunk.skipped_bytes
        note = f" ({', '.join(notes)})" if notes else ""
        where = f"matching {self.config.pattern!r} in {path} on {ctx.hostname}"
        if count:
            noun = "line" if count == 1 else "lines"
            summary = f"{count} new {noun} {where}{note}: {last[-1][:120]}"
        elif chunk.first and self.config.start_at_end:
            summary = f"no new lines {where} (started at the end of the file)"
        else:
            summary = f"no new lines {where} ({len(chunk.lines)} lines read){note}"
        return Result(status, summary, measurements, diagnostics)
