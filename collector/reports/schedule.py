"""The collector config's ``reports:`` section, and which report a schedule owes now.

::

    reports:
      timezone: Europe/Berlin          # the crons' zone (default UTC)
      archive: /var/lib/patrol/reports # default folder of both reports
      smtp: {host: mail.example.com, from: patrol@example.com,
             username: patrol, password: "${SMTP_PASSWORD}"}
      daily: {cron: "0 7 * * *", recipients: [ops@example.com]}
      retro: {cron: "0 8 * * 1", period: 7d, recipients: [lead@example.com]}

Which days a firing covers: reports are about whole UTC days (as ``patrol report``
makes them), and a report fired at moment T covers the days that ended before T:
the daily report the UTC day before T's UTC day, the retrospective the ``period``
(whole days, default 7) ending that same day. So ``0 7 * * *`` in Berlin mails
yesterday's report every morning, and ``0 8 * * 1`` last week's retrospective on
Mondays.

When: a report is owed from its cron's latest firing until it is archived and
mailed. A collector that was down at that moment makes it when it is back, up to
:data:`MAX_LATE` late; older firings are skipped (``patrol report`` makes any day on
demand), so a collector started for the first time does not mail a backlog.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from patrol.collector.policy.settings import Seconds
from patrol.collector.reports.period import DAY_SECONDS, day_of
from patrol.contract.cron import crontab_trigger, time_zone
from patrol.ticketing_bridge.email import Email

KINDS = ("daily", "retro")
MAX_LATE = DAY_SECONDS  # a firing missed by more than this is skipped
# Keys of the email helpdesk that are about tickets, not about reaching the server.
_TICKET_ONLY = ("to", "priority_map", "category_map", "project", "wont_fix_statuses",
                "max_concurrency", "message_id_domain")


class SmtpSettings(Email.Config):
    """How reports reach the mail server: the email helpdesk's own settings (``host``,
    ``port``, ``starttls``, ``ssl``, ``username``, ``password`` as ``${ENV}`` or
    ``file:``, ``from``, ``timeout``, ``ca_file``, ``verify_tls``, ``subject_prefix``),
    so they read, validate and fail alike. Its ticket-only keys are refused."""

    type: str = "email"

    @model_validator(mode="after")
    def _not_ticket_keys(self) -> SmtpSettings:
        given = sorted(set(_TICKET_ONLY) & self.model_fields_set)
        if given:
            raise ValueError(f"{', '.join(given)}: not an SMTP setting; recipients go in "
                             "reports.daily.recipients / reports.retro.recipients")
        return self


class ScheduledReport(BaseModel):
    """One report's schedule: ``cron`` (five fields, in ``reports.timezone``), who gets
    it, where it is kept, and for ``retro`` how many days it covers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cron: str
    recipients: list[str]
    archive: Path | None = None
    period: Seconds | None = None
    language: Literal["en", "zh-CN"] | None = None

    @field_validator("cron")
    @classmethod
    def _crontab(cls, expression: str) -> str:
        try:
            trigger(expression, "UTC")
        except ValueError as exc:
            raise ValueError(f"{expression!r} is not a cron schedule (five fields, e.g. "
                             f"'0 7 * * *'): {exc}") from None
        return expression

    @field_validator("recipients")
    @classmethod
    def _addresses(cls, recipients: list[str]) -> list[str]:
        if not recipients:
            raise ValueError("a scheduled report is mailed; give at least one address")
        bad = [r for r in recipients if "@" not in r]
        if bad:
            raise ValueError(f"not an email address: {', '.join(bad)}")
        return recipients

    @field_validator("period")
    @classmethod
    def _whole_days(cls, period: float | None) -> float | None:
        if period is not None and (period < DAY_SECONDS or period % DAY_SECONDS):
            raise ValueError("a period is whole days, e.g. 7d")
        return period

    @property
    def days(self) -> int:
        return round((self.period or 7 * DAY_SECONDS) / DAY_SECONDS)


class ReportsSettings(BaseModel):
    """The ``reports:`` section; see the module docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "UTC"
    archive: Path | None = None
    smtp: SmtpSettings | None = None
    daily: ScheduledReport | None = None
    retro: ScheduledReport | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        time_zone(name)
        return name

    def scheduled(self) -> dict[str, ScheduledReport]:
        return {kind: s for kind in KINDS if (s := getattr(self, kind)) is not None}

    def archive_of(self, kind: str) -> Path | None:
        own = self.scheduled()[kind].archive
        return own if own is not None else self.archive


@dataclass(frozen=True)
class Due:
    """A report a schedule owes: its kind, the days it covers and when it fired."""

    kind: str
    first: date
    last: date
    fired: float

    @property
    def name(self) -> str:
        """The archive's file stem: ``daily-2026-12-04``, ``retro-2026-11-30-2026-12-06``."""
        if self.kind == "daily":
            return f"daily-{self.last}"
        return f"retro-{self.first}-{self.last}"


def trigger(cron: str, zone: str) -> Any:
    """The five-field crontab line as an APScheduler trigger in ``zone``."""
    return crontab_trigger(cron, zone)


def latest_firing(cron: str, zone: str, now: float, since: float) -> float | None:
    """The cron's last firing in ``(since, now]`` (epoch seconds), or None.

    Looked for in growing windows back from ``now``, so an every-minute cron does not
    walk a day of firings on every watchdog pass (0.3 s; this way about 2 ms)."""
    schedule = trigger(cron, zone)
    for window in (120.0, 3600.0):
        if now - window > since:
            found = _last_in(schedule, now, now - window)
            if found is not None:
                return found
    return _last_in(schedule, now, since)


def _last_in(schedule: Any, now: float, since: float) -> float | None:
    moment = datetime.fromtimestamp(since, UTC) + timedelta(microseconds=1)
    found = None
    while (fire := schedule.get_next_fire_time(None, moment)) is not None and \
            fire.timestamp() <= now:
        found = fire.timestamp()
        moment = fire + timedelta(seconds=1)  # cron's resolution is a minute
    return found


def due(kind: str, schedule: ScheduledReport, zone: str, now: float) -> Due | None:
    """The report ``schedule`` owes at ``now``, if its latest firing is recent enough."""
    fired = latest_firing(schedule.cron, zone, now, now - MAX_LATE)
    if fired is None:
        return None
    last = day_of(fired) - timedelta(days=1)
    first = last if kind == "daily" else last - timedelta(days=schedule.days - 1)
    return Due(kind, first, last, fired)
