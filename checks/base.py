"""The check contract: what every inspection check is and returns.

A check is a small class, not a subclass of a fat base:

    class DiskCheck:
        type = "disk"                    # the ``type:`` name in YAML
        Config = DiskConfig              # a pydantic model, subclass of CheckConfig
        MEASUREMENTS = (MeasurementSpec("used_ratio", ...), ...)
        REQUIRES = ()                    # importable modules it needs (drivers)

        def __init__(self, config: DiskConfig, **world) -> None: ...
        def run(self, ctx: RunContext) -> Result: ...
        def diagnose(self, result: Result) -> dict   # optional

Three steps, after nagiosplugin: *acquire* numbers in base units, *evaluate* them
with the one shared threshold function (``ctx.judge``), *present* one summary line
that could be a ticket title ("/var is 93.4% full on db-01").

``diagnose`` gathers kind-specific evidence (sessions, largest directories) when the
check's hard state leaves OK or worsens. It takes no budget: the agent runs it under
its time and size budgets and redacts secrets centrally; it must return JSON-able data.

"Could not find out" is UNKNOWN (raise :class:`CheckError`, or any exception: the
runner maps it); "the thing is broken" (port refused, unit failed) is CRITICAL.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    from checks.config import CheckConfig
    from checks.thresholds import Evaluator


class Status(enum.IntEnum):
    """Check states, with the Nagios plugin exit codes as values.

    Ordered by value, so ``max()`` is the worst: UNKNOWN (could not look) outranks
    CRITICAL, as in nagiosplugin and in ``patrol check``'s exit code.
    """

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3

    @property
    def label(self) -> str:
        return self.name

    @classmethod
    def worst(cls, *statuses: Status) -> Status:
        return max(statuses, default=cls.OK)


class CheckError(Exception):
    """The check could not find out: becomes UNKNOWN with this message as summary."""


@dataclass(frozen=True, slots=True)
class MeasurementSpec:
    """Declares one measurement a check emits, once, with its unit in the name.

    ``higher_is_worse`` says which way thresholds point (``used_ratio`` up is bad;
    ``days_left``-style ``expiry_seconds`` down is bad). ``warning``/``critical`` are
    defaults in base units; ``None`` means no threshold unless the config sets one.
    ``primary`` marks the measurement that the top-level ``warning``/``critical``
    keys of a check entry apply to.
    """

    name: str
    description: str
    higher_is_worse: bool = True
    warning: float | None = None
    critical: float | None = None
    primary: bool = False

    @property
    def unit(self) -> str:
        """The base unit, read off the name suffix (Prometheus convention)."""
        for suffix, unit in _UNIT_SUFFIXES:
            if self.name.endswith(suffix):
                return unit
        return "count"


_UNIT_SUFFIXES = (
    ("_ratio", "ratio"),
    # Before "_seconds": a rate such as swap_in_bytes_per_second is not a duration.
    ("_bytes_per_second", "bytes_per_second"),
    ("_seconds", "seconds"),
    ("_bytes", "bytes"),
    ("_celsius", "celsius"),
)


@dataclass(frozen=True, slots=True)
class Measurement:
    """One number in base units; ``item`` names the instance (a mount, a unit, a db)."""

    name: str
    value: float
    item: str = ""

    @property
    def key(self) -> str:
        return f"{self.name}[{self.item}]" if self.item else self.name

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "value": self.value}
        if self.item:
            out["item"] = self.item
        return out


@dataclass(frozen=True, slots=True)
class Result:
    """What one run of a check found.

    ``status`` already includes threshold evaluation. ``diagnostics`` holds what the
    check itself saw (an HTTP body excerpt, a plugin's long output); the agent adds
    the at-breach diagnostics (top processes, recent changes) separately.
    """

    status: Status
    summary: str
    measurements: tuple[Measurement, ...] = ()
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def measurement(self, name: str, item: str = "") -> float | None:
        for m in self.measurements:
            if m.name == name and m.item == item:
                return m.value
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.name,
            "status_code": int(self.status),
            "summary": self.summary,
            "measurements": [m.as_dict() for m in self.measurements],
            "diagnostics": self.diagnostics,
        }


@dataclass(frozen=True, slots=True)
class RunContext:
    """The world a run sees: host name, and the threshold evaluator for this check.

    ``judge`` carries hysteresis state between runs of the same check, so a check
    needs no memory of its own for thresholds.
    """

    hostname: str
    evaluator: Evaluator

    def judge(self, measurement: Measurement) -> Status:
        return self.evaluator.judge(measurement)


@runtime_checkable
class Check(Protocol):
    """Structural type of a check class instance (see module docstring)."""

    type: ClassVar[str]
    Config: ClassVar[type[CheckConfig]]
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]]
    REQUIRES: ClassVar[tuple[str, ...]]

    def run(self, ctx: RunContext) -> Result: ...
