"""Soft vs hard state: a breach counts once it has lasted the check's ``for``."""

from __future__ import annotations

import pytest

from agent.state import CheckInfo, CheckView, StateTable, advance
from checks.base import Result, Status
from checks.config import Sustain

OK, WARN, CRIT, UNK = Status.OK, Status.WARNING, Status.CRITICAL, Status.UNKNOWN


def replay(statuses: list[Status], sustain: Sustain, step: float = 60.0
           ) -> list[tuple[Status, tuple[Status, Status] | None]]:
    """Feed results one interval apart; return (hard status, transition) per run."""
    view = CheckView(CheckInfo("c", "cpu"))
    out = []
    for i, status in enumerate(statuses):
        view, transition = advance(view, Result(status, "s"), sustain, 1000.0 + i * step, 0.01)
        out.append((view.status, (transition.old, transition.new) if transition else None))
    return out


@pytest.mark.parametrize(
    ("statuses", "sustain", "expected"),
    [
        pytest.param([WARN], Sustain(), [(WARN, (OK, WARN))], id="immediate-by-default"),
        pytest.param([WARN, WARN, WARN], Sustain(count=3),
                     [(OK, None), (OK, None), (WARN, (OK, WARN))], id="three-in-a-row"),
        pytest.param([WARN, OK, WARN, WARN], Sustain(count=2),
                     [(OK, None), (OK, None), (OK, None), (WARN, (OK, WARN))],
                     id="an-ok-resets-the-count"),
        pytest.param([CRIT, CRIT, CRIT, CRIT, CRIT, CRIT], Sustain(seconds=300),
                     [(OK, None)] * 5 + [(CRIT, (OK, CRIT))], id="for-5m-at-1m-interval"),
        pytest.param([WARN, CRIT, WARN, OK], Sustain(),
                     [(WARN, (OK, WARN)), (CRIT, (WARN, CRIT)), (WARN, (CRIT, WARN)),
                      (OK, (WARN, OK))], id="escalate-deescalate-recover"),
        pytest.param([UNK, UNK], Sustain(count=2), [(OK, None), (UNK, (OK, UNK))],
                     id="unknown-sustains-too"),
    ],
)
def test_hard_state_follows_sustain(statuses, sustain, expected) -> None:
    assert replay(statuses, sustain) == expected


def test_capture_only_when_leaving_ok_or_worsening() -> None:
    seq = replay([WARN, CRIT, WARN, OK], Sustain())
    from agent.state import Transition

    captures = [Transition("c", *t).capture for _, t in seq if t]
    assert captures == [True, True, False, False]


def test_since_marks_the_start_of_the_hard_state_and_diagnostics_clear_on_recovery() -> None:
    table = StateTable([CheckInfo("c", "cpu")])
    table.record("c", Result(WARN, "hot"), Sustain(), 100.0, 0.1)
    table.attach_diagnostics("c", {"host": {"name": "x"}})
    table.record("c", Result(WARN, "hot"), Sustain(), 160.0, 0.1)
    view = table.get("c")
    assert (view.status, view.since, view.diagnostics) == (WARN, 100.0, {"host": {"name": "x"}})
    table.record("c", Result(OK, "fine"), Sustain(), 220.0, 0.1)
    view = table.get("c")
    assert (view.status, view.since, view.diagnostics) == (OK, 220.0, {})


def test_reload_keeps_state_of_surviving_checks() -> None:
    table = StateTable([CheckInfo("a", "cpu"), CheckInfo("b", "cpu")])
    table.record("a", Result(CRIT, "bad"), Sustain(), 1.0, 0.1)
    table.replace_checks([CheckInfo("a", "cpu", {"team": "ops"}), CheckInfo("c", "load")])
    assert [v.info.name for v in table.snapshot()] == ["a", "c"]
    assert table.get("a").status is CRIT and table.get("a").info.labels == {"team": "ops"}
    assert table.record("b", Result(OK, "x"), Sustain(), 2.0, 0.1) is None
