"""Containment for the watchdog's duties: one failure never stops the others.

The watchdog's pass is a list of duties (ticket timers, SLA, heartbeat loss,
staleness, maintenance end, helpdesk sync, prune, planner statistics, scheduled
reports), and the timer and SLA duties are one step per ticket.
:meth:`DutyHealth.attempt` runs one duty or one step: an exception is caught, counted
per duty (``patrol_collector_watchdog_errors_total``)
and logged with the ticket's number. It is logged once per streak: a ticket that
fails every 10 s writes one traceback, not one per pass, and one line when it
works again. The duty is simply retried on the next pass.

``last_success`` per duty (epoch seconds) is what an alert on a stuck watchdog
watches: a duty whose step for some ticket keeps failing does not advance it.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger("patrol.collector.watchdog")

T = TypeVar("T")

DUTIES = ("timers", "sla", "liveness", "staleness", "maintenance_end", "helpdesk_sync",
          "prune", "statistics", "reports")


class DutyHealth:
    """Error counts, failure streaks and last successes of the watchdog's duties.
    Thread-safe: the helpdesk sync runs in its own thread."""

    def __init__(self) -> None:
        self.errors: Counter[str] = Counter()
        self.last_success: dict[str, float] = {}
        self._failing: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def attempt(self, duty: str, work: Callable[[], T], *, subject: str = "") -> T | None:
        """``work()``, or None when it raised (counted and logged, never re-raised).
        ``subject`` names what the step was for (a ticket number) in the log."""
        streak = (duty, subject)
        try:
            result = work()
        except Exception:
            with self._lock:
                self.errors[duty] += 1
                first = streak not in self._failing
                self._failing.add(streak)
            if first:
                what = f" for {subject}" if subject else ""
                log.exception("watchdog duty %s failed%s; retrying every pass", duty, what)
            return None
        with self._lock:
            recovered = streak in self._failing
            self._failing.discard(streak)
        if recovered:
            log.info("watchdog duty %s%s works again", duty, f" for {subject}" if subject
                     else "")
        return result

    def succeeded(self, duty: str, at: float) -> None:
        with self._lock:
            self.last_success[duty] = at

    def snapshot(self) -> tuple[dict[str, int], dict[str, float]]:
        """``(errors, last_success)`` by duty, copied for a scrape."""
        with self._lock:
            return dict(self.errors), dict(self.last_success)
