"""Scheduling: every check runs at start-up, then on its interval (with jitter) or
its cron schedule; runs never pile up."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from patrol.agent import scheduler as sched
from patrol.agent.config import ConfigError, load_config
from patrol.checks.config import CheckConfig


def config(**options) -> CheckConfig:
    return CheckConfig.model_validate({"name": "c", "type": "cpu", **options})


def test_interval_jobs_start_now_with_bounded_jitter() -> None:
    scheduler = sched.build(workers=2)
    sched.add_check(scheduler, config(interval="30s"), lambda: None, default_interval=60)
    job = scheduler.get_job("c")
    assert (job.trigger.seconds, job.trigger.jitter) == (30, 3.0)  # a tenth of the interval
    assert job.next_run - time.time() < 1
    later = [job.trigger.next_after(job.next_run) - job.next_run for _ in range(200)]
    assert all(30 <= gap <= 33 for gap in later)


def test_default_interval_and_jitter_cap() -> None:
    scheduler = sched.build(workers=2)
    sched.add_check(scheduler, config(), lambda: None, default_interval=600)
    job = scheduler.get_job("c")
    assert (job.trigger.seconds, job.trigger.jitter) == (600, sched.MAX_JITTER)


def test_cron_checks_also_run_once_at_start_up() -> None:
    scheduler = sched.build(workers=2)
    sched.add_check(scheduler, config(schedule="0 7 * * *", timezone="UTC"), lambda: None,
                    default_interval=60)
    cron = scheduler.get_job("c")
    fire = datetime.fromtimestamp(cron.next_run, UTC)
    assert (fire.hour, fire.minute, fire.second) == (7, 0, 0)
    assert 0 < cron.next_run - time.time() <= 86400
    startup = scheduler.get_job("c@startup")
    assert startup.next_run - time.time() < 1
    assert startup.trigger.next_after(startup.next_run) is None


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


def test_runs_follow_the_interval_and_a_failing_check_keeps_its_turns() -> None:
    scheduler = sched.build(workers=2)
    runs: list[float] = []

    def failing() -> None:
        runs.append(time.monotonic())
        raise RuntimeError("a bug in a check")

    sched.add_check(scheduler, config(interval="0.2s"), failing, default_interval=60, jitter=0)
    scheduler.start()
    time.sleep(1.1)
    scheduler.shutdown(wait=True)
    assert 4 <= len(runs) <= 7


def test_reloading_replaces_the_jobs() -> None:
    scheduler = sched.build(workers=2)
    old, new = [], []
    sched.add_check(scheduler, config(interval="0.1s"), lambda: old.append(1),
                    default_interval=60, jitter=0)
    scheduler.start()
    time.sleep(0.35)
    scheduler.remove_all_jobs()
    sched.add_check(scheduler, config(interval="0.1s"), lambda: new.append(1),
                    default_interval=60, jitter=0)
    count = len(old)
    time.sleep(0.35)
    scheduler.shutdown(wait=True)
    assert count >= 2 and len(old) <= count + 1 and len(new) >= 2


def test_a_late_turn_runs_once_and_a_turn_later_than_its_grace_is_skipped() -> None:
    """A host that was suspended or starved: the late turn runs once (not once per
    missed turn), one later than the interval is skipped, the cadence holds."""
    now = [1000.0]
    scheduler = sched.Scheduler(workers=1, clock=lambda: now[0])
    ran: list[float] = []
    scheduler.add_job("c", lambda: ran.append(now[0]), sched.Interval(10.0, 0.0, 1000.0),
                      1000.0, grace=10.0)
    scheduler.start()
    try:
        for moment in (1000.0, 1019.0, 1055.0, 1060.0):
            now[0] = moment
            scheduler.wake()
            time.sleep(0.1)
    finally:
        scheduler.shutdown(wait=True)
    assert ran == [1000.0, 1019.0, 1060.0]
    assert scheduler.get_job("c").next_run == 1070.0


def test_cron_schedules_are_read_in_their_time_zone() -> None:
    scheduler = sched.build(workers=2)
    sched.add_check(scheduler, config(schedule="0 7 * * *", timezone="America/New_York"),
                    lambda: None, default_interval=60)
    job = scheduler.get_job("c")
    assert str(job.trigger.timezone) == "America/New_York"
    fire = datetime.fromtimestamp(job.next_run, job.trigger.timezone)
    assert (fire.hour, fire.minute) == (7, 0)


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
