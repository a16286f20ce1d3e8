"""memory: used ratio from MemAvailable, thresholds 90/95 %, summary text."""

from __future__ import annotations

import re
from collections import namedtuple

import psutil
import pytest

from patrol.checks.base import CheckError, Status
from patrol.checks.memory import MemoryCheck
from tests.helpers import run

GiB = 1024**3
VMem = namedtuple("VMem", "total available free")


def world(total: float, available: float, free: float = 0) -> dict:
    return {"virtual_memory": lambda: VMem(total, available, free)}


@pytest.mark.parametrize(
    ("available", "options", "status", "summary"),
    [
        (8 * GiB, {}, Status.OK,
         "Memory is 50.0% used on testhost; 8.0 GiB available of 16.0 GiB"),
        (1.2 * GiB, {}, Status.WARNING,
         "Memory is 92.5% used on testhost (warning at 90%); 1.2 GiB available of 16.0 GiB"),
        (0.5 * GiB, {}, Status.CRITICAL,
         "Memory is 96.9% used on testhost (critical at 95%); 512.0 MiB available of 16.0 GiB"),
        (6 * GiB, {"warning": "60%"}, Status.WARNING,
         "Memory is 62.5% used on testhost (warning at 60%); 6.0 GiB available of 16.0 GiB"),
    ],
    ids=["half-used-ok", "warning-default", "critical-default", "top-level-warning"],
)
def test_used_ratio_status_and_summary(available, options, status, summary):
    result = run("memory", world=world(16 * GiB, available), **options)
    assert result.status is status
    assert result.summary == summary
    assert result.measurement("used_ratio") == pytest.approx((16 * GiB - available) / (16 * GiB))
    assert result.measurement("available_bytes") == available
    assert result.measurement("total_bytes") == 16 * GiB


def test_page_cache_counts_as_available_not_used():
    # MemFree is tiny but MemAvailable is large: a cache-full host is not out of memory.
    result = run("memory", world=world(16 * GiB, 12 * GiB, free=0.1 * GiB))
    assert result.status is Status.OK
    assert result.measurement("used_ratio") == 0.25


def test_threshold_on_available_bytes_names_it_in_status():
    result = run("memory", world=world(16 * GiB, 8 * GiB),
                 thresholds={"available_bytes": {"critical": "10GiB"}})
    assert result.status is Status.CRITICAL
    assert result.summary == "Memory is 50.0% used on testhost; 8.0 GiB available of 16.0 GiB"


def test_zero_total_is_unknown_not_a_division_error():
    with pytest.raises(CheckError, match="reports no memory on testhost"):
        run("memory", world=world(0, 0))


def test_declares_top_processes_diagnostics():
    assert MemoryCheck.DIAGNOSTICS == ("top_processes",)


def test_real_host():
    result = run("memory")
    real = psutil.virtual_memory()
    assert result.measurement("total_bytes") == real.total
    assert 0 < result.measurement("used_ratio") < 1
    assert result.measurement("available_bytes") > 0
    assert re.fullmatch(r"Memory is \d+\.\d% used on testhost.*; [\d.]+ [KMGT]iB available "
                        r"of [\d.]+ [KMGT]iB", result.summary)
