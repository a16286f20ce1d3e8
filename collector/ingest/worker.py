"""One thread that runs the engine's work for the ingest routes, many requests at a time.

Why: handing each request to the threadpool (Starlette's ``run_in_threadpool``: anyio's
limiter, cancel scope and task checks, then a thread wake-up per request) cost more CPU
than the engine's own work for one event (py-spy: 30 % of the collector's samples).
Here the event loop puts a job on a queue and awaits a future; this thread takes every
job waiting at that moment, runs them, and completes all their futures with one
``loop.call_soon_threadsafe`` per event loop.

Decisions:

- Event requests waiting together whose events have distinct ``dedup_key`` and
  ``event_id`` (within and across the requests) are ONE unit of work
  (:meth:`collector.engine.Engine.ingest_requests`): one transaction, one COMMIT, one
  multi-row insert. Each request is still answered only after the COMMIT that holds its
  events (the engine returns after it), so a 202 survives kill -9 as before.
- A poison event fails alone: when the shared unit fails for anything but the store,
  it is rolled back whole and each request runs again on its own
  (:func:`collector.ingest.fastpath.process`), so the others get their 202 and the
  poison's request its 422. A store failure fails every request of the unit (503):
  none of them was acknowledged.
- Requests that cannot share (a key or id seen twice, a full heartbeat) run one after
  the other, in arrival order.
- The thread starts with the first job and ends after IDLE_SECONDS without one, so an
  app that is built and dropped (tests, a reload) leaves no thread behind for long.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from patrol.collector.store import StoreError

if TYPE_CHECKING:
    from patrol.collector.engine import Engine
    from patrol.contract.wire import Event

log = logging.getLogger("patrol.collector.api")

IDLE_SECONDS = 5.0
MAX_SHARED_EVENTS = 1000  # events in one shared unit of work, at most


class Job:
    """One request's work: ``events`` to ingest, or ``work(argument)``."""

    __slots__ = ("argument", "events", "future", "loop", "outcome", "work")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any],
                 events: list[Event] | None, work: Callable[[Any], Any] | None,
                 argument: Any) -> None:
        self.loop, self.future = loop, future
        self.events, self.work, self.argument = events, work, argument
        self.outcome: tuple[bool, Any] = (False, None)  # (failed, result or exception)


def _settle(jobs: list[Job]) -> None:
    """On the event loop: complete each job's future (unless its request went away)."""
    for job in jobs:
        if job.future.done():
            continue
        failed, value = job.outcome
        if failed:
            job.future.set_exception(value)
        else:
            job.future.set_result(value)


class IngestWorker:
    """Runs jobs for :class:`collector.ingest.fastpath.IngestFastPath` on one thread.

    ``run_one(job)`` is the fast path's own processing of one request (its error
    mapping); ``shared(requests)`` the engine's unit of work for several."""

    def __init__(self, engine: Engine, run_one: Callable[[Job], Any]) -> None:
        self.engine = engine
        self.run_one = run_one
        self._queue: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = False

    async def submit(self, events: list[Event] | None, work: Callable[[Any], Any] | None,
                     argument: Any) -> Any:
        """Run the job on the worker thread; its result, or its exception raised here."""
        loop = asyncio.get_running_loop()
        job = Job(loop, loop.create_future(), events, work, argument)
        self._queue.put(job)
        if not self._running:
            with self._lock:
                if not self._running:
                    self._running = True
                    threading.Thread(target=self._serve, name="collector-ingest",
                                     daemon=True).start()
        return await job.future

    def _serve(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._running = False
                        return
                continue
            jobs = [first]
            while True:
                try:
                    jobs.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._run(jobs)
            except BaseException as exc:  # never leave a request waiting forever
                log.exception("the ingest worker failed")
                for job in jobs:
                    if job.outcome == (False, None):
                        job.outcome = (True, exc)
            loops: dict[asyncio.AbstractEventLoop, list[Job]] = {}
            for job in jobs:
                loops.setdefault(job.loop, []).append(job)
            for loop, done in loops.items():
                with suppress(RuntimeError):  # a closed loop: nobody waits for these
                    loop.call_soon_threadsafe(_settle, done)

    def _run(self, jobs: list[Job]) -> None:
        """Run ``jobs``: shareable event requests together, the rest alone, in order."""
        group: list[Job] = []
        keys: set[str] = set()
        ids: set[str] = set()
        for job in jobs:
            events = job.events
            if events is not None and _distinct(events) and \
                    len(events) + sum(len(j.events or ()) for j in group) <= MAX_SHARED_EVENTS \
                    and keys.isdisjoint(e.dedup_key for e in events) \
                    and ids.isdisjoint(e.event_id for e in events):
                group.append(job)
                keys.update(e.dedup_key for e in events)
                ids.update(e.event_id for e in events)
                continue
            self._shared(group)
            group, keys, ids = [], set(), set()
            if events is not None and _distinct(events):
                group.append(job)
                keys.update(e.dedup_key for e in events)
                ids.update(e.event_id for e in events)
            else:
                self._alone(job)
        self._shared(group)

    def _alone(self, job: Job) -> None:
        try:
            job.outcome = (False, self.run_one(job))
        except Exception as exc:
            job.outcome = (True, exc)

    def _shared(self, group: list[Job]) -> None:
        """One unit of work for the group's requests; each alone if that fails."""
        if len(group) < 2:
            for job in group:
                self._alone(job)
            return
        try:
            outcomes = self.engine.ingest_requests([job.events or [] for job in group])
        except StoreError as exc:
            for job in group:
                job.outcome = (True, exc)
            return
        if outcomes is None:  # one request's event failed it: each alone now
            for job in group:
                self._alone(job)
            return
        for job, outcome in zip(group, outcomes, strict=True):
            job.outcome = (False, outcome)


def _distinct(events: list[Event]) -> bool:
    """Whether ``events`` could be one unit of work (no key or id twice)."""
    return len({e.dedup_key for e in events}) == len(events) == \
        len({e.event_id for e in events})
