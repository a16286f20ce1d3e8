"""Crontab weekdays mean what crontab says, in every schedule Patrol reads.

APScheduler 3 counts weekdays from Monday; crontab (and every operator) from Sunday.
Before patrol.contract.cron, ``0 8 * * 1`` ran a check on Tuesdays and a Sunday
maintenance window (``0 2 * * 0``) opened on Mondays: tickets during the real window,
none during the wrong one."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from patrol.agent.scheduler import next_due
from patrol.collector.policy.maintenance import MaintenanceWindow
from patrol.collector.reports.schedule import ReportsSettings, due
from patrol.contract.cron import crontab_trigger, crontab_weekdays

# 2026-12-06 is a Sunday, 2026-12-07 a Monday.
SATURDAY_NOON = datetime(2026, 12, 5, 12, tzinfo=UTC).timestamp()


def weekday_of(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%a")


@pytest.mark.parametrize(("field", "names"), [
    ("1", "mon"), ("0", "sun"), ("7", "sun"), ("1-5", "mon,tue,wed,thu,fri"),
    ("0-2", "sun,mon,tue"), ("5-7", "sun,fri,sat"), ("mon,3", "mon,wed"), ("*", "*"),
    ("*/2", "sun,tue,thu,sat"), ("mon-fri/2", "mon,wed,fri"), ("SUN", "sun"),
    ("1/3", "mon,thu"), ("sat-sun", "sun,sat")])
def test_weekday_fields_become_the_days_crontab_means(field: str, names: str) -> None:
    assert crontab_weekdays(field) == names


@pytest.mark.parametrize(("field", "reason"), [
    ("8", "not 0-7"), ("fri-mon", "runs forward"), ("mon/0", "positive number"),
    ("funday", "not a day of week")])
def test_a_weekday_field_cron_would_refuse_says_why(field: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        crontab_weekdays(field)


@pytest.mark.parametrize(("line", "day"), [
    ("0 8 * * 1", "Mon"), ("0 8 * * 0", "Sun"), ("0 8 * * 7", "Sun"), ("0 8 * * 6", "Sat"),
    ("0 8 * * mon", "Mon")])
def test_a_cron_check_runs_on_the_weekday_crontab_means(line: str, day: str) -> None:
    assert weekday_of(next_due(SATURDAY_NOON - 3600, schedule=line, timezone="UTC")) == day


def test_a_sunday_maintenance_window_covers_sunday_not_monday() -> None:
    window = MaintenanceWindow.model_validate({
        "name": "sunday-backup", "hosts": ["*"], "cron": "0 2 * * 0", "duration": "3h"})
    sunday_3am = datetime(2026, 12, 6, 3, tzinfo=UTC).timestamp()
    monday_3am = datetime(2026, 12, 7, 3, tzinfo=UTC).timestamp()
    assert window.covers(sunday_3am)
    assert not window.covers(monday_3am)


def test_a_monday_retrospective_is_made_on_monday() -> None:
    config = ReportsSettings.model_validate({
        "retro": {"cron": "0 8 * * 1", "recipients": ["lead@example.org"]}})
    schedule = config.scheduled()["retro"]
    owed = due("retro", schedule, "UTC", datetime(2026, 12, 7, 8, 30, tzinfo=UTC).timestamp())
    assert owed is not None
    assert (str(owed.first), str(owed.last)) == ("2026-11-30", "2026-12-06")  # Mon..Sun


def test_a_trigger_is_read_in_the_given_zone() -> None:
    trigger = crontab_trigger("0 8 * * 1", "Asia/Shanghai")
    fire = trigger.get_next_fire_time(None, datetime(2026, 12, 5, tzinfo=UTC))
    assert fire.strftime("%a %H:%M %Z") == "Mon 08:00 CST"


def test_every_timezone_option_is_read_by_one_function_with_one_message() -> None:
    """Check schedules, maintenance windows and report schedules name a bad zone the
    same way; maintenance also says it takes ``host``."""
    from patrol.contract.cron import time_zone

    assert str(time_zone("Europe/Berlin")) == "Europe/Berlin"
    with pytest.raises(ValueError) as plain:
        time_zone("Mars/Olympus")
    assert str(plain.value) == ("unknown time zone 'Mars/Olympus'; use an IANA name such "
                                "as 'UTC' or 'Europe/Berlin'")
    with pytest.raises(ValueError) as host:
        time_zone("../etc/passwd", or_also="'host' for each host's own zone")
    assert str(host.value).endswith("'Europe/Berlin', or 'host' for each host's own zone")
