"""How report figures read, and how report periods are understood: pure functions."""

from __future__ import annotations

from datetime import date

import pytest

from patrol.collector.reports import present
from patrol.collector.reports.period import Period, parse_day


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "–"), (0, "0s"), (45.4, "45s"), (60, "1m"), (2900, "48m 20s"),
    (3600, "1h 00m"), (7380, "2h 03m"), (47 * 3600 + 59 * 60, "47h 59m"),
    (2 * 86400 + 4 * 3600, "2d 04h"), (-1272, "-21m 12s")],
    ids=["none", "zero", "seconds", "minute", "minutes", "hour", "hours", "under-two-days",
         "days", "negative"])
def test_durations_read_as_people_write_them(seconds, text):
    assert present.duration(seconds) == text


@pytest.mark.parametrize(("metric", "delta", "text", "verdict"), [
    ("tickets", 6, "+6", "worse"), ("mttr_seconds", -1272.0, "-21m 12s", "better"),
    ("respond_compliance", -1 / 3, "-33 pts", "worse"),
    ("resolve_compliance", 0.25, "+25 pts", "better"),
    ("mtta_seconds", 0.0, "0s", "same"), ("reopen_rate", None, "–", "same")],
    ids=["more-tickets", "faster-fix", "fewer-met", "more-met", "unchanged", "unknown"])
def test_a_trend_says_its_change_and_whether_it_is_good(metric, delta, text, verdict):
    assert (present.change(metric, delta), present.verdict(metric, delta)) == (text, verdict)


def test_values_and_ratios():
    assert present.percent(2 / 3) == "67%" and present.percent(None) == "–"
    assert present.value("respond_compliance", 1.0) == "100%"
    assert present.value("noisy_tickets", 2) == "2"
    assert present.when(1698397200.0) == "2023-10-27 09:00:00 UTC"


def test_a_period_covers_whole_utc_days_with_the_last_included():
    week = Period.days(date(2023, 10, 23), date(2023, 10, 29))
    assert week.as_dict() == {"from": "2023-10-23", "to": "2023-10-29", "days": 7}
    assert week.previous().as_dict() == {"from": "2023-10-16", "to": "2023-10-22",
                                         "days": 7}
    assert week.contains(week.end - 0.001) and not week.contains(week.end)
    assert week.label == "2023-10-23 to 2023-10-29"
    assert Period.day(date(2023, 10, 27)).label == "2023-10-27"


def test_bad_days_and_periods_are_explained():
    with pytest.raises(ValueError, match=r"^'27\.10\.2023' is not a date; write it as "
                                         r"YYYY-MM-DD, e\.g\. 2023-10-27$"):
        parse_day("27.10.2023")
    with pytest.raises(ValueError, match=r"the period ends \(2023-10-01\) before it "
                                         r"starts \(2023-10-02\)"):
        Period.days(date(2023, 10, 2), date(2023, 10, 1))
