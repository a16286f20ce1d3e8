"""fd: the real kernel file table, and a real process near its own RLIMIT_NOFILE."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from patrol.checks.base import Status
from tests.helpers import build

HOG = """
import os, resource, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
open('/proc/self/comm', 'w').write('patrol-fdhog')
held = [open(os.devnull) for _ in range(60)]
print('ready', flush=True)
sys.stdin.read()
"""


@pytest.fixture
def fd_hog() -> Iterator[int]:
    """A process named patrol-fdhog with ~63 of its 64 descriptors open."""
    proc = subprocess.Popen([sys.executable, "-c", HOG], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    yield proc.pid
    proc.kill()
    proc.wait()


def test_real_file_table_matches_proc() -> None:
    _, _, maximum = (float(x) for x in Path("/proc/sys/fs/file-nr").read_text().split())
    result = build("fd")[0].run(build("fd")[1])
    assert result.measurement("max_files") == maximum
    assert result.measurement("open_files") > 0
    assert result.measurement("used_ratio") < 0.8
    assert " file handles in use on testhost" in result.summary


@pytest.mark.slow
def test_a_real_process_near_its_limit_is_critical(fd_hog: int) -> None:
    check, ctx = build("fd", processes=["patrol-fdhog"])
    result = check.run(ctx)
    assert result.status is Status.CRITICAL
    assert result.measurement("process_used_ratio") >= 0.9
    worst = result.diagnostics["closest_to_limit"][0]
    assert (worst["pid"], worst["name"], worst["limit"]) == (fd_hog, "patrol-fdhog", 64)
    assert result.summary.startswith(f"patrol-fdhog (pid {fd_hog}) has ")
    assert "of 64 descriptors open" in result.summary and "(critical at 90%)" in result.summary


def test_system_table_breach_leads_the_summary() -> None:
    world = {"file_nr": lambda: (950.0, 1000.0),
             "processes": lambda names: ([{"pid": 1, "name": "init", "open": 10,
                                           "limit": 1024, "ratio": 10 / 1024}], 0)}
    check, ctx = build("fd", world=world)
    result = check.run(ctx)
    assert result.status is Status.CRITICAL
    assert result.summary.startswith("950 of 1,000 file handles in use on testhost "
                                     "(critical at 90%); init (pid 1)")


def test_missing_procfs_is_unknown_with_the_reason() -> None:
    def missing() -> tuple[float, float]:
        raise FileNotFoundError("No such file or directory")

    check, ctx = build("fd", world={"file_nr": missing, "processes": lambda n: ([], 0)})
    with pytest.raises(Exception, match="procfs"):
        check.run(ctx)
