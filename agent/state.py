"""Per-check state: soft status (the latest result) and hard status (sustained).

A breach becomes *hard* once it has lasted the check's ``for`` (a duration, or a
count of consecutive non-OK results); only hard changes matter outside the agent
(diagnostics, events, tickets). Recovery to OK is immediate here: the thresholds'
``recover`` level already provides hysteresis, and the collector verifies that a
recovery holds before it resolves anything.

:class:`StateTable` is the one place the scheduler writes and the HTTP server,
metrics and ``patrol check`` read; readers get frozen :class:`CheckView` copies.

Restarts are not events. Given a ``path`` (``state_dir/check_state.json``, next to
the outbox), the table keeps each check's hard status, since-when and sustain
progress there and starts from it: a check still failing after a restart stays
hard-failing since the original breach, so the agent announces nothing (no event; its
heartbeats carry the original ``since``), where starting from OK would tell the
collector "recovered" and then "failed again" (a false recovery, flapping after two
restarts, a won't-fix ticket reopened). The file is rewritten (atomically) only when
that state changes: on hard changes and while a breach is sustaining, not on every
run. A check that changed while the agent was down changes at its first run, as
it should. The latest result and diagnostics are not kept: they are re-measured.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from patrol.checks.base import Result, Status
from patrol.checks.values import Sustain

log = logging.getLogger("patrol.agent")
STATE_FILE = "check_state.json"


@dataclass(frozen=True, slots=True)
class CheckInfo:
    """What the config says about a check, for labels and the status API."""

    name: str
    type: str
    labels: dict[str, str] = field(default_factory=dict)
    runbook: str | None = None
    interval: float | None = None
    schedule: str | None = None
    timezone: str | None = None  # of ``schedule``; None: the host's local zone
    timeout: float | None = None


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
            now - (view.breach_started or now) >= sustain.seconds  # breach_started, a float here
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


def persisted(view: CheckView) -> dict[str, Any]:
    """What of ``view`` outlives a restart. The failing-run count matters only while a
    breach sustains (a hard failure no longer needs it), so it is kept only then and
    a long hard failure does not rewrite the file on every run."""
    sustaining = view.status is Status.OK
    return {"type": view.info.type, "status": view.status.name, "since": view.since,
            "failing_runs": view.failing_runs if sustaining else 0,
            "breach_started": view.breach_started}


def restored(info: CheckInfo, saved: dict[str, Any] | None) -> CheckView:
    """The view a check starts with: its saved state when it is the same check (same
    name and type), else a fresh OK view."""
    if not saved or saved.get("type") != info.type:
        return CheckView(info)
    try:
        return CheckView(info, status=Status[saved["status"]], since=saved.get("since"),
                         failing_runs=int(saved.get("failing_runs") or 0),
                         breach_started=saved.get("breach_started"))
    except (KeyError, TypeError, ValueError):
        return CheckView(info)


def load_states(path: Path | None) -> dict[str, dict[str, Any]]:
    """The saved states by check name; a missing or unreadable file is a fresh start
    (logged: the file is the agent's own memory, not configuration)."""
    if path is None or not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        return {str(k): v for k, v in data["checks"].items() if isinstance(v, dict)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("ignoring saved check state %s (%s): every check starts as OK", path, exc)
        return {}


def save_states(path: Path, states: dict[str, dict[str, Any]]) -> None:
    """Write atomically (a crash leaves the old file or the new, never half of one)."""
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"version": 1, "checks": states}, out)
    os.replace(temporary, path)


class StateTable:
    """Thread-safe table of every configured check's latest view; with ``path``, the
    hard state survives restarts (see the module docstring)."""

    def __init__(self, infos: list[CheckInfo] | None = None,
                 path: Path | None = None) -> None:
        self._lock = threading.Lock()
        self.path = path
        saved = load_states(path)
        self._views: dict[str, CheckView] = {i.name: restored(i, saved.get(i.name))
                                             for i in infos or []}
        self._saved = {name: persisted(v) for name, v in self._views.items()}

    def replace_checks(self, infos: list[CheckInfo]) -> None:
        """After a reload: keep state of checks that still exist, add new ones."""
        with self._lock:
            self._views = {
                i.name: replace(self._views[i.name], info=i) if i.name in self._views
                else CheckView(i)
                for i in infos
            }
            self._save()

    def record(
        self, name: str, result: Result, sustain: Sustain, now: float, duration: float
    ) -> Transition | None:
        with self._lock:
            view = self._views.get(name)
            if view is None:  # removed by a reload while it ran
                return None
            self._views[name], transition = advance(view, result, sustain, now, duration)
            self._save()
            return transition

    def _save(self) -> None:
        """Write the file when what it holds changed (the caller holds the lock)."""
        if self.path is None:
            return
        states = {name: persisted(v) for name, v in self._views.items()}
        if states == self._saved:
            return
        try:
            save_states(self.path, states)
            self._saved = states
        except OSError as exc:  # a full disk must not stop the checks
            log.error("cannot save check state to %s: %s", self.path, exc)

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
