"""When checks run: one job per check on a small scheduler of our own.

Interval checks run every ``interval`` with jitter (so a fleet restarted at once
does not probe a shared database in lock-step); ``schedule:`` checks run on their
cron expression, for routine inspections at fixed times, read in the check's
``timezone:`` (default: the host's local zone, as crontab does; a daily 07:00
inspection means 07:00 where the host is). Every check also runs once at start-up,
so ``/metrics`` has real data within moments of a restart. A check still running
when its next turn comes skips that turn (runs never pile up); a late turn runs
once, however many turns it was late for, and the next one is planned on the
cadence after it; a turn later than its grace (an interval check's interval, five
minutes for cron) is skipped.

Why not APScheduler's BackgroundScheduler any more: the agent needs exactly the
above, and the scheduler with its thread-pool executor, job stores and events
pulled in multiprocessing and asyncio: 2.6 MiB PSS and ~45 ms of start-up
(bench/README.md), a tenth of the agent's footprint for ~100 lines. Cron
expressions are still read by APScheduler's ``CronTrigger`` (also what validates
them in ``checks.config``), imported only when a check has a ``schedule:``.

:func:`next_due` answers "when should this check's next result exist?" from the same
trigger definitions, for the heartbeat: the collector judges silence against it, so
a daily inspection is not "stale" between its runs, and one that missed its run is.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from patrol.contract.cron import crontab_trigger

if TYPE_CHECKING:
    from patrol.checks.config import CheckConfig

log = logging.getLogger("patrol.scheduler")

MAX_JITTER = 5.0
CRON_MISFIRE_GRACE = 300.0  # seconds a late cron run may still start


class Trigger(Protocol):
    def next_after(self, moment: float) -> float | None:
        """The first run strictly after ``moment`` (epoch s); None: never again."""


@dataclass(frozen=True)
class Interval:
    """Every ``seconds`` on a fixed cadence from ``start``, each run up to ``jitter``
    seconds late (jitter does not accumulate: the cadence stays honest)."""

    seconds: float
    jitter: float
    start: float

    def next_after(self, moment: float) -> float:
        slots = max(0, int((moment - self.start) // self.seconds) + 1)
        return self.start + slots * self.seconds + random.uniform(0.0, self.jitter)


@dataclass(frozen=True)
class Cron:
    """A crontab line read in ``timezone`` (APScheduler's ``CronTrigger``)."""

    trigger: Any

    @property
    def timezone(self) -> tzinfo:
        return self.trigger.timezone

    def next_after(self, moment: float) -> float | None:
        fire = self.trigger.get_next_fire_time(None, datetime.fromtimestamp(moment, UTC))
        if fire is not None and fire.timestamp() <= moment:  # "at or after": not this one
            fire = self.trigger.get_next_fire_time(None,
                                                   datetime.fromtimestamp(moment + 1, UTC))
        return None if fire is None else fire.timestamp()


@dataclass(frozen=True)
class Once:
    """No further run (the start-up run of a cron check)."""

    def next_after(self, moment: float) -> None:
        return None


@dataclass
class Job:
    id: str
    func: Callable[[], None]
    trigger: Trigger
    next_run: float | None
    grace: float
    running: bool = False
    order: int = field(default_factory=itertools.count().__next__)


class Scheduler:
    """Jobs on triggers, run by up to ``workers`` threads; one run of a job at a time."""

    def __init__(self, workers: int, clock: Callable[[], float] = time.time) -> None:
        self.workers = workers
        self.clock = clock
        self._jobs: dict[str, Job] = {}
        self._cond = threading.Condition()
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self.running = False

    # -- jobs -------------------------------------------------------------------------

    def add_job(self, job_id: str, func: Callable[[], None], trigger: Trigger,
                first_run: float | None, grace: float) -> None:
        with self._cond:
            self._jobs[job_id] = Job(job_id, func, trigger, first_run, grace)
            self._cond.notify()

    def get_job(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def remove_all_jobs(self) -> None:
        """Forget every job; a run in progress finishes (its result still counts)."""
        with self._cond:
            self._jobs.clear()
            self._cond.notify()

    def wake(self) -> None:
        """Look at the clock now rather than when the next run is due (the clock may
        have jumped)."""
        with self._cond:
            self._cond.notify()

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=self.workers,
                                        thread_name_prefix="patrol-check")
        self.running = True
        self._thread = threading.Thread(target=self._loop, name="patrol-scheduler",
                                        daemon=True)
        self._thread.start()

    def shutdown(self, wait: bool = True) -> None:
        with self._cond:
            self.running = False
            self._cond.notify()
        if self._thread is not None and wait:
            self._thread.join()
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)

    # -- the loop ---------------------------------------------------------------------

    def _loop(self) -> None:
        with self._cond:
            while self.running:
                now = self.clock()
                pending = [(j.next_run, j.order, j) for j in self._jobs.values()
                           if j.next_run is not None]
                heapq.heapify(pending)
                while pending and pending[0][0] <= now:
                    _, _, job = heapq.heappop(pending)
                    self._fire(job, now)
                upcoming = [j.next_run for j in self._jobs.values() if j.next_run is not None]
                self._cond.wait(max(0.0, min(upcoming) - now) if upcoming else None)

    def _fire(self, job: Job, now: float) -> None:
        """Run ``job`` now unless it is still running or too late; then plan its next
        run after now, so turns missed meanwhile collapse into this one."""
        due = job.next_run
        assert due is not None
        job.next_run = job.trigger.next_after(max(now, due))
        if job.running:
            log.warning("check %s is still running from its last turn; this turn is "
                        "skipped", job.id)
            return
        if now - due > job.grace:
            log.warning("check %s missed its turn by %.0f s (more than %.0f s); skipped, "
                        "next turn as planned", job.id, now - due, job.grace)
            return
        job.running = True
        assert self._pool is not None
        try:
            self._pool.submit(self._run, job)
        except RuntimeError:  # the pool is shutting down
            job.running = False

    def _run(self, job: Job) -> None:
        try:
            job.func()
        except Exception:
            log.exception("check %s failed outside its own error handling", job.id)
        finally:
            with self._cond:
                job.running = False
                self._cond.notify()


def build(workers: int) -> Scheduler:
    return Scheduler(workers)


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


def cron_trigger(schedule: str, timezone: str | None) -> Cron:
    return Cron(crontab_trigger(schedule, zone(timezone)))


def next_due(last_run: float | None, *, interval: float | None = None,
             schedule: str | None = None, timezone: str | None = None) -> float | None:
    """When the run after ``last_run`` (epoch) is due: the cron schedule's first time
    after it, or ``interval`` plus the most jitter later. None before the first run.

    A cron check that missed its run keeps announcing that run's time, so the
    collector sees it overdue."""
    if last_run is None:
        return None
    if schedule:
        return cron_trigger(schedule, timezone).next_after(last_run)
    if interval:
        return last_run + interval + default_jitter(interval)
    return None


def add_check(
    scheduler: Scheduler,
    config: CheckConfig,
    job: Callable[[], None],
    default_interval: float,
    jitter: float | None = None,
) -> None:
    """Schedule ``job`` for one check, plus its start-up run."""
    now = scheduler.clock()
    if config.schedule:
        cron = cron_trigger(config.schedule, config.timezone)
        scheduler.add_job(config.name, job, cron, cron.next_after(now), CRON_MISFIRE_GRACE)
        scheduler.add_job(f"{config.name}@startup", job, Once(), now, float("inf"))
        return
    interval = config.interval or default_interval
    spread = default_jitter(interval) if jitter is None else min(jitter, interval / 2)
    scheduler.add_job(config.name, job, Interval(interval, spread, now), now,
                      max(1.0, interval))
