"""swap: used ratio (50/80 %), no-swap hosts, swap-in/out rates between runs."""

from __future__ import annotations

from collections import namedtuple

import psutil
import pytest

from patrol.checks.base import Status
from tests.helpers import build

GiB, MiB = 1024**3, 1024**2
Swap = namedtuple("Swap", "total used free percent sin sout")


def fixture(samples: list[tuple[float, float, float, float]], times: list[float]) -> dict:
    """``samples`` of (total, used, sin, sout), one per call, and clock readings."""
    swaps = iter(Swap(t, u, t - u, 0.0, si, so) for t, u, si, so in samples)
    clock = iter(times)
    return {"swap_memory": lambda: next(swaps), "clock": lambda: next(clock)}


@pytest.mark.parametrize(
    ("used", "status", "summary"),
    [
        (1 * GiB, Status.OK, "Swap is 25.0% used on testhost; 1.0 GiB of 4.0 GiB"),
        (2.5 * GiB, Status.WARNING,
         "Swap is 62.5% used on testhost (warning at 50%); 2.5 GiB of 4.0 GiB"),
        (3.5 * GiB, Status.CRITICAL,
         "Swap is 87.5% used on testhost (critical at 80%); 3.5 GiB of 4.0 GiB"),
    ],
    ids=["ok", "warning", "critical"],
)
def test_used_ratio(used, status, summary):
    check, ctx = build("swap", world=fixture([(4 * GiB, used, 0, 0)], [0.0]))
    result = check.run(ctx)
    assert result.status is status
    assert result.summary == summary
    assert result.measurement("used_ratio") == used / (4 * GiB)
    assert result.measurement("used_bytes") == used
    assert result.measurement("total_bytes") == 4 * GiB
    assert result.measurement("swap_in_bytes_per_second") is None  # first run: no rate


def test_no_swap_configured_is_ok_and_says_so():
    check, ctx = build("swap", world=fixture([(0, 0, 0, 0)], [0.0]))
    result = check.run(ctx)
    assert result.status is Status.OK
    assert result.summary == "No swap configured on testhost"
    assert result.measurement("used_ratio") is None
    assert result.measurement("total_bytes") == 0


def test_swap_traffic_rate_since_previous_run():
    samples = [(4 * GiB, 1 * GiB, 100 * MiB, 50 * MiB), (4 * GiB, 1 * GiB, 110 * MiB, 70 * MiB)]
    check, ctx = build("swap", world=fixture(samples, [1000.0, 1010.0]))
    check.run(ctx)
    result = check.run(ctx)
    assert result.measurement("swap_in_bytes_per_second") == 1 * MiB
    assert result.measurement("swap_out_bytes_per_second") == 2 * MiB
    assert result.summary == ("Swap is 25.0% used on testhost; 1.0 GiB of 4.0 GiB; "
                              "swapping in 1.0 MiB/s, out 2.0 MiB/s")


def test_threshold_on_swap_in_rate():
    samples = [(4 * GiB, 0, 0, 0), (4 * GiB, 0, 60 * MiB, 0)]
    check, ctx = build("swap", world=fixture(samples, [0.0, 60.0]),
                       thresholds={"swap_in_bytes_per_second": {"warning": 524288}})
    assert check.run(ctx).status is Status.OK
    assert check.run(ctx).status is Status.WARNING


def test_counter_reset_gives_no_rate():
    samples = [(4 * GiB, 0, 500 * MiB, 0), (4 * GiB, 0, 1 * MiB, 0)]
    check, ctx = build("swap", world=fixture(samples, [0.0, 10.0]))
    check.run(ctx)
    assert check.run(ctx).measurement("swap_in_bytes_per_second") is None


def test_real_host():
    check, ctx = build("swap")
    result = check.run(ctx)
    real = psutil.swap_memory()
    assert result.measurement("total_bytes") == real.total
    if real.total == 0:
        assert result.summary == "No swap configured on testhost"
        assert result.status is Status.OK
    else:
        assert result.summary.startswith("Swap is ")
    second = check.run(ctx)
    assert second.measurement("swap_in_bytes_per_second") >= 0
