"""Scheduling: every check runs at start-up, then on its interval (with jitter) or
its cron schedule; runs never pile up."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent import scheduler as sched
from agent.config import ConfigError, load_config
from checks.config import CheckConfig


def config(**options) -> CheckConfig:
    return CheckConfig.model_validate({"name": "c", "type": "cpu", **options})


def test_interval_jobs_start_now_with_bounded_jitter_and_never_overlap() -> None:
    scheduler = sched.build(workers=2)
    scheduler.start(paused=True)
    sched.add_check(scheduler, config(interval="30s"), lambda: None, default_interval=60)
    job = scheduler.get_job("c")
    assert job.trigger.interval.total_seconds() == 30
    assert job.trigger.jitter == 3.0  # a tenth of the interval
    assert (job.next_run_time - datetime.now(UTC)).total_seconds() < 1
    assert job.max_instances == 1 and job.coalesce is True
    scheduler.shutdown(wait=False)


def test_default_interval_and_jitter_cap() -> None:
    scheduler = sched.build(workers=2)
    sched.add_check(scheduler, config(), lambda: None, default_interval=600)
    job = scheduler.get_job("c")
    assert job.trigger.interval.total_seconds() == 600
    assert job.trigger.jitter == sched.MAX_JITTER


def test_cron_checks_also_run_once_at_start_up() -> None:
    scheduler = sched.build(workers=2)
    scheduler.start(paused=True)
    sched.add_check(scheduler, config(schedule="0 7 * * *"), lambda: None,
                    default_interval=60)
    cron = scheduler.get_job("c")
    assert str(cron.trigger) == "cron[month='*', day='*', day_of_week='*', hour='7', minute='0']"
    startup = scheduler.get_job("c@startup")
    assert (startup.next_run_time - datetime.now(UTC)).total_seconds() < 1
    scheduler.shutdown(wait=False)


def test_a_slow_run_is_not_started_twice_and_the_startup_run_happens() -> None:
    scheduler = sched.build(workers=4)
    running, most, runs = [0], [0], [0]
    lock = threading.Lock()

    def slow() -> None:
        with lock:
            running[0] += 1
            runs[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.5)
        with lock:
            running[0] -= 1

    sched.add_check(scheduler, config(interval="0.1s"), slow, default_interval=60, jitter=0)
    scheduler.start()
    time.sleep(1.2)
    scheduler.shutdown(wait=True)
    assert runs[0] >= 2 and most[0] == 1


def test_cron_schedules_are_read_in_their_time_zone() -> None:
    scheduler = sched.build(workers=2)
    sched.add_check(scheduler, config(schedule="0 7 * * *", timezone="America/New_York"),
                    lambda: None, default_interval=60)
    assert str(scheduler.get_job("c").trigger.timezone) == "America/New_York"


BERLIN_0701 = datetime(2024, 5, 1, 5, 1, tzinfo=UTC).timestamp()  # 07:01 in Berlin (CEST)
NEXT_DUE = [
    ("cron-next-day-after-todays-run", dict(schedule="0 7 * * *", timezone="Europe/Berlin"),
     BERLIN_0701, datetime(2024, 5, 2, 5, 0, tzinfo=UTC)),
    ("cron-later-today-after-a-start-up-run",
     dict(schedule="0 7 * * *", timezone="Europe/Berlin"),
     datetime(2024, 5, 1, 3, 0, tzinfo=UTC).timestamp(), datetime(2024, 5, 1, 5, 0, tzinfo=UTC)),
    ("cron-run-exactly-on-time-is-not-due-again",
     dict(schedule="0 7 * * *", timezone="Europe/Berlin"),
     datetime(2024, 5, 1, 5, 0, tzinfo=UTC).timestamp(), datetime(2024, 5, 2, 5, 0, tzinfo=UTC)),
    ("interval-plus-most-jitter", dict(interval=60.0), BERLIN_0701,
     datetime(2024, 5, 1, 5, 2, 5, tzinfo=UTC)),
]


@pytest.mark.parametrize(("timing", "last_run", "due"), [c[1:] for c in NEXT_DUE],
                         ids=[c[0] for c in NEXT_DUE])
def test_next_due(timing: dict, last_run: float, due: datetime) -> None:
    assert sched.next_due(last_run, **timing) == due.timestamp()


def test_nothing_is_due_before_the_first_run() -> None:
    assert sched.next_due(None, interval=60.0) is None


@pytest.mark.parametrize(("snippet", "expected"), [
    pytest.param("    schedule: '0 7 * * *'\n    timezone: Mars/Olympus\n",
                 "{f}:5: check 'c', option 'timezone': unknown time zone 'Mars/Olympus'; use "
                 "an IANA name such as 'UTC' or 'Europe/Berlin'", id="unknown-zone"),
    pytest.param("    interval: 30s\n    timezone: Europe/Berlin\n",
                 "{f}:5: check 'c', option 'timezone': timezone applies to a cron schedule "
                 "and this check has none; add schedule: (e.g. '0 7 * * *') or remove "
                 "timezone", id="zone-without-schedule"),
])
def test_timezone_mistakes_name_file_line_and_option(tmp_path: Path, snippet: str,
                                                     expected: str) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("checks:\n  - name: c\n    type: cpu\n" + snippet)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert [str(p) for p in caught.value.problems] == [expected.format(f=path)]
