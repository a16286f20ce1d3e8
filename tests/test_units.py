"""The shared units (patrol.contract.units): how an operator writes a duration or a
size in either config, and every way a duration is worded for a reader."""

from __future__ import annotations

import pytest

from patrol.contract.units import (
    approx_duration,
    format_duration,
    format_limit,
    humanize_duration,
    padded_duration,
    parse_duration,
    parse_size,
)


@pytest.mark.parametrize(("value", "seconds"), [
    (300, 300.0), (1.5, 1.5), ("90s", 90.0), ("15m", 900.0), ("4h", 14400.0),
    ("7d", 604800.0), ("1w", 604800.0), ("1h30m", 5400.0), ("0.5h", 1800.0),
    ("500ms", 0.5), (" 1h 30m ", 5400.0),
], ids=lambda v: str(v))
def test_durations_as_operators_write_them(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(("value", "message"), [
    ("", "'' is not a duration; write it like 30s, 5m, 1h30m or 14d"),
    ("5 minutes", "'5 minutes' is not a duration; write it like 30s, 5m, 1h30m or 14d"),
    ("h", "'h' is not a duration; write it like 30s, 5m, 1h30m or 14d"),
    ("5m3", "'5m3' is not a duration; write it like 30s, 5m, 1h30m or 14d"),
    (None, "None is not a duration; write it like 30s, 5m, 1h30m or 14d"),
    (True, "expected a duration such as 30s, 5m or 1h, not true/false"),
    (-5, "a duration cannot be negative"),
], ids=["empty", "words", "no-number", "trailing", "none", "bool", "negative"])
def test_a_bad_duration_says_how_to_write_one(value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(value)
    assert str(info.value) == message


@pytest.mark.parametrize("block", ["agent", "collector"])
def test_both_configs_word_a_bad_duration_the_same(tmp_path, block: str) -> None:
    from patrol.agent.config import load_config
    from patrol.collector.config import load_collector_config
    from patrol.contract.yamlsource import ConfigError

    path = tmp_path / f"{block}.yaml"
    option = "interval" if block == "agent" else "watchdog_interval"
    path.write_text(f"{block}:\n  {option}: soon\n")
    load = load_config if block == "agent" else load_collector_config
    with pytest.raises(ConfigError) as info:
        load(path)
    assert [str(p) for p in info.value.problems] == [
        f"{path}:2: {block}, option '{option}': 'soon' is not a duration; write it like "
        "30s, 5m, 1h30m or 14d"]


def test_sizes() -> None:
    assert parse_size("1.5GiB") == 1.5 * 1024**3
    assert parse_size("500MB") == 500e6
    with pytest.raises(ValueError, match="'lots' is not a size; write it like 512MiB"):
        parse_size("lots")


# One row a value: (seconds, summary, ticket body, reason, report).
WORDINGS = [
    (0, "0ms", "0 s", "0s", "0s"),
    (0.85, "850ms", "850 ms", "1s", "1s"),
    (4.5, "4.5s", "4.5 s", "5s", "4s"),
    (45, "45.0s", "45 s", "45s", "45s"),
    (89, "1m", "1 min 29 s", "1m", "1m 29s"),
    (2400, "40m", "40 min", "40m", "40m"),
    (2900, "48m", "48 min 20 s", "48m", "48m 20s"),
    (3590, "59m", "59 min 50 s", "1h", "59m 50s"),
    (3600, "1h", "1 h", "1h", "1h 00m"),
    (7380, "2h 3m", "2 h 3 min", "2h", "2h 03m"),
    (86400 + 300, "1d 5m", "1 d", "24h", "24h 05m"),
    (47 * 3600 + 59 * 60, "1d 23h", "1 d 23 h", "2d", "47h 59m"),
    (48 * 3600, "2d", "2 d", "2d", "2d 00h"),
    (2 * 86400 + 4 * 3600, "2d 4h", "2 d 4 h", "2d", "2d 04h"),
]


@pytest.mark.parametrize(("seconds", "summary", "body", "reason", "report"), WORDINGS,
                         ids=[str(row[0]) for row in WORDINGS])
def test_every_wording_of_a_duration(seconds: float, summary: str, body: str, reason: str,
                                     report: str) -> None:
    assert format_duration(seconds) == summary
    assert humanize_duration(seconds) == body
    assert approx_duration(seconds) == reason
    assert padded_duration(seconds) == report


def test_negative_durations() -> None:
    assert humanize_duration(-90) == "-1 min 30 s"
    assert approx_duration(-5) == "0s"  # a deadline a moment ago is not "-5s"
    assert padded_duration(-1272) == "-21m 12s"  # a report's change
    assert padded_duration(-0.2) == "0s"


def test_limits_keep_what_the_operator_wrote() -> None:
    assert format_limit(0.955, "ratio") == "95.5%"
    assert format_limit(7 * 86400, "seconds") == "7d"
    assert format_limit(1024**2, "bytes") == "1.0 MiB"
    assert format_limit(1000, "count") == "1,000"
