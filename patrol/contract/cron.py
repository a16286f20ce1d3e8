"""Crontab lines read the way cron reads them, for every schedule Patrol takes.

Operators write the five crontab fields (``minute hour day month weekday``) for check
schedules, maintenance windows and report schedules, and they mean crontab's weekdays:
0 or 7 is Sunday, 1 Monday. APScheduler 3's ``CronTrigger.from_crontab`` hands the
weekday field to its own ``day_of_week``, where 0 is *Monday*: ``0 8 * * 1`` would
fire on Tuesdays and ``0 2 * * 0`` (a Sunday maintenance window) on Mondays. This module
is the one place that turns a crontab line into a trigger, with the weekday field
translated to day names, which mean the same to both.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:  # APScheduler is imported only when a schedule is really read
    from apscheduler.triggers.cron import CronTrigger

DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _day(token: str, *, end: bool = False) -> int:
    """A weekday as crontab numbers it (0-6 from Sunday; 7 is Sunday again at a range's
    end, so ``1-7`` is Monday to Sunday)."""
    word = token.strip().lower()
    if word.isdigit():
        number = int(word)
        if number > 7:
            raise ValueError(f"day of week {token} is not 0-7")
        return number if end else number % 7
    if word in DAY_NAMES:
        return DAY_NAMES.index(word) if not (end and word == "sun") else 7
    raise ValueError(f"{token!r} is not a day of week (0-7, or sun, mon, ... sat)")


def crontab_weekdays(field: str) -> str:
    """crontab's weekday field as a list of day names (``1-5`` -> ``mon,tue,wed,thu,fri``;
    ``*/2`` -> ``sun,tue,thu,sat`` as cron counts from Sunday)."""
    if field.strip() == "*":
        return "*"
    days: set[int] = set()
    for item in field.split(","):
        span, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"{item!r}: the step after '/' must be a positive number")
            step = int(step_text)
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            start, _, stop = span.partition("-")
            first, last = _day(start), _day(stop, end=True)
            if last < first:
                raise ValueError(f"{item!r}: a range runs forward, e.g. mon-fri or 1-5")
        else:
            first = _day(span)
            last = 6 if slash else first  # cron's "1/2": from Monday on, every other day
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(DAY_NAMES[day] for day in sorted(days))


def crontab_trigger(line: str, timezone: tzinfo | str = "UTC") -> CronTrigger:
    """The five-field crontab ``line`` as an APScheduler trigger in ``timezone``.

    Raises ``ValueError`` with APScheduler's or this module's reason for a line that is
    not a schedule."""
    from apscheduler.triggers.cron import CronTrigger

    fields = line.split()
    if len(fields) != 5:
        raise ValueError(f"Wrong number of fields; got {len(fields)}, expected 5")
    minute, hour, day, month, weekday = fields
    zone = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
    return CronTrigger(minute=minute, hour=hour, day=day, month=month,
                       day_of_week=crontab_weekdays(weekday), timezone=zone)


def time_zone(name: str, *, or_also: str = "") -> ZoneInfo:
    """The IANA zone ``name`` names, for every ``timezone:`` option a schedule has (check
    schedules, maintenance windows, report schedules), with one message when it names
    none. ``or_also`` adds what else that option accepts (maintenance takes ``host``)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        also = f", or {or_also}" if or_also else ""
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as 'UTC' or "
                         f"'Europe/Berlin'{also}") from None
