"""Report periods: whole UTC days, as the collector keeps every time in UTC.

A period is half-open, ``[start, end)`` in epoch seconds, so consecutive periods
never count a ticket twice; ``--from 2023-10-23 --to 2023-10-29`` covers both days
whole (the ``to`` day is included, as people read "from Monday to Sunday").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

DAY_SECONDS = 86400.0


def parse_day(text: str) -> date:
    """``YYYY-MM-DD``; ValueError with a message a person can act on."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a date; write it as YYYY-MM-DD, "
                         "e.g. 2023-10-27") from None


def day_of(epoch: float) -> date:
    """The UTC day ``epoch`` falls in."""
    return datetime.fromtimestamp(epoch, UTC).date()


def midnight(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class Period:
    start: float
    end: float  # exclusive

    @classmethod
    def days(cls, first: date, last: date) -> Period:
        """``first`` to ``last`` inclusive; ValueError if ``last`` is before ``first``."""
        if last < first:
            raise ValueError(f"the period ends ({last}) before it starts ({first})")
        return cls(midnight(first), midnight(last + timedelta(days=1)))

    @classmethod
    def day(cls, day: date) -> Period:
        return cls.days(day, day)

    @property
    def first_day(self) -> date:
        return day_of(self.start)

    @property
    def last_day(self) -> date:
        return day_of(self.end - 1)

    @property
    def length(self) -> float:
        return self.end - self.start

    def previous(self) -> Period:
        """The period of the same length just before this one (for trends)."""
        return Period(self.start - self.length, self.start)

    def contains(self, epoch: float | None) -> bool:
        return epoch is not None and self.start <= epoch < self.end

    def day_starts(self) -> list[float]:
        """The start of every day in the period, for per-day series."""
        count = round(self.length / DAY_SECONDS)
        return [self.start + i * DAY_SECONDS for i in range(count)]

    @property
    def label(self) -> str:
        first, last = self.first_day, self.last_day
        return str(first) if first == last else f"{first} to {last}"

    def as_dict(self) -> dict[str, str | int]:
        return {"from": str(self.first_day), "to": str(self.last_day),
                "days": round(self.length / DAY_SECONDS)}
