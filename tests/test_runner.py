"""A check that crashes or hangs becomes UNKNOWN and never stalls the others."""

from __future__ import annotations

import threading
import time
from typing import ClassVar

from patrol.agent.runner import CheckRunner
from patrol.checks.base import CheckError, MeasurementSpec, Result, RunContext, Status
from patrol.checks.config import CheckConfig


class Scripted:
    """A test check whose behaviour is chosen by its name."""

    type: ClassVar[str] = "scripted"
    Config = CheckConfig
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = ()
    REQUIRES: ClassVar[tuple[str, ...]] = ()
    release = threading.Event()

    def __init__(self, config: CheckConfig) -> None:
        self.name = config.name

    def run(self, ctx: RunContext) -> Result:
        if self.name == "crash":
            raise ZeroDivisionError("division by zero")
        if self.name == "cannot":
            raise CheckError("permission denied reading /proc/1/io")
        if self.name == "hang":
            Scripted.release.wait(30)
        return Result(Status.OK, f"{self.name} fine on {ctx.hostname}")


def runner(name: str, timeout: float = 0.3) -> CheckRunner:
    return CheckRunner(CheckConfig(name=name, type="scripted", timeout=timeout), Scripted,
                       "web-01", 10.0)


def test_crash_becomes_unknown_with_traceback() -> None:
    result, _ = runner("crash").run()
    assert result.status is Status.UNKNOWN
    assert result.summary == "crash crashed on web-01: ZeroDivisionError: division by zero"
    assert "ZeroDivisionError" in result.diagnostics["traceback"]
    assert "in run" in result.diagnostics["traceback"]


def test_check_error_becomes_unknown_with_its_reason() -> None:
    result, _ = runner("cannot").run()
    assert (result.status, result.summary) == (
        Status.UNKNOWN, "cannot could not inspect web-01: permission denied reading /proc/1/io")


def test_hang_times_out_and_is_not_restarted_while_stuck() -> None:
    Scripted.release.clear()
    hung = runner("hang", timeout=0.3)
    start = time.monotonic()
    result, _ = hung.run()
    assert 0.8 <= time.monotonic() - start < 1.3
    assert result.status is Status.UNKNOWN
    assert result.summary == "hang timed out after 300ms on web-01"
    assert "release.wait" in result.diagnostics["stack"]
    again, took = hung.run()
    assert again.status is Status.UNKNOWN and "still stuck" in again.summary and took == 0.0
    Scripted.release.set()
    time.sleep(0.05)
    assert hung.run()[0].status is Status.OK


def test_hung_check_does_not_delay_others_in_parallel() -> None:
    Scripted.release.clear()
    results: dict[str, float] = {}

    def go(r: CheckRunner) -> None:
        start = time.monotonic()
        r.run()
        results[r.config.name] = time.monotonic() - start

    threads = [threading.Thread(target=go, args=(runner(n, 0.5),)) for n in ("hang", "quick")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    Scripted.release.set()
    assert results["quick"] < 0.2
    assert 0.95 < results["hang"] < 1.5


def test_missing_driver_reports_unknown_with_install_hint() -> None:
    r = CheckRunner(CheckConfig(name="pg", type="postgres"), None, "db-01", 10.0,
                    unavailable="type 'postgres' needs the Python module 'psycopg', which is "
                                "not installed; pip install 'patrol-inspect[postgres]'")
    result, _ = r.run()
    assert result.status is Status.UNKNOWN
    assert result.summary == ("pg cannot run on db-01: type 'postgres' needs the Python module "
                              "'psycopg', which is not installed; pip install "
                              "'patrol-inspect[postgres]'")
