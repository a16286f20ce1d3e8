"""Maintenance windows: schedules, selectors, window ends, and validation messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from pydantic import ValidationError

from patrol.collector.policy.maintenance import MaintenanceWindow, active_windows, ended_since


def _at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _window(**fields: Any) -> MaintenanceWindow:
    return MaintenanceWindow.model_validate({"name": "w", "hosts": ["*"], **fields})


ONE_OFF = _window(start="2023-10-27T20:00:00Z", end="2023-10-27T22:00:00Z")
NAIVE_BERLIN = _window(start="2023-10-27T20:00:00", end="2023-10-27T22:00:00",
                       timezone="Europe/Berlin")
NIGHTLY_BERLIN = _window(cron="0 2 * * *", duration="2h", timezone="Europe/Berlin")
WEEKEND_NIGHT = _window(weekly={"days": ["sat"], "from": "22:00", "to": "02:00"})
HOURLY_QUARTER = _window(cron="*/15 * * * *", duration="20m")

COVERS = [
    ("one-off-before", ONE_OFF, "2023-10-27T19:59:59Z", False),
    ("one-off-start", ONE_OFF, "2023-10-27T20:00:00Z", True),
    ("one-off-inside", ONE_OFF, "2023-10-27T21:59:59Z", True),
    ("one-off-end-excluded", ONE_OFF, "2023-10-27T22:00:00Z", False),
    ("naive-times-in-window-zone", NAIVE_BERLIN, "2023-10-27T18:30:00Z", True),
    ("naive-times-not-utc", NAIVE_BERLIN, "2023-10-27T20:30:00Z", False),
    ("cron-summer-time", NIGHTLY_BERLIN, "2023-10-27T00:30:00Z", True),
    ("cron-after-duration", NIGHTLY_BERLIN, "2023-10-27T02:00:00Z", False),
    ("cron-winter-time-follows-wall-clock", NIGHTLY_BERLIN, "2023-10-30T01:30:00Z", True),
    ("cron-winter-time-not-an-hour-early", NIGHTLY_BERLIN, "2023-10-30T00:30:00Z", False),
    ("weekly-saturday-night", WEEKEND_NIGHT, "2023-10-28T23:00:00Z", True),
    ("weekly-crosses-midnight", WEEKEND_NIGHT, "2023-10-29T01:59:00Z", True),
    ("weekly-ends", WEEKEND_NIGHT, "2023-10-29T02:00:00Z", False),
    ("weekly-other-day", WEEKEND_NIGHT, "2023-10-27T23:00:00Z", False),
    ("overlapping-occurrences", HOURLY_QUARTER, "2023-10-27T10:16:00Z", True),
    ("between-occurrences-never", _window(cron="0 * * * *", duration="10m"),
     "2023-10-27T10:30:00Z", False),
]


@pytest.mark.parametrize(("window", "moment", "expected"), [c[1:] for c in COVERS],
                         ids=[c[0] for c in COVERS])
def test_covers(window: MaintenanceWindow, moment: str, expected: bool) -> None:
    assert window.covers(_at(moment)) is expected


DB_LABELS = {"role": "db", "env": "prod"}
SELECTORS = [
    ("host-glob", {"hosts": ["db-*"]}, "db-01", DB_LABELS, "disk", True),
    ("host-glob-miss", {"hosts": ["db-*"]}, "web-01", DB_LABELS, "disk", False),
    ("any-host-of-list", {"hosts": ["web-*", "db-01"]}, "db-01", DB_LABELS, "disk", True),
    ("label", {"hosts": [], "labels": {"role": "db"}}, "x", DB_LABELS, "disk", True),
    ("label-value-glob", {"hosts": [], "labels": {"env": "pro*"}}, "x", DB_LABELS, "disk", True),
    ("all-labels-must-match", {"hosts": [], "labels": {"role": "db", "env": "dev"}}, "x",
     DB_LABELS, "disk", False),
    ("missing-label", {"hosts": [], "labels": {"rack": "*"}}, "x", DB_LABELS, "disk", False),
    ("check-glob", {"hosts": [], "checks": ["disk*"]}, "x", {}, "disk-var", True),
    ("check-glob-miss", {"hosts": [], "checks": ["disk*"]}, "x", {}, "postgres", False),
    ("host-and-check-both-needed", {"hosts": ["db-*"], "checks": ["postgres"]}, "db-01", {},
     "disk", False),
    ("case-sensitive", {"hosts": ["DB-*"]}, "db-01", {}, "disk", False),
]


@pytest.mark.parametrize(("selectors", "host", "labels", "check", "expected"),
                         [s[1:] for s in SELECTORS], ids=[s[0] for s in SELECTORS])
def test_matches(selectors: dict[str, Any], host: str, labels: dict[str, str], check: str,
                 expected: bool) -> None:
    window = _window(start="2023-10-27T20:00:00Z", end="2023-10-27T22:00:00Z", **selectors)
    assert window.matches(host, labels, check) is expected


def test_active_windows_match_and_cover() -> None:
    db_patch = _window(name="db-patch", hosts=["db-*"], start="2023-10-27T20:00:00Z",
                       end="2023-10-27T22:00:00Z")
    backups = _window(name="backups", hosts=[], checks=["load"], cron="0 21 * * *",
                      duration="30m")
    later = _window(name="later", start="2023-10-28T20:00:00Z", end="2023-10-28T22:00:00Z")
    windows = [db_patch, backups, later]
    now = _at("2023-10-27T21:10:00Z")
    assert active_windows(windows, "db-01", {}, "load", now) == [db_patch, backups]
    assert active_windows(windows, "web-01", {}, "load", now) == [backups]
    assert active_windows(windows, "web-01", {}, "disk", now) == []


def test_ended_since_reports_each_window_once_with_its_latest_end() -> None:
    one_off = _window(name="one-off", start="2023-10-27T20:00:00Z", end="2023-10-27T22:00:00Z")
    hourly = _window(name="hourly", cron="0 * * * *", duration="10m")
    windows = [one_off, hourly, WEEKEND_NIGHT]
    last, now = _at("2023-10-27T21:55:00Z"), _at("2023-10-27T23:30:00Z")
    assert ended_since(windows, last, now) == [
        (one_off, _at("2023-10-27T22:00:00Z")), (hourly, _at("2023-10-27T23:10:00Z"))]
    assert ended_since(windows, _at("2023-10-27T22:00:00Z"), _at("2023-10-27T22:09:59Z")) == []
    assert ended_since([WEEKEND_NIGHT], _at("2023-10-29T01:00:00Z"),
                       _at("2023-10-29T02:00:00Z")) == [
        (WEEKEND_NIGHT, _at("2023-10-29T02:00:00Z"))]


INVALID = [
    ("no-schedule", {"hosts": ["*"]}, "give exactly one schedule: start and end (one-off), "
     "cron and duration, or weekly; got none"),
    ("two-schedules", {"hosts": ["*"], "cron": "0 2 * * *", "duration": "1h",
                       "weekly": {"days": ["mon"], "from": "01:00", "to": "02:00"}},
     "give exactly one schedule: start and end (one-off), cron and duration, or weekly; "
     "got cron and weekly"),
    ("no-selector", {"cron": "0 2 * * *", "duration": "1h"},
     "give at least one of hosts, labels or checks (hosts: ['*'] for the whole fleet)"),
    ("start-without-end", {"hosts": ["*"], "start": "2023-10-27T20:00:00Z"},
     "a one-off window needs both start and end"),
    ("end-before-start", {"hosts": ["*"], "start": "2023-10-27T20:00:00Z",
                          "end": "2023-10-27T19:00:00Z"}, "end must be after start"),
    ("cron-without-duration", {"hosts": ["*"], "cron": "0 2 * * *"},
     "a cron window needs a duration greater than zero, e.g. '2h'"),
    ("duration-without-cron", {"hosts": ["*"], "duration": "1h",
                               "weekly": {"days": ["mon"], "from": "01:00", "to": "02:00"}},
     "duration belongs to a cron window; this one has none"),
    ("bad-cron", {"hosts": ["*"], "cron": "61 * * * *", "duration": "1h"},
     "cron '61 * * * *': Error validating expression '61': the last value (61) is higher "
     "than the maximum value (59)"),
    ("cron-fields", {"hosts": ["*"], "cron": "0 2 * *", "duration": "1h"},
     "cron '0 2 * *': Wrong number of fields; got 4, expected 5"),
    ("bad-zone", {"hosts": ["*"], "cron": "0 2 * * *", "duration": "1h",
                  "timezone": "Europe/Berln"},
     "unknown time zone 'Europe/Berln'; use an IANA name such as 'UTC' or 'Europe/Berlin'"),
    ("bad-clock", {"hosts": ["*"], "weekly": {"days": ["sat"], "from": "25:00", "to": "02:00"}},
     "expected a time as HH:MM (00:00 to 23:59), got '25:00'"),
    ("empty-weekly", {"hosts": ["*"], "weekly": {"days": ["sat"], "from": "02:00",
                                                 "to": "02:00"}},
     "weekly: 'from' and 'to' are equal; the window would be empty"),
    ("bad-day", {"hosts": ["*"], "weekly": {"days": ["funday"], "from": "01:00", "to": "02:00"}},
     "Input should be 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or 'sun'"),
    ("typo", {"hosts": ["*"], "cron": "0 2 * * *", "duration": "1h", "check": ["x"]},
     "Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("fields", "message"), [i[1:] for i in INVALID],
                         ids=[i[0] for i in INVALID])
def test_invalid_windows_say_what_is_wrong(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        MaintenanceWindow.model_validate({"name": "w", **fields})
    assert message in str(caught.value)


def test_weekly_length_wraps_midnight() -> None:
    assert WEEKEND_NIGHT.length == 4 * 3600
    assert _window(weekly={"days": ["mon", "tue"], "from": "01:30", "to": "03:00"}).length == 5400


HOST_NIGHTLY = _window(cron="0 2 * * *", duration="1h", timezone="host")
HOST_ZONES = [
    ("tokyo-02:30-is-inside", "2023-10-26T17:30:00Z", "Asia/Tokyo", True),
    ("berlin-19:30-is-outside", "2023-10-26T17:30:00Z", "Europe/Berlin", False),
    ("berlin-02:30-is-inside", "2023-10-27T00:30:00Z", "Europe/Berlin", True),
    ("unknown-zone-means-utc", "2023-10-27T02:30:00Z", None, True),
    ("zone-this-collector-lacks-means-utc", "2023-10-27T02:30:00Z", "Mars/Olympus", True),
]


@pytest.mark.parametrize(("moment", "zone", "expected"), [c[1:] for c in HOST_ZONES],
                         ids=[c[0] for c in HOST_ZONES])
def test_windows_in_host_time_follow_each_hosts_zone(moment: str, zone: str | None,
                                                     expected: bool) -> None:
    assert HOST_NIGHTLY.covers(_at(moment), zone) is expected


def test_a_window_in_host_time_ends_at_each_hosts_own_hour() -> None:
    day = (_at("2023-10-26T12:00:00Z"), _at("2023-10-27T12:00:00Z"))
    assert ended_since([HOST_NIGHTLY], *day, "Asia/Tokyo") == [
        (HOST_NIGHTLY, _at("2023-10-26T18:00:00Z"))]
    assert ended_since([HOST_NIGHTLY], *day, "Europe/Berlin") == [
        (HOST_NIGHTLY, _at("2023-10-27T01:00:00Z"))]
    assert active_windows([HOST_NIGHTLY], "db-01", {}, "disk", _at("2023-10-26T17:30:00Z"),
                          "Asia/Tokyo") == [HOST_NIGHTLY]
