"""The one shared threshold evaluation every check uses.

Effective thresholds for a measurement are layered, most specific last:

1. the check type's defaults (``MeasurementSpec.warning`` / ``critical``);
2. for the primary measurement, the entry's top-level ``warning`` / ``critical`` /
   ``recover``;
3. ``thresholds: {measurement: {...}}`` in the entry;
4. for the primary measurement, the first ``overrides: {glob: {...}}`` whose glob
   matches the measurement's item (a mount point, a unit, a database).

Hysteresis: once a measurement has breached, it counts as OK again only when it
crosses ``recover``; until then it stays at WARNING (or at its previous level when
no warning level is set). That state lives in the :class:`Evaluator`, one per check.

Summaries quote the level a measurement crossed with :func:`limit_note`, the one
place that words it (" (critical at 95%)", " (recovers at 80%)" while hysteresis holds
an alert), so every check says it the same way.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from patrol.checks.base import Measurement, MeasurementSpec, Status
from patrol.checks.values import Limit
from patrol.contract.units import format_limit

if TYPE_CHECKING:  # the models validate in the child; the agent judges with plain data
    from patrol.checks.config import CheckConfig, ThresholdSet

_LEVELS = ("warning", "critical", "recover")


@dataclass(frozen=True, slots=True)
class Levels:
    """Effective thresholds for one measurement instance, in base ``unit``."""

    warning: float | None
    critical: float | None
    recover: float | None
    higher_is_worse: bool
    unit: str = "count"

    def breached(self, value: float, limit: float | None) -> bool:
        if limit is None:
            return False
        return value >= limit if self.higher_is_worse else value <= limit

    def status(self, value: float) -> Status:
        if self.breached(value, self.critical):
            return Status.CRITICAL
        if self.breached(value, self.warning):
            return Status.WARNING
        return Status.OK

    def recovered(self, value: float) -> bool:
        if self.recover is None:
            return True
        return value < self.recover if self.higher_is_worse else value > self.recover

    def limit_for(self, status: Status) -> float | None:
        """The level ``status`` stands for (``critical`` for CRITICAL, ``warning`` for
        WARNING); None for OK/UNKNOWN or when that level is not set."""
        if status is Status.CRITICAL:
            return self.critical
        if status is Status.WARNING:
            return self.warning
        return None


def limit_text(
    levels: Levels | None, status: Status, value: float,
    fmt: Callable[[float], str] | None = None,
) -> str:
    """"critical at 95%" for the level ``value`` crossed to get ``status``; "" when OK.

    A measurement held at WARNING/CRITICAL by hysteresis (back past the level but not
    yet past ``recover``) says "recovers at 80%" instead of quoting a level it no longer
    crosses. ``fmt`` shows a number in the measurement's unit; by default
    :func:`patrol.contract.units.format_limit` for ``levels.unit``. For callers that combine
    several notes in one parenthesis; :func:`limit_note` is the usual form.
    """
    if levels is None or status not in (Status.WARNING, Status.CRITICAL):
        return ""
    show = fmt or (lambda v: format_limit(v, levels.unit))
    limit = levels.limit_for(status)
    if limit is None or not levels.breached(value, limit):
        return f"recovers at {show(levels.recover)}" if levels.recover is not None else ""
    return f"{status.name.lower()} at {show(limit)}"


def limit_note(
    levels: Levels | None, status: Status, value: float,
    fmt: Callable[[float], str] | None = None,
) -> str:
    """:func:`limit_text` as a summary suffix: " (critical at 95%)", or ""."""
    text = limit_text(levels, status, value, fmt)
    return f" ({text})" if text else ""


def _overlay(levels: dict[str, float | None], ts: ThresholdSet | CheckConfig | Any) -> None:
    """The levels ``ts`` names (a threshold set, or the check's own top-level keys)."""
    for level in _LEVELS:
        if level in ts.model_fields_set:
            limit: Limit | None = getattr(ts, level)
            levels[level] = None if limit is None else limit.value


class Evaluator:
    """Judges measurements of one check against its layered thresholds.

    Thread-safe: a check's runs never overlap (``max_instances=1``), but ``patrol
    check`` and the agent's status API may read while a run writes.
    """

    def __init__(self, config: CheckConfig, specs: tuple[MeasurementSpec, ...]) -> None:
        self._config = config
        self._specs = {spec.name: spec for spec in specs}
        self._previous: dict[str, Status] = {}
        self._lock = threading.Lock()

    def levels(self, name: str, item: str = "") -> Levels | None:
        spec = self._specs.get(name)
        if spec is None:
            return None
        levels: dict[str, float | None] = {
            "warning": spec.warning,
            "critical": spec.critical,
            "recover": None,
        }
        if spec.primary:
            _overlay(levels, self._config)
        if name in self._config.thresholds:
            _overlay(levels, self._config.thresholds[name])
        if spec.primary and item:
            for pattern, override in self._config.overrides.items():
                if fnmatch.fnmatchcase(item, pattern):
                    _overlay(levels, override)
                    break
        return Levels(higher_is_worse=spec.higher_is_worse, unit=spec.unit, **levels)

    def judge(self, measurement: Measurement) -> Status:
        levels = self.levels(measurement.name, measurement.item)
        if levels is None:
            return Status.OK
        status = levels.status(measurement.value)
        with self._lock:
            previous = self._previous.get(measurement.key, Status.OK)
            if (
                status is Status.OK
                and previous in (Status.WARNING, Status.CRITICAL)
                and not levels.recovered(measurement.value)
            ):
                status = Status.WARNING if levels.warning is not None else previous
            self._previous[measurement.key] = status
        return status


_UNIT_KINDS = {
    "ratio": {"percent", "number"},
    "seconds": {"duration", "number"},
    "bytes": {"size", "number"},
    "bytes_per_second": {"size", "number"},
    "count": {"number"},
    "celsius": {"number"},
}
_KIND_EXAMPLE = {
    "ratio": "a percentage such as 85% (or a ratio such as 0.85)",
    "seconds": "a duration such as 500ms, 30s or 14d",
    "bytes": "a size such as 512MiB or 2GB",
    "bytes_per_second": "a size per second such as 1MiB (or a plain number of bytes)",
    "count": "a plain number",
    "celsius": "a plain number of degrees",
}


Location = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class _Level:
    """One effective level while validating: its value, how to show it, and whether
    the layer being checked wrote it (only a layer's own keys are blamed)."""

    value: float
    text: str
    here: bool


def _layer(levels: dict[str, _Level | None], ts: object, here: bool,
           fields_set: set[str]) -> dict[str, _Level | None]:
    out = dict(levels)
    for level in _LEVELS:
        if level in fields_set:
            limit: Limit | None = getattr(ts, level)
            out[level] = None if limit is None else _Level(limit.value, limit.text, here)
    return out


def _order_problems(loc: Location, spec: MeasurementSpec,
                    levels: dict[str, _Level | None]) -> list[tuple[Location, str]]:
    """Levels that point the wrong way for ``spec``'s direction: a warning past the
    critical level can never fire, and a recover level on the alerting side of the
    warning clears every alert at once. Reported at the key this layer wrote."""
    warning, critical, recover = (levels[k] for k in _LEVELS)
    higher = spec.higher_is_worse
    side, direction = ("below", "higher") if higher else ("above", "lower")

    def better(a: _Level, b: _Level) -> bool:  # ``a`` is strictly on the healthy side of ``b``
        return a.value < b.value if higher else a.value > b.value

    out: list[tuple[Location, str]] = []
    if warning is not None and critical is not None and not better(warning, critical) and (
            warning.here or critical.here):
        key = "warning" if warning.here else "critical"
        out.append(((*loc, key), f"warning {warning.text} is not {side} critical "
                    f"{critical.text}, so the warning level can never fire; {spec.name} is "
                    f"worse when {direction}: set warning {side} critical"))
    alert_key = "warning" if warning is not None else "critical"
    alert = warning if warning is not None else critical
    if recover is not None and alert is not None and not better(recover, alert) and (
            recover.here or alert.here):
        key = "recover" if recover.here else alert_key
        out.append(((*loc, key), f"recover {recover.text} is not {side} {alert_key} "
                    f"{alert.text}, so an alert would clear the moment it is raised; "
                    f"{spec.name} is worse when {direction}: set recover {side} {alert_key}"))
    return out


def problems(
    config: CheckConfig, specs: tuple[MeasurementSpec, ...]
) -> list[tuple[Location, str]]:
    """Threshold mistakes a model cannot see alone: unknown measurement names,
    thresholds on a check with nothing to threshold, units that do not fit
    (``85%`` on a byte count), and levels in the wrong order for the measurement's
    direction (``warning: 95%`` with ``critical: 85%`` on a disk), judged on the
    effective levels each layer produces. Returns ``(location, message)`` pairs."""
    from difflib import get_close_matches

    by_name = {spec.name: spec for spec in specs}
    primary = next((spec for spec in specs if spec.primary), None)
    out: list[tuple[Location, str]] = []

    def check_set(loc: Location, spec: MeasurementSpec, ts: object) -> bool:
        """Unit problems of one layer; True when its levels are all usable numbers."""
        before = len(out)
        for level in _LEVELS:
            limit: Limit | None = getattr(ts, level)
            if limit is None:
                continue
            if limit.kind not in _UNIT_KINDS[spec.unit]:
                out.append(
                    (
                        (*loc, level),
                        f"{limit.text!r} does not fit {spec.name} (measured in {spec.unit}); "
                        f"write {_KIND_EXAMPLE[spec.unit]}",
                    )
                )
            elif spec.unit == "ratio" and limit.kind == "number" and not 0 <= limit.value <= 1:
                out.append(
                    (
                        (*loc, level),
                        f"{limit.text} is not a ratio between 0 and 1; "
                        f"write {limit.value:g}% if you meant a percentage",
                    )
                )
        return len(out) == before

    def defaults(spec: MeasurementSpec) -> dict[str, _Level | None]:
        return {"warning": None if spec.warning is None else
                _Level(spec.warning, format_limit(spec.warning, spec.unit), False),
                "critical": None if spec.critical is None else
                _Level(spec.critical, format_limit(spec.critical, spec.unit), False),
                "recover": None}

    def check_layer(loc: Location, spec: MeasurementSpec, below: dict[str, _Level | None],
                    ts: object, fields_set: set[str]) -> bool:
        usable = check_set(loc, spec, ts)
        if usable:
            out.extend(_order_problems(loc, spec, _layer(below, ts, True, fields_set)))
        return usable

    top_set = {k for k in _LEVELS if k in config.model_fields_set}
    primary_levels: dict[str, _Level | None] = {}
    if top_set and primary is None:
        key = sorted(top_set)[0]
        out.append(
            (
                (key,),
                f"type '{config.type}' has no primary measurement to threshold; "
                f"use thresholds: with one of {', '.join(sorted(by_name)) or 'none'}",
            )
        )
    elif primary is not None:
        primary_levels = defaults(primary)
        if check_layer((), primary, primary_levels, config, top_set):
            primary_levels = _layer(primary_levels, config, False, top_set)
    for name, ts in config.thresholds.items():
        spec = by_name.get(name)
        if spec is None:
            hint = get_close_matches(name, list(by_name), n=1, cutoff=0.5)
            did = f"did you mean '{hint[0]}'?" if hint else (
                f"known: {', '.join(sorted(by_name))}" if by_name else "this type has none"
            )
            out.append((("thresholds", name), f"unknown measurement; {did}"))
            continue
        below = primary_levels if spec is primary else defaults(spec)
        check_layer(("thresholds", name), spec, below, ts, set(ts.model_fields_set))
    if config.overrides and primary is None:
        out.append(
            (("overrides",), f"type '{config.type}' has no per-instance measurement to override")
        )
    elif primary is not None:
        below = primary_levels
        if primary.name in config.thresholds:
            own = config.thresholds[primary.name]
            below = _layer(primary_levels, own, False, set(own.model_fields_set))
        for pattern, ts in config.overrides.items():
            check_layer(("overrides", pattern), primary, below, ts, set(ts.model_fields_set))
    return out
