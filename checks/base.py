"""The check contract: what every inspection check is and returns.

A check is a small class, not a subclass of a fat base:

    class DiskCheck:
        type = "disk"                    # the ``type:`` name in YAML
        Config = config_schema("disk", "DiskConfig")  # checks/schemas/disk.py, a pydantic
                                         # model (subclass of CheckConfig), read lazily
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

Patrol's contract suite (``tests/test_contract.py``) runs every registered type once
against a real target. A plugin supplies its target in the ``patrol.check_targets``
entry-point group, under its type name: a function taking a :class:`ContractLab` and
returning the check's options (without ``name``/``type``), for example
``{"path": str(lab.directory)}``. A plugin without one is reported as skipped, not
failed (see :func:`patrol.checks.registry.contract_target`).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeAlias, cast, runtime_checkable

if TYPE_CHECKING:
    from patrol.checks.config import CheckConfig
    from patrol.checks.thresholds import Evaluator
    from patrol.contract.wire import CheckStatus


#: The annotation of a check's ``Config`` attribute: ``Config: ClassVar[ConfigClass]``.
#: Inside a check class body the name ``type`` is the check's own ``type`` attribute (its
#: ``type:`` name in YAML, kept for plugin authors), not the builtin, so
#: ``type[CheckConfig]`` cannot be spelled there; this alias is spelled outside it.
ConfigClass: TypeAlias = "type[CheckConfig]"


class Status(enum.IntEnum):
    """Check states, with the Nagios plugin exit codes as values.

    The values are exit codes, not a ranking: "worst" goes by :attr:`rank`, where a
    confirmed outage (CRITICAL) outranks "could not look" (UNKNOWN). A full disk next
    to an unreadable NFS mount is a full disk first; ranking UNKNOWN on top would hide
    the real problem behind the blind spot (and send severity "error" for it).
    """

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3

    @property
    def label(self) -> CheckStatus:
        """The name, as the wire schema's status (the member names are its values)."""
        return cast("CheckStatus", self.name)

    @property
    def rank(self) -> int:
        """How bad, for worst-of: OK < WARNING < UNKNOWN < CRITICAL (as Icinga ranks)."""
        return _RANK[self]

    @classmethod
    def worst(cls, *statuses: Status) -> Status:
        return max(statuses, key=_RANK.__getitem__, default=cls.OK)


_RANK = {Status.OK: 0, Status.WARNING: 1, Status.UNKNOWN: 2, Status.CRITICAL: 3}


def also_unknown(summary: str, unknown: Sequence[str]) -> str:
    """``summary`` of the worst real problem, then what could not be looked at:
    "/data is 99.0% full (critical at 95%); also: cannot read /mnt/nfs". One wording
    for every check that judges several items, so a reader finds the blind spots."""
    if not unknown:
        return summary
    shown = "; ".join(unknown[:3])
    more = f" (and {len(unknown) - 3} more)" if len(unknown) > 3 else ""
    return f"{summary}; also: {shown}{more}"


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
    Config: ClassVar[ConfigClass]
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]]
    REQUIRES: ClassVar[tuple[str, ...]]

    def __init__(self, config: Any) -> None:
        """``config``: an instance of the class's ``Config``; a check may take more
        keyword arguments (the world: clocks, paths, runners), all with defaults."""

    def run(self, ctx: RunContext) -> Result: ...


class ContractLab(Protocol):
    """What the contract suite offers a check's target on the test host, all on
    loopback. The service methods skip the test (fail it in CI) when the service is
    missing, so a target asks only for what its check needs."""

    @property
    def directory(self) -> Path:
        """A scratch folder holding ``app.log`` (one line, ``start``) and ``node.prom``
        (the gauge ``backup_age 12``)."""

    @property
    def tcp_port(self) -> int:
        """A port listening on 127.0.0.1 (accepts, says nothing)."""

    @property
    def http_url(self) -> str:
        """``http://127.0.0.1:PORT/``, answering 200 ``hello patrol`` to GET."""

    @property
    def certificate(self) -> Path:
        """A PEM server certificate issued by a throwaway CA."""

    def postgres_dsn(self) -> str: ...

    def mysql(self) -> dict[str, Any]:
        """``host``, ``port`` and ``user`` of a MariaDB/MySQL that needs no password."""

    def redis_url(self) -> str: ...

    def sntp_port(self) -> int:
        """An SNTP responder on 127.0.0.1."""
