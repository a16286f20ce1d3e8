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


def format_duration(seconds: float) -> str:
    """Short human form for summaries: ``"3d 4h"``, ``"12m"``, ``"850ms"``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{int(count)}{unit}")
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
    whole = round(seconds)
    parts: list[tuple[int, str]] = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        count, whole = divmod(whole, size)
        if count or parts:
            parts.append((count, unit))
    shown = parts[:2] if len(parts) > 1 and parts[1][0] else parts[:1]
    return " ".join(f"{count} {unit}" for count, unit in shown)


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
