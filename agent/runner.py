"""Run one check, bounded: a timeout, and any crash or hang becomes UNKNOWN.

Each run gets its own daemon thread and the caller waits at most the check's
timeout. Python cannot kill a thread, so a hung run is abandoned, not stopped; the
runner remembers it and refuses to start another run of the same check while it
is still stuck (reporting UNKNOWN instead), so one wedged check costs one thread,
never the pool, and never delays the others.

The runner is also where data leaves a check, so it is the redaction boundary: every
result (summary, measurement items, the check's own diagnostics, the UNKNOWN text of a
crash or timeout) passes through the agent's :class:`~agent.diagnostics.redact.Policy`
plus the check's own ``Secret`` options before anyone (log, state table, metrics,
status API, outbox, ``patrol check``) sees it. A check cannot forget to clean up.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from patrol.agent.diagnostics.redact import Policy
from patrol.checks.base import Check, CheckError, Measurement, Result, RunContext, Status
from patrol.checks.thresholds import Evaluator
from patrol.checks.values import Secret, field_names
from patrol.contract.units import format_duration

if TYPE_CHECKING:
    from patrol.checks.config import CheckConfig

MAX_TRACEBACK = 4000
# Checks that enforce their own deadline (plugins, sockets, database connects) get a
# moment past it to report their specific reason before the generic timeout applies.
GRACE_SECONDS = 0.5


def _unknown(summary: str, **diagnostics: Any) -> Result:
    return Result(Status.UNKNOWN, summary, (), diagnostics)


def config_secrets(config: Any) -> set[str]:
    """Every ``Secret`` value among a check's options (nested in dicts and lists too)."""
    found: set[str] = set()

    def visit(value: Any) -> None:
        if isinstance(value, Secret):
            if value.reveal():
                found.add(value.reveal())
        elif isinstance(value, dict):
            for item in value.values():
                visit(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                visit(item)

    for name in field_names(config):
        visit(getattr(config, name, None))
    return found


def redacted(result: Result, policy: Policy) -> Result:
    """``result`` as it may leave the check: everything textual masked by ``policy``."""
    return Result(
        result.status, policy.text(result.summary),
        tuple(Measurement(m.name, m.value, policy.text(m.item)) if m.item else m
              for m in result.measurements),
        policy.data(result.diagnostics) if result.diagnostics else {})


class CheckRunner:
    """Owns one configured check instance, its threshold state and its timeout."""

    def __init__(
        self,
        config: CheckConfig,
        cls: type[Check] | None,
        hostname: str,
        default_timeout: float,
        unavailable: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        policy: Policy | None = None,
    ) -> None:
        self.config = config
        self.policy = (policy or Policy()).merged(config_secrets(config))
        self.cls = cls
        self.hostname = hostname
        self.timeout = config.timeout or min(default_timeout, config.interval or default_timeout)
        self._clock = clock
        self._hung: tuple[threading.Thread, float] | None = None
        self._unavailable = unavailable
        self.instance: Any = None
        self.context: RunContext | None = None
        if cls is not None and unavailable is None:
            try:
                self.instance = cls(config)
                self.context = RunContext(hostname, Evaluator(config, cls.MEASUREMENTS))
            except Exception as exc:  # a check's constructor must not take the agent down
                self._unavailable = f"could not set up the check: {type(exc).__name__}: {exc}"

    @property
    def diagnostics_extras(self) -> tuple[str, ...]:
        return tuple(getattr(self.cls, "DIAGNOSTICS", ()))

    def run(self) -> tuple[Result, float]:
        """One bounded run: the redacted result and how long it took (seconds)."""
        result, duration = self._run()
        return redacted(result, self.policy), duration

    def _run(self) -> tuple[Result, float]:
        name, host = self.config.name, self.hostname
        if self._unavailable is not None:
            return _unknown(f"{name} cannot run on {host}: {self._unavailable}"), 0.0
        if self._hung is not None:
            thread, started = self._hung
            if thread.is_alive():
                stuck = format_duration(self._clock() - started)
                return _unknown(
                    f"{name} is still stuck in a run that started {stuck} ago on {host}; "
                    "not starting another"
                ), 0.0
            self._hung = None
        box: dict[str, Result] = {}
        thread = threading.Thread(target=self._guarded, args=(box,), daemon=True,
                                  name=f"check:{name}")
        start = self._clock()
        thread.start()
        thread.join(self.timeout + GRACE_SECONDS)
        duration = self._clock() - start
        if thread.is_alive():
            self._hung = (thread, start)
            frame = sys._current_frames().get(thread.ident or -1)
            stack = "".join(traceback.format_stack(frame)) if frame else ""
            return _unknown(
                f"{name} timed out after {format_duration(self.timeout)} on {host}",
                timeout_seconds=self.timeout, stack=stack[-MAX_TRACEBACK:],
            ), duration
        return box["result"], duration

    def _guarded(self, box: dict[str, Result]) -> None:
        name, host = self.config.name, self.hostname
        try:
            box["result"] = self.instance.run(self.context)
        except CheckError as exc:
            box["result"] = _unknown(f"{name} could not inspect {host}: {exc}")
        except Exception as exc:
            box["result"] = _unknown(
                f"{name} crashed on {host}: {type(exc).__name__}: {exc}",
                traceback=traceback.format_exc()[-MAX_TRACEBACK:],
            )
