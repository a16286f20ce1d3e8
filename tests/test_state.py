"""Soft vs hard state: a breach counts once it has lasted the check's ``for``."""

from __future__ import annotations

import pytest

from patrol.agent.state import CheckInfo, CheckView, StateTable, advance
from patrol.checks.base import Result, Status
from patrol.checks.config import Sustain

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
    from patrol.agent.state import Transition

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


# -- restarts are not events: the hard state outlives the process ----------------------


def test_a_failing_check_is_still_hard_failing_since_the_breach_after_a_restart(
        tmp_path) -> None:
    path = tmp_path / "check_state.json"
    before = StateTable([CheckInfo("disk", "disk"), CheckInfo("cpu", "cpu")], path)
    assert before.record("disk", Result(CRIT, "full"), Sustain(), 100.0, 0.1) is not None
    before.record("cpu", Result(OK, "fine"), Sustain(), 100.0, 0.1)

    after = StateTable([CheckInfo("disk", "disk"), CheckInfo("cpu", "cpu")], path)
    view = after.get("disk")
    assert (view.status, view.since, view.result) == (CRIT, 100.0, None)
    # still failing at the first run after the restart: nothing to announce
    assert after.record("disk", Result(CRIT, "full"), Sustain(), 400.0, 0.1) is None
    assert after.get("disk").since == 100.0
    # recovered while the agent was down: announced at the first run, as it should be
    restarted = StateTable([CheckInfo("disk", "disk")], path)
    transition = restarted.record("disk", Result(OK, "fine"), Sustain(), 500.0, 0.1)
    assert transition is not None and (transition.old, transition.new) == (CRIT, OK)


def test_a_sustaining_breach_keeps_its_progress_across_a_restart(tmp_path) -> None:
    path = tmp_path / "check_state.json"
    for_3 = Sustain(count=3)
    table = StateTable([CheckInfo("c", "cpu")], path)
    table.record("c", Result(WARN, "hot"), for_3, 100.0, 0.1)
    table.record("c", Result(WARN, "hot"), for_3, 160.0, 0.1)
    table = StateTable([CheckInfo("c", "cpu")], path)
    transition = table.record("c", Result(WARN, "hot"), for_3, 220.0, 0.1)
    assert transition is not None and transition.new is WARN  # the third in a row


@pytest.mark.parametrize("saved", [
    pytest.param('{"version": 1, "checks": {"c": {"type": "disk", "status": "CRITICAL"}}}',
                 id="another-type-under-that-name"),
    pytest.param("{not json", id="unreadable"),
    pytest.param('{"version": 1, "checks": {"c": {"type": "cpu", "status": "BROKEN"}}}',
                 id="unknown-status"),
])
def test_a_state_file_that_does_not_fit_is_a_fresh_start(tmp_path, saved: str) -> None:
    path = tmp_path / "check_state.json"
    path.write_text(saved)
    assert StateTable([CheckInfo("c", "cpu")], path).get("c").status is OK


def test_the_file_is_written_on_changes_not_on_every_run(tmp_path) -> None:
    path = tmp_path / "check_state.json"
    table = StateTable([CheckInfo("c", "cpu")], path)
    table.record("c", Result(CRIT, "hot"), Sustain(), 160.0, 0.1)
    written = path.read_text()
    path.write_text("left alone")
    for n in range(5):  # a long hard failure: the same state every run
        table.record("c", Result(CRIT, "hot"), Sustain(), 220.0 + 60 * n, 0.1)
    assert path.read_text() == "left alone"
    table.record("c", Result(OK, "fine"), Sustain(), 600.0, 0.1)
    assert path.read_text() != written and oct(path.stat().st_mode)[-3:] == "600"
