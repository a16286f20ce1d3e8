"""Scheduling: every check runs at start-up, then on its interval (with jitter) or
its cron schedule; runs never pile up."""

from __future__ import annotations

import threading
import time
from datetime import datetime, UTC

from agent import scheduler as sched
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
