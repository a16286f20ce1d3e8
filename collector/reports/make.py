"""Build a report from a store: read what it needs, then the pure builders decide.

Shared by ``patrol report`` and the web's Reports page, so both show the same figures.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from patrol.collector.policy.settings import PolicyConfig
from patrol.collector.reports import capacity, daily, retro
from patrol.collector.reports.period import DAY_SECONDS, Period
from patrol.collector.reports.source import tickets_since
from patrol.collector.store.base import TicketReads

# A daily report lists the tickets resolved that day and those open at its end,
# whenever they were opened; tickets opened longer ago than this before the day are
# not read (the store has no query by resolution time, and reading every ticket ever
# made would grow without bound). Open tickets are always read, however old.
DAILY_LOOKBACK = 30 * DAY_SECONDS


def retro_report(store: TicketReads, first: date, last: date, now: float) -> dict[str, Any]:
    """No policy: the retrospective judges each ticket by its own recorded deadlines."""
    period = Period.days(first, last)
    facts = tickets_since(store, period.previous().start)
    return retro.build(facts, period, now)


def daily_report(store: TicketReads, day: date, now: float,
                 policy: PolicyConfig | None = None) -> dict[str, Any]:
    period = Period.day(day)
    facts = tickets_since(store, period.previous().start - DAILY_LOOKBACK)
    report = daily.build(facts, store.hosts(), store.check_states(), period, now, policy)
    as_of = report["as_of"]
    rollups = store.rollups("hour", as_of - capacity.WINDOW_DAYS * DAY_SECONDS, as_of)
    report["capacity"] = capacity.forecast(rollups, as_of)
    return report
