"""Top processes: exact numbers from injected snapshots, and real busy/fat processes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from patrol.agent.diagnostics.processes import snapshot, top_processes

START = 1_795_000_000.0  # 2026-11-18T11:06:40Z
GIB = 1024**3


def _proc(pid: int, name: str, cpu: float | None, rss: int | None, status: str = "sleeping",
          cmdline: list[str] | None = None, created: float = START,
          user: str | None = "app") -> dict[str, Any]:
    return {"pid": pid, "name": name, "user": user, "cpu_seconds": cpu, "rss_bytes": rss,
            "cmdline": cmdline if cmdline is not None else [f"/usr/bin/{name}"],
            "create_time": created, "status": status}


BEFORE = [
    _proc(1, "systemd", 10.0, 12 * 1024**2, user="root"),
    _proc(100, "postgres", 50.0, 2 * GIB),
    _proc(200, "spinner", 5.0, 10 * 1024**2, status="running"),
    _proc(300, "reused", 99.0, 1024),  # pid 300 dies and is reused below
    _proc(400, "gone", 1.0, 1024),
]
AFTER = [
    _proc(1, "systemd", 10.01, 12 * 1024**2, user="root"),
    _proc(100, "postgres", 50.05, 2 * GIB),
    _proc(200, "spinner", 5.4, 10 * 1024**2, status="running",
          cmdline=["python", "-c", "x" * 400]),
    _proc(300, "reused", 0.1, 4096, created=START + 60),
    _proc(500, "zombie", None, None, status="zombie", cmdline=[], user=None),
    _proc(600, "kworker/0:1", 0.0, 0, status="disk-sleep", cmdline=[], user="root"),
]


def _top(n: int = 10) -> dict[str, Any]:
    snapshots: Iterator[list[dict[str, Any]]] = iter([BEFORE, AFTER])
    clock: Iterator[float] = iter([100.0, 100.2])
    slept: list[float] = []
    result = top_processes(n, sample=0.2, take=lambda: next(snapshots), sleep=slept.append,
                           monotonic=lambda: next(clock), cpu_count=lambda: 4,
                           memory_total=lambda: 16 * GIB)
    assert slept == [0.2]
    return result


def test_cpu_is_measured_between_snapshots() -> None:
    top = _top()
    assert top["sample_seconds"] == 0.2
    assert top["counts"] == {"total": 6, "running": 1, "disk_sleep": 1, "zombie": 1}
    assert [(p["pid"], p["cpu_cores"], p["cpu_ratio"]) for p in top["by_cpu"]] == [
        (200, 2.0, 0.5),      # 0.4 CPU-seconds in 0.2 s
        (100, 0.25, 0.0625),
        (1, 0.05, 0.0125),
        (300, 0.0, 0.0),      # new process on a reused pid: no credit for the old one
        (500, 0.0, 0.0),      # ties: bigger RSS, then lower pid (unknown RSS counts as 0)
        (600, 0.0, 0.0),
    ]


def test_memory_order_and_row_fields() -> None:
    top = _top()
    assert [p["pid"] for p in top["by_memory"]] == [100, 1, 200, 300, 500, 600]
    assert top["by_memory"][0] == {
        "pid": 100, "name": "postgres", "user": "app", "cpu_cores": 0.25, "cpu_ratio": 0.0625,
        "rss_bytes": 2 * GIB, "memory_ratio": 0.125, "cmdline": "/usr/bin/postgres",
        "started": "2026-11-18T11:06:40+00:00", "state": "sleeping",
    }
    zombie = top["by_memory"][-2]
    assert (zombie["cmdline"], zombie["rss_bytes"], zombie["memory_ratio"], zombie["user"]) == (
        "[zombie]", None, None, None)


def test_command_lines_are_cut_to_300_characters() -> None:
    spinner = _top()["by_cpu"][0]
    assert len(spinner["cmdline"]) == 300
    assert spinner["cmdline"].startswith("python -c xxx") and spinner["cmdline"].endswith("…")


def test_n_limits_both_lists() -> None:
    top = _top(n=2)
    assert [p["pid"] for p in top["by_cpu"]] == [200, 100]
    assert [p["pid"] for p in top["by_memory"]] == [100, 1]


def test_real_snapshot_sees_this_process() -> None:
    import os

    me = [p for p in snapshot() if p["pid"] == os.getpid()]
    assert len(me) == 1 and me[0]["cpu_seconds"] > 0 and me[0]["rss_bytes"] > 0


def _spawn(code: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()  # by PID: only the process this test started
    proc.wait(timeout=5)


@pytest.mark.slow
def test_a_busy_process_tops_the_cpu_list() -> None:
    proc = _spawn("print('ready', flush=True)\nwhile True: pass")
    try:
        time.sleep(0.05)
        top = top_processes(sample=0.3)
        busy = [p for p in top["by_cpu"] if p["pid"] == proc.pid]
        assert busy, f"busy-loop pid {proc.pid} missing from {top['by_cpu']}"
        assert busy[0]["cpu_cores"] > 0.2  # a core's worth, less whatever else runs
        assert "while True" in busy[0]["cmdline"]
    finally:
        _stop(proc)


@pytest.mark.slow
def test_a_fat_process_appears_in_the_memory_list() -> None:
    proc = _spawn("data = b'\\x01' * (200 * 1024 * 1024)\nprint('ready', flush=True)\n"
                  "import time\ntime.sleep(60)")
    try:
        top = top_processes(sample=0.05)
        fat = [p for p in top["by_memory"] if p["pid"] == proc.pid]
        assert fat, f"200 MB pid {proc.pid} missing from {top['by_memory']}"
        assert fat[0]["rss_bytes"] >= 200 * 1024 * 1024
    finally:
        _stop(proc)
