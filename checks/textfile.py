"""Prometheus text file: one series' value from a ``.prom`` file, thresholded.

Made for node_exporter's textfile-collector directory, where cron jobs drop
``backup_last_size_bytes 1.2e9`` and friends. ``metric`` is the sample name as
written in the file (with ``_total``/``_count`` suffixes); ``match_labels`` picks
one series when several share the name (``labels`` is already the check's own
labels). Parsing uses ``prometheus_client.parser``.

Measurements:

* ``value`` (primary): the sample, thresholds pointing **up** (``warning: 100``
  warns at 100 or more).
* ``value_below``: the same sample, thresholds pointing **down**; set it as
  ``thresholds: {value_below: {warning: 10}}`` to warn at 10 or less. It is only
  emitted when configured, so the number is not exported twice. (A measurement's
  direction is declared per class, so the two directions are two names.)
* ``age_seconds``: seconds since the file was modified (no default thresholds).

Staleness: with ``stale_after``, a file older than that is CRITICAL: the producing
job has stopped, which needs a person as much as a bad value does, and its last
value can no longer be trusted. A missing file, a parse error (reported with its
line number and text), a missing series (reported with the names that *are*
there) or an ambiguous match is UNKNOWN.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from difflib import get_close_matches
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
from patrol.checks.schemas import config_schema
from patrol.checks.thresholds import limit_text
from patrol.contract.units import format_duration

if TYPE_CHECKING:
    from patrol.checks.schemas.textfile import TextfileConfig

MAX_FILE = 16 * 1024 * 1024


Sample = tuple[str, dict[str, str], float]
# The parser raises ValueError; the others guard against its internals on odd input.
_PARSE_ERRORS = (ValueError, TypeError, IndexError, KeyError)


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def parse_samples(text: str, path: str) -> list[Sample]:
    """Every sample in the file as (name, labels, value); raises CheckError that
    names the first line the parser rejects."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        return [
            (s.name, dict(s.labels), float(s.value))
            for family in text_string_to_metric_families(text)
            for s in family.samples
        ]
    except _PARSE_ERRORS as exc:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                list(text_string_to_metric_families(line + "\n"))
            except _PARSE_ERRORS as line_exc:
                raise CheckError(
                    f"cannot parse {path} line {number}: {line[:200]!r} ({line_exc})"
                ) from exc
        raise CheckError(f"cannot parse {path}: {exc}") from exc


class TextfileCheck:
    """One series from a Prometheus text exposition file."""

    type: ClassVar[str] = "textfile"
    Config: ClassVar[ConfigClass] = config_schema("textfile", "TextfileConfig")
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = (
        MeasurementSpec("value", "the series' value (thresholds point up)", primary=True),
        MeasurementSpec("value_below", "the series' value (thresholds point down)",
                        higher_is_worse=False),
        MeasurementSpec("age_seconds", "seconds since the file was last modified"),
    )
    REQUIRES: ClassVar[tuple[str, ...]] = ("prometheus_client",)
    DIAGNOSTICS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: TextfileConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock

    def _read(self) -> tuple[str, float]:
        path = self.config.path
        try:
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                data = fh.read(MAX_FILE + 1)
        except FileNotFoundError:
            raise CheckError(f"cannot read textfile {path}: it does not exist") from None
        except OSError as exc:
            raise CheckError(f"cannot read textfile {path}: {exc.strerror or exc}") from exc
        if len(data) > MAX_FILE:
            raise CheckError(f"textfile {path} is larger than {MAX_FILE >> 20} MiB")
        return data.decode("utf-8", "replace"), st.st_mtime

    def _pick(self, samples: list[Sample]) -> Sample:
        cfg = self.config
        named = [s for s in samples if s[0] == cfg.metric]
        if not named:
            names = sorted({s[0] for s in samples})
            hint = get_close_matches(cfg.metric, names, n=1)
            did = f"did you mean '{hint[0]}'? " if hint else ""
            listed = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
            raise CheckError(
                f"no series '{cfg.metric}' in {cfg.path}; {did}series there: {listed or 'none'}"
            )
        picked = [s for s in named if all(s[1].get(k) == v for k, v in cfg.match_labels.items())]
        sets = ", ".join(_labels(s[1]) for s in named[:10])
        if not picked:
            raise CheckError(
                f"no series '{cfg.metric}{_labels(cfg.match_labels)}' in {cfg.path}; "
                f"label sets there: {sets}"
            )
        if len(picked) > 1:
            raise CheckError(
                f"{len(picked)} series '{cfg.metric}' in {cfg.path} match; "
                f"add match_labels to pick one of: {sets}"
            )
        return picked[0]

    def run(self, ctx: RunContext) -> Result:
        cfg = self.config
        text, mtime = self._read()
        age = max(0.0, self._clock() - mtime)
        name, labels, value = self._pick(parse_samples(text, cfg.path))
        if math.isnan(value):
            raise CheckError(f"{name}{_labels(labels) if labels else ''} in {cfg.path} is NaN")
        measurements = [Measurement("value", value), Measurement("age_seconds", age)]
        if "value_below" in cfg.thresholds:
            measurements.append(Measurement("value_below", value))
        status = Status.worst(*(ctx.judge(m) for m in measurements))
        series = f"{name}{_labels(labels) if labels else ''}"
        summary = f"{series} is {value:g} on {ctx.hostname}"
        notes = []
        for m in measurements:
            # The level crossed right now (not a state held by hysteresis), shown the way
            # the headline shows the value: "value critical at below 4096".
            levels = ctx.evaluator.levels(m.name)
            crossed = levels.status(m.value) if levels else Status.OK
            side = "below " if m.name == "value_below" else ""
            fmt = None if m.name == "age_seconds" else (lambda v, side=side: f"{side}{v:g}")
            note = limit_text(levels, crossed, m.value, fmt)
            if note:
                notes.append(f"{'file age' if m.name == 'age_seconds' else 'value'} {note}")
        if cfg.stale_after is not None and age > cfg.stale_after:
            status = Status.worst(status, Status.CRITICAL)
            notes.append(
                f"stale: {cfg.path} not updated for {format_duration(age)}, "
                f"limit {format_duration(cfg.stale_after)}"
            )
        if notes:
            summary += f" ({'; '.join(notes)})"
        diagnostics: dict[str, Any] = {"path": cfg.path, "series": series, "mtime": mtime}
        return Result(status, summary, tuple(measurements), diagnostics)
