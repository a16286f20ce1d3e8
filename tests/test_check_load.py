"""load: load average per core, 5-minute value thresholded at 1.5 / 3.0."""

from __future__ import annotations

import os

import pytest

from patrol.checks.base import CheckError, Status
from patrol.checks.load import LoadCheck
from tests.helpers import run


def world(load: tuple[float, float, float], cores: int | None) -> dict:
    return {"getloadavg": lambda: load, "cpu_count": lambda: cores}


@pytest.mark.parametrize(
    ("load", "cores", "options", "status", "summary"),
    [
        ((0.5, 1.0, 2.0), 4, {}, Status.OK,
         "Load is 0.25 per core on testhost; load average 0.50 1.00 2.00 over 4 cores"),
        ((3.0, 4.0, 5.0), 2, {}, Status.WARNING,
         ("Load is 2.00 per core on testhost (warning at 1.5); "
         "load average 3.00 4.00 5.00 over 2 cores")),
        ((8.0, 7.0, 6.0), 2, {}, Status.CRITICAL,
         ("Load is 3.50 per core on testhost (critical at 3); "
         "load average 8.00 7.00 6.00 over 2 cores")),
        ((1.0, 1.2, 1.0), None, {"warning": 1}, Status.WARNING,
         ("Load is 1.20 per core on testhost (warning at 1); "
         "load average 1.00 1.20 1.00 over 1 core")),
    ],
    ids=["ok", "warning", "critical", "unknown-core-count-means-one"],
)
def test_per_core_load(load, cores, options, status, summary):
    result = run("load", world=world(load, cores), **options)
    assert result.status is status
    assert result.summary == summary
    n = cores or 1
    assert result.measurement("load1_per_core") == load[0] / n
    assert result.measurement("load5_per_core") == load[1] / n
    assert result.measurement("load15_per_core") == load[2] / n
    assert [result.measurement(f"load{k}") for k in (1, 5, 15)] == list(load)
    assert result.measurement("cores") == n


def test_one_minute_spike_alone_does_not_alert():
    assert run("load", world=world((20.0, 1.0, 1.0), 2)).status is Status.OK


def test_threshold_on_one_minute_load_via_thresholds_block():
    result = run("load", world=world((20.0, 1.0, 1.0), 2),
                 thresholds={"load1_per_core": {"critical": 8}})
    assert result.status is Status.CRITICAL


def test_unreadable_load_is_unknown():
    def broken() -> tuple[float, float, float]:
        raise OSError("no /proc/loadavg")

    with pytest.raises(CheckError, match="cannot read the load average on testhost"):
        run("load", world={"getloadavg": broken})


def test_declares_top_processes_diagnostics():
    assert LoadCheck.DIAGNOSTICS == ("top_processes",)


def test_real_host():
    result = run("load")
    assert result.measurement("cores") == os.cpu_count()
    assert result.measurement("load5") >= 0
    assert result.measurement("load5_per_core") == pytest.approx(
        result.measurement("load5") / os.cpu_count())
    assert result.summary.startswith("Load is ")
