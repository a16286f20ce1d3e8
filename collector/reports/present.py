"""How report figures read in HTML: durations, ratios, times and trend arrows.

Pure functions, registered as Jinja2 filters by :mod:`.html`; the JSON keeps the raw
values (seconds, ratios, epoch seconds), so a person reads "48m 20s" and a program
reads 2900.0.
"""

from __future__ import annotations

from patrol.contract.timestamps import iso_z
from patrol.contract.units import padded_duration

DASH = "–"
METRICS = {  # trend metric -> (label, kind, whether a rise is good)
    "tickets": ("Tickets opened", "count", False),
    "mtta_seconds": ("MTTA (mean time to acknowledge)", "duration", False),
    "mttr_seconds": ("MTTR (mean time to resolve)", "duration", False),
    "respond_compliance": ("Respond-by met", "ratio", True),
    "resolve_compliance": ("Resolve-by met", "ratio", True),
    "reopen_rate": ("Reopen rate", "ratio", False),
    "flapping_tickets": ("Flapping tickets", "count", False),
    "noisy_tickets": ("Noisy tickets (tuning candidates)", "count", False),
}


def duration(seconds: float | None) -> str:
    """``"45s"``, ``"48m 20s"``, ``"3h 05m"``, ``"2d 04h"`` (the contract's
    :func:`~patrol.contract.units.padded_duration`); a dash for None."""
    return DASH if seconds is None else padded_duration(seconds)


def percent(ratio: float | None) -> str:
    return DASH if ratio is None else f"{ratio * 100:.0f}%"


def when(epoch: float | None) -> str:
    return DASH if epoch is None else iso_z(epoch).replace("T", " ").replace("Z", " UTC")


def value(metric: str, raw: float | None) -> str:
    kind = METRICS[metric][1]
    if raw is None:
        return DASH
    if kind == "duration":
        return duration(raw)
    if kind == "ratio":
        return percent(raw)
    return str(int(raw))


def change(metric: str, delta: float | None) -> str:
    """The trend cell: the signed change in the metric's unit, or a dash."""
    if delta is None:
        return DASH
    kind = METRICS[metric][1]
    if kind == "ratio":
        points = delta * 100
        return f"{points:+.0f} pts"
    if kind == "duration":
        return ("+" if delta > 0 else "") + duration(delta)
    return f"{int(delta):+d}"


def verdict(metric: str, delta: float | None) -> str:
    """``better``, ``worse`` or ``same``: a CSS class for the trend cell."""
    if not delta:
        return "same"
    rise_is_good = METRICS[metric][2]
    return "better" if (delta > 0) == rise_is_good else "worse"
