"""The one way Patrol writes a moment for people: ``2023-10-27T10:15:00Z``.

Whole seconds, UTC, a ``Z``: ticket bodies, escalation texts, the web pages, reports
and webhook payloads all show times this way, so one function writes them (three
copies had grown in the collector and the webhook bridge).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def iso_z(moment: datetime | float) -> str:
    """``2023-10-27T10:15:00Z`` for a datetime (any zone) or a POSIX time."""
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).strftime(FORMAT)
    return _posix(float(moment))


@lru_cache(maxsize=4096)
def _posix(moment: float) -> str:
    """:func:`iso_z` of a POSIX time, remembered: a batch's new tickets share their
    opening time, respond-by and resolve-by, and ``strftime`` was 4 % of the CPU of
    opening one (py-spy, batches of 100)."""
    return datetime.fromtimestamp(int(moment), UTC).strftime(FORMAT)
