"""Numbers and times as a person reads them in a ticket, chosen by the key's name.

Diagnostics and measurements arrive as bare JSON numbers; the key says what they
are. ``_ratio`` is a share (``96.2%``), ``_bytes`` a size (``1.8 GiB``), ``_seconds``
a duration (``4 min 47 s``; ``_seconds_ago`` adds "ago"), a process id, port or exit
code an identifier (``21072``, never ``21,072``), an epoch under a time-like key a
timestamp. Every timestamp, whether it came as an epoch or as an ISO string with
``+00:00``, leaves as ISO 8601 UTC with ``Z``, so one ticket shows one time format.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from patrol.contract.timestamps import iso_z
from patrol.contract.units import format_bytes, format_limit, format_rate, humanize_duration

# Keys whose numbers name something (a process, a port, a line): no separators.
_ID_KEYS = frozenset({
    "pid", "ppid", "tid", "fd", "port", "uid", "gid", "id", "code", "status", "exit_code",
    "status_code", "errno", "signal", "line", "lineno", "line_number", "sequence", "number",
    "year", "version", "inode", "ino", "dev", "thread_id", "backend_pid", "db", "database",
    "pids", "ports", "fds", "ids", "uids", "gids", "lines", "codes",
})
_ID_SUFFIXES = ("_id", "_pid", "_port", "_code", "_uid", "_gid", "_number", "_line", "_fd",
                "_ids", "_pids", "_ports", "_codes")
# Keys whose numbers, when they look like an epoch, are moments in time.
_TIME_KEYS = frozenset({
    "time", "timestamp", "mtime", "ctime", "atime", "since", "until", "modified", "started",
    "created", "changed", "last_run", "boot_time", "expires", "not_before", "not_after",
})
_TIME_SUFFIXES = ("_time", "_at", "_epoch", "_timestamp", "_since", "_mtime")
_EPOCH_FLOOR = 100_000_000  # 1973: smaller numbers under a time key are not epochs
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$")


def timestamp_text(text: str) -> str:
    """An ISO timestamp string with an offset, as :func:`iso_z`; other text unchanged."""
    if not _ISO.match(text):
        return text
    try:
        return iso_z(datetime.fromisoformat(text.replace(" ", "T", 1)))
    except ValueError:
        return text


def parse_moment(text: str) -> float | None:
    """Epoch seconds of an ISO timestamp string (for ordering steps); None if not one."""
    if not _ISO.match(text):
        return None
    try:
        return datetime.fromisoformat(text.replace(" ", "T", 1)).timestamp()
    except ValueError:
        return None


def _key(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower()


def is_identifier(name: str) -> bool:
    key = _key(name)
    return key in _ID_KEYS or key.endswith(_ID_SUFFIXES)


def is_time(name: str) -> bool:
    key = _key(name)
    return key in _TIME_KEYS or key.endswith(_TIME_SUFFIXES)


def plain_number(value: float) -> str:
    """A count or a reading: ``48,211``, ``1.5``, ``0.297``; never an exponent."""
    if float(value).is_integer():
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def measured(name: str, value: Any) -> str:
    """``value`` of key ``name`` as a person reads it (see the module docstring)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return timestamp_text(value)
    if not isinstance(value, int | float):
        return "-" if value is None else str(value)
    key = _key(name)
    if key.endswith("_seconds_ago"):
        return f"{humanize_duration(value)} ago"
    if key.endswith("_ratio"):
        return f"{value * 100:.1f}%"
    if key.endswith("_bytes_per_second"):
        return format_rate(value)
    if key.endswith("_bytes") or key == "bytes":
        return format_bytes(value)
    if key.endswith("_seconds") or key == "seconds":
        return humanize_duration(value)
    if is_time(key) and value >= _EPOCH_FLOOR:
        return iso_z(value)
    if is_identifier(key) and float(value).is_integer():
        return str(int(value))
    return plain_number(value)


def limit(name: str, value: Any, unit: str | None = None) -> str:
    """A threshold as written: ``95%`` (never rounded across the measured value),
    ``7 d``, ``1.0 GiB``; ``unit`` is the agent's base unit when it sent one."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return measured(name, value)
    unit = unit or ("ratio" if name.endswith("_ratio") else None)
    if unit == "seconds":  # spelled out, as every duration in a ticket body
        return humanize_duration(value)
    if unit in ("ratio", "bytes", "bytes_per_second"):
        return format_limit(value, unit)  # as the agent's summary quoted it
    return measured(name, value)
