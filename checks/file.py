"""File age and size: "the backup must be younger than 26h", "the spool is under 1GiB".

``age_seconds`` (now - mtime) is the primary measurement, so the top-level
``warning: 26h`` reads as "warn when older than 26 hours"; size is thresholded
with ``thresholds: {size_bytes: {...}}``. Thresholds point up; for a lower bound on
size (an empty dump is a failed backup) use ``min_size``, a structural CRITICAL.

``path`` may be a glob (``/backups/db-*.dump``): the newest match by mtime is
judged, which is what a rotating backup needs. A missing file (or no glob match)
is CRITICAL with ``must_exist: true`` (the default) and OK otherwise. A file whose
mtime lies in the future (clock skew) has age 0. Errors other than "does not
exist" (permission denied on the directory) are UNKNOWN.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

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
from patrol.checks.thresholds import limit_text
from patrol.contract.units import format_bytes, format_duration

if TYPE_CHECKING:
    from patrol.checks.schemas.file import FileConfig

_GLOB_CHARS = set("*?[")


def _newest(pattern: str) -> tuple[str, os.stat_result] | None:
    """The newest match of a glob (or the path itself), or None if nothing exists."""
    paths = glob.glob(pattern) if _GLOB_CHARS & set(pattern) else [pattern]
    found: list[tuple[float, str, os.stat_result]] = []
    for path in paths:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise CheckError(f"cannot stat {path}: {exc.strerror or exc}") from exc
        found.append((st.st_mtime, path, st))
    if not found:
        return None
    _, path, st = max(found)
    return path, st


class FileCheck:
    """Age and size of one file (or the newest file matching a glob)."""

    type: ClassVar[str] = "file"
    Config: ClassVar[ConfigClass] = config_schema("file", "FileConfig")
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = (
        MeasurementSpec("age_seconds", "seconds since the file was last modified", primary=True),
        MeasurementSpec("size_bytes", "size of the file"),
        MeasurementSpec("exists", "1 if the file (or a glob match) exists, else 0"),
    )
    REQUIRES: ClassVar[tuple[str, ...]] = ()
    DIAGNOSTICS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: FileConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock

    def run(self, ctx: RunContext) -> Result:
        host = ctx.hostname
        pattern = self.config.path
        found = _newest(pattern)
        if found is None:
            gone = Measurement("exists", 0.0)
            ctx.judge(gone)
            what = "no file matches" if _GLOB_CHARS & set(pattern) else "file does not exist:"
            if self.config.must_exist:
                return Result(Status.CRITICAL, f"{what} {pattern} on {host}", (gone,))
            return Result(Status.OK, f"{what} {pattern} on {host} (allowed)", (gone,))
        path, st = found
        age = max(0.0, self._clock() - st.st_mtime)
        measurements = (
            Measurement("age_seconds", age),
            Measurement("size_bytes", float(st.st_size)),
            Measurement("exists", 1.0),
        )
        verdicts = [(ctx.judge(m), m) for m in measurements]
        status = Status.worst(*(s for s, _ in verdicts))
        text = f"{path} is {format_duration(age)} old, {format_bytes(st.st_size)}, on {host}"
        reasons = []
        for verdict, m in verdicts:
            note = limit_text(ctx.evaluator.levels(m.name), verdict, m.value)
            if note:
                reasons.append(f"{m.name.split('_')[0]} {note}")
        min_size = self.config.min_size
        if min_size is not None and st.st_size < min_size:
            status = Status.worst(status, Status.CRITICAL)
            reasons.append(f"smaller than the minimum {format_bytes(min_size)}")
        if reasons:
            text += f" ({'; '.join(reasons)})"
        return Result(status, text, measurements, {"path": path, "mtime": st.st_mtime})
