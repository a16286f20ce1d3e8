"""Delivers the outbox to the collector(s): one daemon thread per collector.

Each collector has its own lane (thread, kept-alive connection, backoff), so a dead
collector never delays delivery to a live one. A lane sends pending events in
order, in batches (``POST {url}/api/v1/events`` with ``{"events": [...]}``), then
the pending heartbeat (``POST {url}/api/v1/heartbeats``), and sleeps until the
outbox wakes it on a put, so a breach reaches a healthy collector in milliseconds.

Outcomes of a POST:

- **2xx**: delivered; the rows are deleted. The collector answers a repeated
  ``event_id`` with 2xx too, which makes retries after a crash harmless.
- **a kept-alive connection the collector had just closed**: sent again at once on
  a fresh connection (:mod:`agent.collector_http`), never seen here.
- **408, 429, 5xx, connection errors, timeouts**: retried, the whole lane backing
  off exponentially (1 s doubling to 60 s, with jitter so a fleet does not return
  in lockstep), or exactly ``Retry-After`` when the collector sends one (capped at
  10 minutes so a wrong header cannot silence an agent for a day).
- **401 and 403**: retried with the same backoff, and logged at ERROR the first
  time. They say nothing about the payload: the token is wrong or not yet known to
  the collector (a rotation half done), which an operator fixes on either side, and
  then everything queued must still arrive, in order. Dead-lettering instead would
  throw away every event of the outage until someone requeued them by hand.
- **any other status (4xx)**: permanent for that payload (the collector says what
  it cannot take): logged once at ERROR with an excerpt of the response, the rows
  dead-lettered (kept with the reason, counted in the backlog and in
  ``patrol_outbox_dead_lettered_total``, never retried unless :meth:`Outbox.revive`
  requeues them), and the queue moves on to the next row. A refused *batch* that
  may hold one bad event (400, 413, 422) is retried one event at a time, so a
  single malformed event cannot take its neighbours down with it, and the
  heartbeat behind them still goes (a poison event must not make a live host look
  unreachable).
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import Any

from patrol.agent.collector_http import Answer, CollectorConnection
from patrol.agent.outbox import Backlog, Outbox, Row
from patrol.agent.version import AGENT_VERSION

log = logging.getLogger("patrol.pusher")

EVENTS_PATH = "/api/v1/events"
HEARTBEATS_PATH = "/api/v1/heartbeats"
RETRYABLE = frozenset({408, 429})
NOT_ALLOWED = frozenset({401, 403})  # the credential, not the payload: retried
SPLITTABLE = frozenset({400, 413, 422})  # statuses that may blame one event in a batch
MAX_RETRY_AFTER = 600.0
EXCERPT = 500
# The lane closes its connection after this long idle, before the collector would:
# uvicorn's keep-alive timeout (collector/service.py) is 5 s by default.
IDLE_SECONDS = 4.0


@dataclass(frozen=True)
class Target:
    """One collector: base ``url`` (no path), bearer ``token``, optional CA bundle."""

    url: str
    token: str | None = None
    ca_file: Path | None = None

    @property
    def name(self) -> str:
        """The key of this collector's rows in the outbox."""
        return self.url.rstrip("/")


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return min(max(0.0, when - now), MAX_RETRY_AFTER)


def _json_body(body: Any) -> bytes:
    """The POST body. NaN and Infinity are written as Python writes them (a strict
    encoder would raise, and the lane would retry forever, holding back every row
    behind it). The collector decides: it reads them as null and refuses only a
    measurement that is not a number (a 422: that one row is dead-lettered)."""
    return json.dumps(body, separators=(",", ":")).encode()


class _Lane:
    """Per-collector delivery state, touched only by its own thread."""

    def __init__(self, target: Target, idle_seconds: float) -> None:
        self.target = target
        self.connection = CollectorConnection(target.name, ca_file=target.ca_file,
                                              idle_seconds=idle_seconds)
        self.headers = {"Content-Type": "application/json",
                        "User-Agent": f"patrol-agent/{AGENT_VERSION}"}
        if target.token:
            self.headers["Authorization"] = f"Bearer {target.token}"
        self.wake = threading.Event()
        self.gate = 0.0  # no attempt before this (epoch s)
        self.failures = 0  # consecutive failed attempts
        self.thread: threading.Thread | None = None


class Pusher:
    """Delivery threads over one :class:`Outbox`.

    Counters for metrics (monotonic since start): ``delivered`` events,
    ``heartbeats_delivered``, ``failed`` attempts (retryable failures, in rows),
    ``dead_lettered`` rows; :meth:`backlog` and ``outbox.dropped`` complete the set.
    ``heartbeat`` (no arguments) puts a heartbeat into the outbox; it is called at
    start and every ``heartbeat_interval`` seconds.
    """

    def __init__(
        self,
        outbox: Outbox,
        targets: Sequence[Target],
        *,
        heartbeat: Callable[[], Any] | None = None,
        heartbeat_interval: float = 30.0,
        batch_size: int = 100,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        timeout: tuple[float, float] = (3.0, 10.0),
        flush_seconds: float = 2.0,
        idle_seconds: float = IDLE_SECONDS,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.outbox = outbox
        self.heartbeat_interval = heartbeat_interval
        self.batch_size = batch_size
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.timeout = timeout
        self.flush_seconds = flush_seconds
        self.delivered = 0
        self.heartbeats_delivered = 0
        self.failed = 0
        self.dead_lettered = 0
        self._heartbeat = heartbeat
        self._clock = clock
        self._rng = rng
        self._counter_lock = threading.Lock()
        self._stopping = threading.Event()
        self._deadline = float("inf")
        self._lanes = [_Lane(t, idle_seconds) for t in targets]
        self._beat_thread: threading.Thread | None = None
        outbox.on_put(self.wake)

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        for lane in self._lanes:
            lane.thread = threading.Thread(target=self._run, args=(lane,), daemon=True,
                                           name=f"patrol-push {lane.target.name}")
            lane.thread.start()
        if self._heartbeat is not None:
            self._beat_thread = threading.Thread(target=self._beat, daemon=True,
                                                 name="patrol-heartbeat")
            self._beat_thread.start()

    def wake(self) -> None:
        """Something was put: every lane looks at the outbox now."""
        for lane in self._lanes:
            lane.wake.set()

    def stop(self) -> None:
        """Deliver what can go within ``flush_seconds``, then end the threads.

        A collector in backoff is not tried again; rows left behind stay in the
        outbox for the next start.
        """
        self._deadline = self._clock() + self.flush_seconds
        self._stopping.set()
        self.wake()
        end = time.monotonic() + self.flush_seconds
        for thread in [lane.thread for lane in self._lanes] + [self._beat_thread]:
            if thread is not None:
                thread.join(max(0.0, end - time.monotonic()))
        for lane in self._lanes:
            if lane.thread is None or not lane.thread.is_alive():
                lane.connection.close()

    def backlog(self) -> Backlog:
        return self.outbox.backlog()

    # -- threads ----------------------------------------------------------------------

    def _beat(self) -> None:
        assert self._heartbeat is not None
        while True:
            try:
                self._heartbeat()
            except Exception:
                log.exception("could not build or queue the heartbeat")
            if self._stopping.wait(self.heartbeat_interval):
                return

    def _run(self, lane: _Lane) -> None:
        while True:
            lane.wake.clear()
            stopping = self._stopping.is_set()
            try:
                self._drain(lane)
            except Exception as exc:
                if stopping:
                    return
                log.exception("delivery to %s failed unexpectedly", lane.target.name)
                self._back_off(lane, [], f"{type(exc).__name__}: {exc}", None)
            if stopping:
                return
            lane.wake.wait(self._pause(lane))

    def _pause(self, lane: _Lane) -> float:
        """Seconds to sleep unless woken: until the gate or the head row's next try."""
        now = self._clock()
        due = self.outbox.next_due(lane.target.name)
        if due is None:
            return 60.0
        return min(60.0, max(0.01, max(lane.gate, due) - now))

    def _drain(self, lane: _Lane) -> None:
        name = lane.target.name
        while True:
            now = self._clock()
            if now < lane.gate or (self._stopping.is_set() and now >= self._deadline):
                return
            rows = self.outbox.next_batch(self.batch_size, collector=name, kind="event",
                                          now=now)
            path = EVENTS_PATH
            if not rows:
                rows = self.outbox.next_batch(1, collector=name, kind="heartbeat", now=now)
                path = HEARTBEATS_PATH
            if not rows or not self._send(lane, rows, path):
                return

    # -- one POST ---------------------------------------------------------------------

    def _send(self, lane: _Lane, rows: list[Row], path: str) -> bool:
        """POST ``rows``; True when the queue moved on (delivered or dead-lettered)."""
        body: Any = ({"events": [r.payload for r in rows]} if path == EVENTS_PATH
                     else rows[0].payload)
        url = lane.target.name + path
        try:
            response: Answer = lane.connection.post(path, _json_body(body), lane.headers,
                                                    self._timeout())
        except (OSError, HTTPException) as exc:
            self._back_off(lane, rows, f"{type(exc).__name__}: {exc}", None)
            return False
        status = response.status
        if 200 <= status < 300:
            self.outbox.ack(r.id for r in rows)
            if lane.failures:
                log.info("collector %s reachable again after %d failed attempt(s)",
                         lane.target.name, lane.failures)
            lane.failures, lane.gate = 0, 0.0
            with self._counter_lock:
                if path == EVENTS_PATH:
                    self.delivered += len(rows)
                else:
                    self.heartbeats_delivered += 1
            return True
        excerpt = " ".join(response.text[:EXCERPT].split())
        if status in RETRYABLE or status in NOT_ALLOWED or status >= 500:
            if status in NOT_ALLOWED and lane.failures == 0:
                log.error("collector %s refuses this agent's token with HTTP %d: %s; "
                          "retrying with backoff until the token is fixed on either side "
                          "(nothing is dropped meanwhile)", url, status, excerpt or "(empty)")
            wait = retry_after_seconds(response.headers.get("retry-after"), self._clock())
            self._back_off(lane, rows, f"HTTP {status}: {excerpt}", wait)
            return False
        if status in SPLITTABLE and len(rows) > 1:
            log.warning("collector %s refused a batch of %d events with HTTP %d; sending "
                        "them one by one to find the bad one", url, len(rows), status)
            return all(self._send(lane, [row], path) for row in rows)
        what = (f"{len(rows)} event(s), sequence {rows[0].sequence}-{rows[-1].sequence}"
                if path == EVENTS_PATH else "a heartbeat")
        log.error("collector %s refused %s with HTTP %d: %s; dead-lettered, not retried "
                  "(fix the cause, then requeue them)", url, what, status, excerpt or "(empty)")
        self.outbox.dead_letter((r.id for r in rows), f"HTTP {status}: {excerpt}")
        with self._counter_lock:
            self.dead_lettered += len(rows)
        return True

    def _timeout(self) -> tuple[float, float]:
        if not self._stopping.is_set():
            return self.timeout
        left = max(0.1, self._deadline - self._clock())
        return (min(self.timeout[0], left), min(self.timeout[1], left))

    def _back_off(self, lane: _Lane, rows: list[Row], error: str,
                  retry_after: float | None) -> None:
        lane.failures += 1
        if retry_after is None:
            delay = min(self.backoff_cap, self.backoff_base * 2 ** (lane.failures - 1))
            delay *= 0.5 + 0.5 * self._rng()
        else:
            delay = retry_after
        lane.gate = self._clock() + delay
        if rows:
            try:
                self.outbox.attempt_failed((r.id for r in rows), lane.gate, error)
            except Exception:
                if not self._stopping.is_set():
                    raise  # closed at shutdown is fine: the rows stay as they were
            with self._counter_lock:
                self.failed += len(rows)
        level = logging.WARNING if lane.failures in (1, 10) or lane.failures % 100 == 0 \
            else logging.DEBUG
        log.log(level, "delivery to %s failed (attempt %d in a row): %s; retrying in %.1fs",
                lane.target.name, lane.failures, error, delay)
