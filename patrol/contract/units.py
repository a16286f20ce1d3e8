"""Parse the human units operators write in YAML into base units.

``"500ms"``, ``"5m"``, ``"1h30m"``, ``"14d"`` -> seconds; ``"1.5GiB"``, ``"500MB"`` ->
bytes; ``"85%"`` -> the ratio 0.85. Each parser raises ``ValueError`` with a message
that says what a valid value looks like, because that text reaches the operator.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]i?B|[KMGTP]|B)?\s*$", re.IGNORECASE)
_SIZE_FACTORS = {
    "b": 1,
    "k": 1000, "kb": 1000, "kib": 1024,
    "m": 1000**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1000**3, "gb": 1000**3, "gib": 1024**3,
    "t": 1000**4, "tb": 1000**4, "tib": 1024**4,
    "p": 1000**5, "pb": 1000**5, "pib": 1024**5,
}


def is_duration(text: str) -> bool:
    return bool(text) and _DURATION_PART.sub("", text.strip().replace(" ", "")) == "" and any(
        _DURATION_PART.finditer(text)
    )


def parse_duration(value: object) -> float:
    """Seconds from a number (already seconds) or a string like ``"1h30m"``."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m or 1h, not true/false")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        if is_duration(text):
            return sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))
    raise ValueError(f"{value!r} is not a duration; write it like 30s, 5m, 1h30m or 14d")


def parse_size(value: object) -> float:
    """Bytes from a number (already bytes) or ``"1.5GiB"`` / ``"500MB"``."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 512MiB or 2GB, not true/false")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            number, unit = match.groups()
            return float(number) * _SIZE_FACTORS[(unit or "b").lower()]
    raise ValueError(f"{value!r} is not a size; write it like 512MiB, 2GB or 1073741824")


def parse_percent(value: str) -> float:
    """The ratio from ``"85%"`` (0.85)."""
    text = value.strip()
    if not text.endswith("%"):
        raise ValueError(f"{value!r} is not a percentage; write it like 85%")
    try:
        return float(text[:-1]) / 100.0
    except ValueError:
        raise ValueError(f"{value!r} is not a percentage; write it like 85%") from None


# Durations are worded four ways, each where a reader needs it; all of them are here so a
# change of wording happens in one place:
#
#   format_duration    check summaries, limits   "850ms", "4.5s", "12m", "3d 4h"
#   humanize_duration  ticket bodies             "850 ms", "4 min 47 s", "2 h 5 min"
#   approx_duration    collector reasons, pages  "45s", "40m", "2h", "3d" (one unit)
#   padded_duration    reports                   "45s", "48m 20s", "3h 05m", "2d 04h"

_SPANS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def _split(whole: int) -> list[tuple[int, str]]:
    """(count, unit) from the largest unit that is not zero down to seconds:
    ``7380`` -> ``[(2, "h"), (3, "m"), (0, "s")]``; ``[]`` for 0."""
    parts: list[tuple[int, str]] = []
    for unit, size in _SPANS:
        count, whole = divmod(whole, size)
        if count or parts:
            parts.append((count, unit))
    return parts


def format_duration(seconds: float) -> str:
    """Short human form for summaries: ``"3d 4h"``, ``"12m"``, ``"850ms"``: the two
    largest units that are not zero, whole minutes at the least."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    parts = [f"{count}{unit}" for count, unit in _split(int(seconds)) if count and unit != "s"]
    return " ".join(parts[:2])


def humanize_duration(seconds: float) -> str:
    """Long human form for tickets: ``"4 min 47 s"``, ``"2 h 5 min"``, ``"12 d 5 h"``,
    ``"850 ms"``. The two largest units, spelled out, because a reader of a ticket body
    should not have to decode ``287.3`` or ``4m47s``."""
    if seconds < 0:
        return "-" + humanize_duration(-seconds)
    if seconds == 0:
        return "0 s"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10:
        return f"{seconds:.1f}".rstrip("0").rstrip(".") + " s"
    parts = [(count, "min" if unit == "m" else unit) for count, unit in _split(round(seconds))]
    shown = parts[:2] if len(parts) > 1 and parts[1][0] else parts[:1]
    return " ".join(f"{count} {unit}" for count, unit in shown)


def _half_up(value: float) -> int:
    return int(value + 0.5)


def approx_duration(seconds: float) -> str:
    """A rough duration in one unit, rounded half up, for sentences such as "failed
    again 3h after it was resolved": ``"45s"``, ``"40m"``, ``"2h"``, ``"3d"``. Hours up
    to 47 (a day and a half reads better as "36h" than "2d"); negative is ``"0s"``."""
    seconds = max(0.0, seconds)
    if seconds < 59.5:
        return f"{_half_up(seconds)}s"
    if _half_up(seconds / 60) < 60:
        return f"{_half_up(seconds / 60)}m"
    if _half_up(seconds / 3600) < 48:
        return f"{_half_up(seconds / 3600)}h"
    return f"{_half_up(seconds / 86400)}d"


def padded_duration(seconds: float) -> str:
    """Two units with the second zero-padded, as report tables align them: ``"45s"``,
    ``"48m 20s"``, ``"3h 05m"``, ``"47h 59m"``, ``"2d 04h"``; signed (``"-21m 12s"``)
    because a report shows changes."""
    whole = round(abs(seconds))
    sign = "-" if seconds < 0 and whole else ""
    if whole < 60:
        return f"{sign}{whole}s"
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{sign}{minutes}m {rest:02d}s" if rest else f"{sign}{minutes}m"
    if whole < 48 * 3600:
        hours, rest = divmod(whole, 3600)
        return f"{sign}{hours}h {rest // 60:02d}m"
    days, rest = divmod(whole, 86400)
    return f"{sign}{days}d {rest // 3600:02d}h"


def format_bytes(value: float) -> str:
    """Binary-prefixed size for summaries: ``"3.2 GiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"


def format_ratio(ratio: float) -> str:
    """A measured share as a percentage for summaries: ``0.862`` -> ``"86%"``.

    Whole percent from 10 % up; small ratios keep two significant digits (``"0.13%"``)
    so 13 of 10000 Redis clients does not read as 0 %. For a configured threshold use
    :func:`format_limit`, which shows the percentage as written (``"95.5%"``)."""
    value = ratio * 100
    return f"{value:.0f}%" if value >= 10 or value == 0 else f"{value:.2g}%"


def format_number(value: float) -> str:
    """A plain count or number for summaries: ``"3"``, ``"1.5"``, ``"4,000"``.

    Thousands separators, never an exponent for the counts checks see (connections,
    inodes, processes); twelve significant digits hide float noise (0.1 + 0.2)."""
    return f"{value:,.12g}"


def format_rate(bytes_per_second: float) -> str:
    """A byte rate for summaries: ``"1.5 MiB/s"``."""
    return f"{format_bytes(bytes_per_second)}/s"


def _format_percent_limit(ratio: float) -> str:
    # A limit is shown as the operator wrote it (85%, 95.5%, 0.125%), never rounded
    # to a value on the other side of the measurement it is compared with.
    return f"{round(ratio * 100, 4):g}%"


_LIMIT_FORMATS: dict[str, Callable[[float], str]] = {
    "ratio": _format_percent_limit,
    "seconds": format_duration,
    "bytes": format_bytes,
    "bytes_per_second": format_rate,
}


def format_limit(value: float, unit: str) -> str:
    """A threshold in base ``unit`` (a ``MeasurementSpec.unit``) for summaries:
    ``"95%"``, ``"7d"``, ``"1.0 MiB"``, ``"1.0 MiB/s"``, ``"1,000"``."""
    return _LIMIT_FORMATS.get(unit, format_number)(value)
