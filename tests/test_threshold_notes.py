"""The one shared threshold note (" (critical at 95%)", " (recovers at 80%)"), the
summary formatters, and the ``_bytes_per_second`` unit."""

from __future__ import annotations

from collections import namedtuple

import pytest

from patrol.checks.base import Measurement, MeasurementSpec, Status
from patrol.checks.config import CheckConfig
from patrol.checks.thresholds import Evaluator, Levels, limit_note, limit_text, problems
from patrol.contract.units import format_limit, format_number, format_ratio
from tests.helpers import build

GiB = 1024**3
MiB = 1024**2
DAY = 86400.0
VMem = namedtuple("VMem", "total available free")
Swap = namedtuple("Swap", "total used free percent sin sout")


def levels(warning=0.85, critical=0.95, recover=None, higher_is_worse=True, unit="ratio"):
    return Levels(warning, critical, recover, higher_is_worse, unit)


@pytest.mark.parametrize(
    ("status", "expected"),
    [(Status.OK, None), (Status.WARNING, 0.85), (Status.CRITICAL, 0.95), (Status.UNKNOWN, None)],
    ids=["ok", "warning", "critical", "unknown"],
)
def test_limit_for_names_the_level_a_status_stands_for(status, expected) -> None:
    assert levels().limit_for(status) == expected


@pytest.mark.parametrize(
    ("lv", "status", "value", "expected"),
    [
        pytest.param(levels(), Status.CRITICAL, 0.97, " (critical at 95%)", id="ratio-critical"),
        pytest.param(levels(), Status.WARNING, 0.90, " (warning at 85%)", id="ratio-warning"),
        pytest.param(levels(), Status.OK, 0.50, "", id="ok-says-nothing"),
        pytest.param(None, Status.CRITICAL, 0.97, "", id="undeclared-says-nothing"),
        pytest.param(levels(0.955, None), Status.WARNING, 0.96, " (warning at 95.5%)",
                     id="fractional-percent-as-written"),
        pytest.param(levels(recover=0.80), Status.WARNING, 0.83, " (recovers at 80%)",
                     id="held-by-hysteresis"),
        pytest.param(levels(warning=None, recover=0.80), Status.CRITICAL, 0.90,
                     " (recovers at 80%)", id="held-critical-without-warning"),
        pytest.param(levels(14 * DAY, 7 * DAY, None, False, "seconds"), Status.WARNING,
                     10 * DAY, " (warning at 14d)", id="lower-is-worse-duration"),
        pytest.param(levels(1.0, 5.0, None, True, "seconds"), Status.CRITICAL, 6.0,
                     " (critical at 5.0s)", id="seconds"),
        pytest.param(levels(MiB, None, None, True, "bytes"), Status.WARNING, 2 * MiB,
                     " (warning at 1.0 MiB)", id="bytes"),
        pytest.param(levels(MiB, None, None, True, "bytes_per_second"), Status.WARNING,
                     2 * MiB, " (warning at 1.0 MiB/s)", id="bytes-per-second"),
        pytest.param(levels(1_000_000, None, None, False, "count"), Status.WARNING, 4000,
                     " (warning at 1,000,000)", id="count-no-exponent"),
        pytest.param(levels(1.5, 3.0, None, True, "count"), Status.WARNING, 2.0,
                     " (warning at 1.5)", id="fractional-count"),
    ],
)
def test_limit_note(lv, status, value, expected) -> None:
    assert limit_note(lv, status, value) == expected


def test_custom_formatter_shows_the_limit_like_the_headline() -> None:
    lv = levels(100.0, 4096.0, None, False, "count")
    assert limit_text(lv, Status.CRITICAL, 10.0, lambda v: f"below {v:g}") == (
        "critical at below 4096")


def test_evaluator_hysteresis_reads_as_recovers_in_the_note() -> None:
    config = CheckConfig.model_validate(
        {"name": "m", "type": "memory", "warning": "85%", "critical": "95%", "recover": "80%"})
    spec = MeasurementSpec("used_ratio", "used", True, 0.90, 0.95, primary=True)
    ev = Evaluator(config, (spec,))
    notes = []
    for value in (0.96, 0.90, 0.83, 0.79):
        status = ev.judge(Measurement("used_ratio", value))
        notes.append(limit_note(ev.levels("used_ratio"), status, value))
    assert notes == [" (critical at 95%)", " (warning at 85%)", " (recovers at 80%)", ""]


def test_memory_summary_says_recovers_while_held() -> None:
    available = [0.5 * GiB, 3 * GiB]  # 96.9 % used, then 81.3 %: held at WARNING
    check, ctx = build("memory", world={
        "virtual_memory": lambda: VMem(16 * GiB, available.pop(0), 0)}, recover="80%")
    assert check.run(ctx).summary.startswith("Memory is 96.9% used on testhost (critical at 95%)")
    held = check.run(ctx)
    assert held.status is Status.WARNING
    assert held.summary == ("Memory is 81.2% used on testhost (recovers at 80%); "
                            "3.0 GiB available of 16.0 GiB")


@pytest.mark.parametrize(
    ("ratio", "expected"),
    [(0.862, "86%"), (0.0, "0%"), (0.0013, "0.13%"), (0.01, "1%"), (0.955, "96%"),
     (0.000012, "0.0012%")],
    ids=["whole-percent", "zero", "small-two-digits", "one-percent", "rounds-measured",
         "tiny"],
)
def test_format_ratio(ratio, expected) -> None:
    assert format_ratio(ratio) == expected


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [(0.955, "ratio", "95.5%"), (0.9, "ratio", "90%"), (0.00125, "ratio", "0.125%"),
     (7 * DAY, "seconds", "7d"), (0.25, "seconds", "250ms"), (1.5 * GiB, "bytes", "1.5 GiB"),
     (512 * 1024, "bytes_per_second", "512.0 KiB/s"), (4000, "count", "4,000"),
     (42, "celsius", "42")],
    ids=["ratio-as-written", "ratio-float-noise", "ratio-small", "duration", "ms", "bytes",
         "rate", "count", "celsius"],
)
def test_format_limit(value, unit, expected) -> None:
    assert format_limit(value, unit) == expected


def test_format_number_hides_float_noise_and_exponents() -> None:
    assert [format_number(v) for v in (0.1 + 0.2, 3.0, 1e6, 1234.5)] == [
        "0.3", "3", "1,000,000", "1,234.5"]


# -- the _bytes_per_second unit --------------------------------------------------------

@pytest.mark.parametrize(
    ("name", "unit"),
    [("swap_in_bytes_per_second", "bytes_per_second"), ("response_seconds", "seconds"),
     ("used_bytes", "bytes"), ("used_ratio", "ratio"), ("connections", "count")],
)
def test_unit_read_off_the_name(name, unit) -> None:
    assert MeasurementSpec(name, "d").unit == unit


SWAP_SPECS = (MeasurementSpec("swap_in_bytes_per_second", "swap-in rate"),)


def _problems(limit: object) -> list[str]:
    config = CheckConfig.model_validate({"name": "s", "type": "swap", "thresholds": {
        "swap_in_bytes_per_second": {"warning": limit}}})
    return [message for _, message in problems(config, SWAP_SPECS)]


@pytest.mark.parametrize("limit", ["1MiB", "500KB", 1048576], ids=["mib", "kb", "number"])
def test_rate_thresholds_accept_sizes_and_numbers(limit) -> None:
    assert _problems(limit) == []


@pytest.mark.parametrize("limit", ["85%", "5m"], ids=["percent", "duration"])
def test_rate_thresholds_reject_other_units(limit) -> None:
    (message,) = _problems(limit)
    assert "measured in bytes_per_second" in message
    assert "1MiB" in message


def test_swap_rate_threshold_judges_in_bytes_per_second() -> None:
    counters = [Swap(4 * GiB, GiB, 3 * GiB, 25.0, 0, 0),
                Swap(4 * GiB, GiB, 3 * GiB, 25.0, 20 * MiB, 0)]
    clock = iter([0.0, 10.0])  # 20 MiB in 10 s: 2 MiB/s
    check, ctx = build("swap", world={"swap_memory": lambda: counters.pop(0),
                                      "clock": lambda: next(clock)},
                       thresholds={"swap_in_bytes_per_second": {"warning": "1MiB"}})
    assert problems(check.config, check.MEASUREMENTS) == []
    assert check.run(ctx).status is Status.OK  # first run: no rate yet
    result = check.run(ctx)
    assert result.measurement("swap_in_bytes_per_second") == 2 * MiB
    assert result.status is Status.WARNING
    levels = ctx.evaluator.levels("swap_in_bytes_per_second")
    assert limit_note(levels, result.status, 2 * MiB) == " (warning at 1.0 MiB/s)"
