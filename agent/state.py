"""Per-check state: soft status (the latest result) and hard status (sustained).

A breach becomes *hard* once it has lasted the check's ``for`` (a duration, or a
count of consecutive non-OK results); only hard changes matter outside the agent
(diagnostics, events, tickets). Recovery to OK is immediate here: the thresholds'
``recover`` level already provides hysteresis, and the collector verifies that a
recovery holds before it resolves anything.

:class:`StateTable` is the one place the scheduler writes and the HTTP server,
metrics and ``patrol check`` read; readers get frozen :class:`CheckView` copies.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

from checks.base import Result, Status
from checks.config import Sustain


@dataclass(frozen=True, slots=True)
class CheckInfo:
    """What the config says about a check, for labels and the status API."""

    name: str
    type: str
    labels: dict[str, str] = field(default_factory=dict)
    runbook: str | None = None
    interval: float | None = None
    schedule: str | None = None


@dataclass(frozen=True, slots=True)
class CheckView:
    """A consistent snapshot of one check, safe to hand to any thread.

    ``status`` is the hard status; ``since`` is when it began (epoch seconds).
    ``result`` is the latest run (None before the first run finishes), whose
    ``status`` is the soft status. ``diagnostics`` were captured at the last hard
    breach or escalation and are kept until the check recovers.
    """

    info: CheckInfo
    status: Status = Status.OK
    since: float | None = None
    result: Result | None = None
    last_run: float | None = None
    duration_seconds: float | None = None
    failing_runs: int = 0
    breach_started: float | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)

    @property
    def soft_status(self) -> Status:
        return self.result.status if self.result else Status.OK

    def as_dict(self) -> dict[str, Any]:
        result = self.result.as_dict() if self.result else None
        return {
            "name": self.info.name,
            "type": self.info.type,
            "labels": self.info.labels,
            "runbook": self.info.runbook,
            "status": self.status.name,
            "status_code": int(self.status),
            "soft_status": self.soft_status.name,
            "since": self.since,
            "summary": result["summary"] if result else "not run yet",
            "measurements": result["measurements"] if result else [],
            "check_diagnostics": result["diagnostics"] if result else {},
            "diagnostics": self.diagnostics,
            "last_run": self.last_run,
            "duration_seconds": self.duration_seconds,
            "failing_runs": self.failing_runs,
        }


@dataclass(frozen=True, slots=True)
class Transition:
    """A hard status change; ``capture`` says whether to capture diagnostics now
    (the check left OK, or got worse)."""

    name: str
    old: Status
    new: Status

    @property
    def capture(self) -> bool:
        return self.new is not Status.OK and self.new.rank > self.old.rank


def advance(
    view: CheckView, result: Result, sustain: Sustain, now: float, duration: float
) -> tuple[CheckView, Transition | None]:
    """Pure step of the state machine: the new view after ``result``, and the hard
    transition it caused, if any."""
    failing = result.status is not Status.OK
    failing_runs = view.failing_runs + 1 if failing else 0
    breach_started = (view.breach_started or now) if failing else None
    if not failing:
        hard = Status.OK
    elif view.status is not Status.OK:
        hard = result.status  # already hard: follow escalation and de-escalation
    else:
        sustained = (
            now - breach_started >= sustain.seconds
            if sustain.seconds
            else failing_runs >= sustain.count
        )
        hard = result.status if sustained else Status.OK
    changed = hard is not view.status
    new = replace(
        view,
        result=result,
        last_run=now,
        duration_seconds=duration,
        failing_runs=failing_runs,
        breach_started=breach_started,
        status=hard,
        since=now if changed or view.since is None else view.since,
        diagnostics={} if hard is Status.OK else view.diagnostics,
    )
    return new, (Transition(view.info.name, view.status, hard) if changed else None)


class StateTable:
    """Thread-safe table of every configured check's latest view."""

    def __init__(self, infos: list[CheckInfo] | None = None) -> None:
        self._lock = threading.Lock()
        self._views: dict[str, CheckView] = {i.name: CheckView(i) for i in infos or []}

    def replace_checks(self, infos: list[CheckInfo]) -> None:
        """After a reload: keep state of checks that still exist, add new ones."""
        with self._lock:
            self._views = {
                i.name: replace(self._views[i.name], info=i) if i.name in self._views
                else CheckView(i)
                for i in infos
            }

    def record(
        self, name: str, result: Result, sustain: Sustain, now: float, duration: float
    ) -> Transition | None:
        with self._lock:
            view = self._views.get(name)
            if view is None:  # removed by a reload while it ran
                return None
            self._views[name], transition = advance(view, result, sustain, now, duration)
            return transition

    def attach_diagnostics(self, name: str, diagnostics: dict[str, Any]) -> None:
        with self._lock:
            view = self._views.get(name)
            if view is not None and view.status is not Status.OK:
                self._views[name] = replace(view, diagnostics=diagnostics)

    def get(self, name: str) -> CheckView | None:
        with self._lock:
            return self._views.get(name)

    def snapshot(self) -> list[CheckView]:
        with self._lock:
            return list(self._views.values())
