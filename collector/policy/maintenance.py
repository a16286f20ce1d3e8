"""Maintenance windows: when and for what no ticket opens.

A window has one schedule and at least one selector:

* schedule: one-off (``start`` + ``end``), recurring by ``cron`` (five fields, as in
  crontab) + ``duration``, or ``weekly`` (``days`` + ``from``/``to`` wall-clock times; a
  ``to`` at or before ``from`` ends the next day). Recurrences are computed by
  APScheduler's ``CronTrigger`` in ``timezone`` (default UTC), so DST shifts the wall
  clock, not the window. An occurrence covers ``[start, start + duration)``.
  ``timezone: host`` reads the schedule in each host's own zone, as its agent announces
  it in heartbeats ("Sundays 02:00-04:00" then means 02:00 where each server is); a
  host that never announced one (an older agent, an Alertmanager-only host) uses UTC.
* selectors: ``hosts`` and ``checks`` (lists of globs, any may match) and ``labels``
  (``key: value-glob``, all must match). Each selector given must match; one that is
  absent matches anything. A window with no selector is an error: covering the whole
  fleet must be written down (``hosts: ["*"]``).

:func:`ended_since` lets the engine ticket anything still failing when a window ends
(unless another window still covers it: ask :func:`active_windows` again). Every
function takes the host's zone (``zone``), used by ``timezone: host`` windows only;
:func:`host_zone` looks it up only when such a window exists.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from patrol.collector.policy.settings import Seconds
from patrol.contract.cron import crontab_trigger, time_zone

if TYPE_CHECKING:
    from patrol.collector.store.base import TicketStore

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_TINY = 1e-6  # epoch seconds: "strictly after" for APScheduler's "at or after"
HOST_ZONE = "host"  # ``timezone: host``: each host's own announced zone


def _minutes(text: str) -> int:
    match = _CLOCK.match(text)
    if not match:
        raise ValueError(f"expected a time as HH:MM (00:00 to 23:59), got {text!r}")
    return int(match[1]) * 60 + int(match[2])


class Weekly(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    days: list[Day] = Field(min_length=1)
    from_: str = Field(alias="from")
    to: str

    @field_validator("from_", "to")
    @classmethod
    def _clock(cls, text: str) -> str:
        _minutes(text)
        return text

    @model_validator(mode="after")
    def _not_empty(self) -> Weekly:
        if self.from_ == self.to:
            raise ValueError("weekly: 'from' and 'to' are equal; the window would be empty")
        return self

    @property
    def duration(self) -> float:
        return ((_minutes(self.to) - _minutes(self.from_)) % 1440) * 60.0


class MaintenanceWindow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    reason: str = ""
    start: datetime | None = None
    end: datetime | None = None
    cron: str | None = None
    duration: Seconds | None = None
    weekly: Weekly | None = None
    timezone: str = "UTC"
    hosts: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    checks: list[str] = Field(default_factory=list)
    _trigger: CronTrigger | None = PrivateAttr(default=None)
    _zoned: dict[str, CronTrigger | None] = PrivateAttr(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        if name == HOST_ZONE:
            return name
        time_zone(name, or_also="'host' for each host's own zone")
        return name

    @field_validator("cron")
    @classmethod
    def _crontab(cls, expression: str | None) -> str | None:
        if expression is not None:
            try:
                crontab_trigger(expression)
            except ValueError as exc:
                raise ValueError(f"cron {expression!r}: {exc}") from None
        return expression

    @model_validator(mode="after")
    def _consistent(self) -> MaintenanceWindow:
        kinds = [k for k, given in (("start/end", self.start or self.end),
                                    ("cron", self.cron), ("weekly", self.weekly)) if given]
        if len(kinds) != 1:
            raise ValueError("give exactly one schedule: start and end (one-off), cron and "
                             f"duration, or weekly; got {' and '.join(kinds) or 'none'}")
        if not (self.hosts or self.labels or self.checks):
            raise ValueError("give at least one of hosts, labels or checks "
                             "(hosts: ['*'] for the whole fleet)")
        if kinds == ["start/end"]:
            if self.start is None or self.end is None:
                raise ValueError("a one-off window needs both start and end")
            if self._epoch(self.end) <= self._epoch(self.start):
                raise ValueError("end must be after start")
        if self.cron is not None and not self.duration:
            raise ValueError("a cron window needs a duration greater than zero, e.g. '2h'")
        if self.cron is None and self.duration is not None:
            raise ValueError("duration belongs to a cron window; this one has none")
        return self

    def model_post_init(self, _: Any) -> None:
        if self.timezone != HOST_ZONE:
            self._trigger = self._trigger_in(ZoneInfo(self.timezone))

    def _trigger_in(self, zone: ZoneInfo) -> CronTrigger | None:
        if self.cron is not None:
            return crontab_trigger(self.cron, zone)
        if self.weekly is not None:
            start = _minutes(self.weekly.from_)
            return CronTrigger(day_of_week=",".join(self.weekly.days),
                               hour=start // 60, minute=start % 60, timezone=zone)
        return None

    def zone(self, host_zone: str | None = None) -> ZoneInfo:
        """The zone the schedule is read in (``host_zone`` for ``timezone: host``)."""
        if self.timezone != HOST_ZONE:
            return ZoneInfo(self.timezone)
        try:
            return ZoneInfo(host_zone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")  # a zone this collector does not know: as if none

    def _trigger_for(self, host_zone: str | None) -> CronTrigger | None:
        if self.timezone != HOST_ZONE:
            return self._trigger
        zone = self.zone(host_zone)
        key = str(zone)
        if key not in self._zoned:  # a fleet has few zones: one trigger each, kept
            self._zoned[key] = self._trigger_in(zone)
        return self._zoned[key]

    def _epoch(self, moment: datetime, host_zone: str | None = None) -> float:
        if moment.tzinfo is None:  # a naive time means the window's time zone
            moment = moment.replace(tzinfo=self.zone(host_zone))
        return moment.timestamp()

    def length_in(self, host_zone: str | None = None) -> float:
        """Seconds one occurrence lasts."""
        if self.weekly is not None:
            return self.weekly.duration
        if self.duration is not None:
            return self.duration
        assert self.start is not None and self.end is not None
        return self._epoch(self.end, host_zone) - self._epoch(self.start, host_zone)

    @property
    def length(self) -> float:
        return self.length_in()

    def _next_start(self, after: float, host_zone: str | None = None) -> float | None:
        """The first occurrence start strictly after ``after`` (epoch), or None."""
        trigger = self._trigger_for(host_zone)
        if trigger is None:
            assert self.start is not None
            start = self._epoch(self.start, host_zone)
            return start if start > after else None
        moment = datetime.fromtimestamp(after + _TINY, self.zone(host_zone))
        fire = trigger.get_next_fire_time(None, moment)
        return None if fire is None else fire.timestamp()

    def matches(self, host: str, labels: Mapping[str, str], check: str) -> bool:
        if self.hosts and not any(fnmatch.fnmatchcase(host, p) for p in self.hosts):
            return False
        if self.checks and not any(fnmatch.fnmatchcase(check, p) for p in self.checks):
            return False
        return all(key in labels and fnmatch.fnmatchcase(labels[key], pattern)
                   for key, pattern in self.labels.items())

    def covers(self, now: float, zone: str | None = None) -> bool:
        """Whether an occurrence is in progress at ``now`` (epoch)."""
        length = self.length_in(zone)
        start = self._next_start(now - length, zone)
        return start is not None and start <= now

    def last_end(self, last: float, now: float, zone: str | None = None) -> float | None:
        """The latest occurrence end in ``(last, now]``, or None."""
        found, length = None, self.length_in(zone)
        start = self._next_start(last - length, zone)
        while start is not None and start + length <= now:
            found = start + length
            start = self._next_start(start, zone)
        return found


def active_windows(windows: Iterable[MaintenanceWindow], host: str,
                   labels: Mapping[str, str], check: str, now: float,
                   zone: str | None = None) -> list[MaintenanceWindow]:
    """The windows covering ``check`` on ``host`` at ``now``, in the given order;
    ``zone`` is the host's, for ``timezone: host`` windows."""
    return [w for w in windows if w.matches(host, labels, check) and w.covers(now, zone)]


def ended_since(windows: Iterable[MaintenanceWindow], last: float, now: float,
                zone: str | None = None) -> list[tuple[MaintenanceWindow, float]]:
    """``(window, ended_at)`` for windows with an occurrence that ended in
    ``(last, now]`` (the latest such end per window), earliest end first."""
    ended = [(w, end) for w in windows if (end := w.last_end(last, now, zone)) is not None]
    return sorted(ended, key=lambda pair: pair[1])


def host_zone(store: TicketStore, host: str, windows: Iterable[MaintenanceWindow]) -> str | None:
    """``host``'s announced zone if a ``timezone: host`` window needs it, else None
    (so the common case costs no store read)."""
    if not any(w.timezone == HOST_ZONE for w in windows):
        return None
    known = store.host(host)
    return known.get("timezone") if known else None
