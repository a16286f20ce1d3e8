"""zombies: a real child this test does not reap, grouped under its real parent."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from types import SimpleNamespace

import psutil
import pytest

from patrol.checks.base import Status
from tests.helpers import build


@pytest.fixture
def zombie() -> Iterator[int]:
    """A child that exits at once and stays defunct until the fixture reaps it."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the child never exited"
        time.sleep(0.02)
    yield child.pid
    child.wait()


def test_a_real_zombie_is_counted_under_its_parent(zombie: int) -> None:
    check, ctx = build("zombies", min_age="1ms", warning=1)
    time.sleep(0.01)
    result = check.run(ctx)
    assert result.status is Status.WARNING
    assert result.measurement("zombies") >= 1
    mine = next(p for p in result.diagnostics["parents"] if p["pid"] == os.getpid())
    assert zombie in mine["zombie_pids"]
    assert "pytest" in mine["cmdline"] or "python" in mine["cmdline"]
    assert result.summary.startswith(f"{result.measurement('zombies'):.0f} zombie process")
    assert "on testhost (warning at 1)" in result.summary


def test_young_zombies_are_not_counted(zombie: int) -> None:
    check, ctx = build("zombies", min_age="1h", warning=1)
    result = check.run(ctx)
    assert zombie not in [pid for p in result.diagnostics.get("parents", [])
                          for pid in p["zombie_pids"]]


def _table(*entries: tuple[int, int, str, float]) -> dict:
    procs = [SimpleNamespace(info={"pid": pid, "ppid": ppid, "name": "worker",
                                   "status": status, "create_time": created})
             for pid, ppid, status, created in entries]
    return {"process_iter": lambda attrs: procs, "clock": lambda: 1000.0,
            "parent_of": lambda ppid: {"pid": ppid, "name": f"parent{ppid}", "cmdline": "x"}}


def test_defaults_and_summary_name_the_worst_parent() -> None:
    z = psutil.STATUS_ZOMBIE
    entries = [(100 + i, 7, z, 100.0) for i in range(6)] + [(200, 8, z, 900.0),
                                                            (300, 9, "running", 0.0)]
    result = build("zombies", world=_table(*entries))[0].run(build("zombies")[1])
    assert result.status is Status.WARNING  # 7 zombies: warning at 5
    assert result.summary == ("7 zombie processes on testhost (warning at 5); 6 from parent "
                              "parent7 (pid 7), oldest 15m")
    assert result.measurement("zombie_parents") == 2
    assert result.measurement("oldest_zombie_age_seconds") == 900.0


def test_no_zombies_is_ok_and_says_so() -> None:
    check, ctx = build("zombies", world=_table())
    result = check.run(ctx)
    assert result.status is Status.OK
    assert result.summary == "No zombie processes older than 1m on testhost"
    assert result.measurement("oldest_zombie_age_seconds") is None


@pytest.mark.slow
def test_a_parent_with_a_secret_on_its_command_line_is_redacted_on_the_way_out() -> None:
    """The parent's command line is evidence and may hold a password; the agent's
    central redaction (applied to every event) must blank it."""
    from patrol.agent.diagnostics import redact

    code = ("import subprocess, sys; child = subprocess.Popen(['true']); "
            "print(child.pid, flush=True); sys.stdin.read()")
    parent = subprocess.Popen([sys.executable, "-c", code, "--password=hunter2"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        deadline = time.monotonic() + 10
        while psutil.Process(child).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        check, ctx = build("zombies", min_age="1ms")
        result = check.run(ctx)
    finally:
        parent.kill()
        parent.wait()
    entry = next(p for p in result.diagnostics["parents"] if p["pid"] == parent.pid)
    assert child in entry["zombie_pids"]
    assert "hunter2" in entry["cmdline"]  # the check reports what it saw ...
    assert "hunter2" not in str(redact(result.as_dict()))  # ... and nothing leaves with it
    assert "hunter2" not in result.summary
