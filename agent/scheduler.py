"""When checks run: APScheduler 3 jobs, one per check.

Interval checks run every ``interval`` with jitter (so a fleet restarted at once
does not probe a shared database in lock-step); ``schedule:`` checks run on their
cron expression, for routine inspections at fixed times. Every check also runs
once at start-up, so ``/metrics`` has real data within moments of a restart.
``max_instances=1`` and ``coalesce`` mean a slow check never piles up runs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, UTC

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from checks.config import CheckConfig

MAX_JITTER = 5.0


def build(workers: int) -> BackgroundScheduler:
    return BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(max_workers=workers)},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=UTC,
    )


def default_jitter(interval: float) -> float:
    """A tenth of the interval, at most 5 s: spreads load, keeps cadence honest."""
    return min(interval / 10.0, MAX_JITTER)


def add_check(
    scheduler: BackgroundScheduler,
    config: CheckConfig,
    job: Callable[[], None],
    default_interval: float,
    jitter: float | None = None,
) -> None:
    """Schedule ``job`` for one check, plus its start-up run."""
    now = datetime.now(UTC)
    if config.schedule:
        from apscheduler.triggers.cron import CronTrigger  # only when a schedule: exists

        trigger = CronTrigger.from_crontab(config.schedule, timezone=UTC)
        scheduler.add_job(job, trigger, id=config.name, name=config.name,
                          misfire_grace_time=300)
        scheduler.add_job(job, "date", run_date=now, id=f"{config.name}@startup",
                          name=config.name, misfire_grace_time=None)
        return
    interval = config.interval or default_interval
    spread = default_jitter(interval) if jitter is None else min(jitter, interval / 2)
    trigger = IntervalTrigger(seconds=interval, jitter=spread or None, timezone=UTC)
    scheduler.add_job(job, trigger, id=config.name, name=config.name, next_run_time=now,
                      misfire_grace_time=max(1, int(interval)))
