"""When checks run: APScheduler 3 jobs, one per check, and when each runs next.

Interval checks run every ``interval`` with jitter (so a fleet restarted at once
does not probe a shared database in lock-step); ``schedule:`` checks run on their
cron expression, for routine inspections at fixed times, read in the check's
``timezone:`` (default: the host's local zone, as crontab does; a daily 07:00
inspection means 07:00 where the host is). Every check also runs once at start-up,
so ``/metrics`` has real data within moments of a restart. ``max_instances=1`` and
``coalesce`` mean a slow check never piles up runs.

:func:`next_due` answers "when should this check's next result exist?" from the same
trigger definitions, for the heartbeat: the collector judges silence against it, so
a daily inspection is not "stale" between its runs, and one that missed its run is.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from checks.config import CheckConfig

MAX_JITTER = 5.0
CRON_MISFIRE_GRACE = 300  # seconds a late cron run may still start


def build(workers: int) -> BackgroundScheduler:
    return BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(max_workers=workers)},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=UTC,
    )


def default_jitter(interval: float) -> float:
    """A tenth of the interval, at most 5 s: spreads load, keeps cadence honest."""
    return min(interval / 10.0, MAX_JITTER)


def zone(name: str | None) -> tzinfo:
    """The named zone, or the host's local zone (what an unqualified crontab means)."""
    if name:
        return ZoneInfo(name)
    from tzlocal import get_localzone  # an APScheduler 3 dependency

    return get_localzone()


def zone_name(name: str | None) -> str:
    """The IANA name of :func:`zone` (announced to the collector)."""
    return name or str(zone(None))


def cron_trigger(schedule: str, timezone: str | None) -> CronTrigger:
    return CronTrigger.from_crontab(schedule, timezone=zone(timezone))


def next_due(last_run: float | None, *, interval: float | None = None,
             schedule: str | None = None, timezone: str | None = None) -> float | None:
    """When the run after ``last_run`` (epoch) is due: the cron schedule's first time
    after it, or ``interval`` plus the most jitter later. None before the first run.

    A cron check that missed its run keeps announcing that run's time, so the
    collector sees it overdue."""
    if last_run is None:
        return None
    if schedule:
        after = datetime.fromtimestamp(last_run, UTC)
        fire = cron_trigger(schedule, timezone).get_next_fire_time(None, after)
        if fire is not None and fire.timestamp() <= last_run:  # "at or after": not this one
            fire = cron_trigger(schedule, timezone).get_next_fire_time(
                None, datetime.fromtimestamp(last_run + 1, UTC))
        return None if fire is None else fire.timestamp()
    if interval:
        return last_run + interval + default_jitter(interval)
    return None


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
        trigger = cron_trigger(config.schedule, config.timezone)
        scheduler.add_job(job, trigger, id=config.name, name=config.name,
                          misfire_grace_time=CRON_MISFIRE_GRACE)
        scheduler.add_job(job, "date", run_date=now, id=f"{config.name}@startup",
                          name=config.name, misfire_grace_time=None)
        return
    interval = config.interval or default_interval
    spread = default_jitter(interval) if jitter is None else min(jitter, interval / 2)
    trigger = IntervalTrigger(seconds=interval, jitter=spread or None, timezone=UTC)
    scheduler.add_job(job, trigger, id=config.name, name=config.name, next_run_time=now,
                      misfire_grace_time=max(1, int(interval)))
