"""Nagios plugin output: split it into summary, long output and performance data.

Follows the Nagios plugin development guidelines (section "Plugin Output" and
"Performance data")::

    TEXT OUTPUT | OPTIONAL PERFDATA
    LONG TEXT LINE 1
    LONG TEXT LINE 2 | PERFDATA LINE 2
    PERFDATA LINE 3

Everything after the first ``|`` of the first line is perfdata; in the long output,
everything after the first ``|`` (rest of that line and every following line) is
perfdata too.

One perfdata item is ``'label'=value[UOM];[warn];[crit];[min];[max]``. Labels with
spaces are single-quoted, a literal quote inside is written ``''``. Values are
converted to base units, and each item becomes a measurement named by
:func:`measurement_name`:

* ``s``/``ms``/``us`` -> seconds, name suffix ``_seconds``;
* ``%`` -> a ratio 0..1, suffix ``_ratio``;
* ``B``/``KB``/``MB``/``GB``/``TB`` -> bytes, suffix ``_bytes``. The prefixes are
  **binary** (KB = 1024 B): that is what the plugins mean (check_disk and check_swap
  compute MB as 1024*1024 bytes), whatever SI says. ``KiB``/``MiB``/... are accepted
  as the same factors;
* ``c`` (a continuous counter) -> suffix ``_total``, as in Prometheus;
* no unit -> the plain number, no suffix. Any other unit is kept as a number with
  no suffix (the guidelines allow none; plugins invent some).

``U`` (the value could not be determined) yields no measurement. The item's
warn/crit ranges stay as text: the plugin's own exit code is the verdict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ITEM = re.compile(r"""\s*('(?:[^']|'')+'|[^'=\s][^=\s]*)=(\S*)""")
_VALUE = re.compile(r"^([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|U)([A-Za-z%]*)$")

# unit (case-sensitive, as the guidelines write them) -> (factor, name suffix)
_UNITS: dict[str, tuple[float, str]] = {
    "": (1.0, ""),
    "s": (1.0, "_seconds"),
    "ms": (1e-3, "_seconds"),
    "us": (1e-6, "_seconds"),
    "%": (0.01, "_ratio"),
    "B": (1.0, "_bytes"),
    "c": (1.0, "_total"),
}
for _power, _prefix in enumerate("KMGTP", start=1):
    _UNITS[f"{_prefix}B"] = _UNITS[f"{_prefix}iB"] = (1024.0**_power, "_bytes")


@dataclass(frozen=True, slots=True)
class PerfDatum:
    """One perfdata item. ``value``, ``minimum`` and ``maximum`` are in base units;
    ``value`` is None for ``U``. ``warn``/``crit`` are the plugin's range text."""

    label: str
    value: float | None
    uom: str
    warn: str = ""
    crit: str = ""
    minimum: float | None = None
    maximum: float | None = None

    @property
    def suffix(self) -> str:
        return _UNITS.get(self.uom, (1.0, ""))[1]

    def as_dict(self) -> dict[str, object]:
        return {
            "label": self.label, "value": self.value, "uom": self.uom, "warn": self.warn,
            "crit": self.crit, "min": self.minimum, "max": self.maximum,
        }


@dataclass(frozen=True, slots=True)
class PluginOutput:
    """A plugin's stdout split per the guidelines; ``errors`` lists perfdata tokens
    that did not parse (kept for diagnostics, never fatal)."""

    summary: str
    long_output: str
    perfdata: tuple[PerfDatum, ...]
    errors: tuple[str, ...]


def _number(text: str, factor: float) -> float | None:
    try:
        return float(text) * factor
    except ValueError:
        return None


def parse_item(label: str, rest: str) -> PerfDatum:
    """One ``label=value[UOM];warn;crit;min;max`` item; raises ValueError if the
    value part is not a number (or ``U``) followed by letters or ``%``."""
    if label.startswith("'") and label.endswith("'") and len(label) >= 2:
        label = label[1:-1].replace("''", "'")
    fields = rest.split(";")
    match = _VALUE.match(fields[0])
    if not match:
        raise ValueError(f"{label}={rest}: value {fields[0]!r} is not a number")
    raw, uom = match.groups()
    factor = _UNITS.get(uom, (1.0, ""))[0]
    fields += [""] * (5 - len(fields))
    return PerfDatum(
        label=label,
        value=None if raw == "U" else float(raw) * factor,
        uom=uom,
        warn=fields[1],
        crit=fields[2],
        minimum=_number(fields[3], factor) if fields[3] else None,
        maximum=_number(fields[4], factor) if fields[4] else None,
    )


def parse_perfdata(text: str) -> tuple[list[PerfDatum], list[str]]:
    """All items in a perfdata string (spaces and newlines separate items)."""
    items: list[PerfDatum] = []
    errors: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _ITEM.match(text, pos)
        if not match:
            token = text[pos:].split(None, 1)[0]
            errors.append(f"{token}: not label=value")
            pos = text.index(token, pos) + len(token)
            continue
        pos = match.end()
        try:
            items.append(parse_item(match.group(1), match.group(2)))
        except ValueError as exc:
            errors.append(str(exc))
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return items, errors


def parse_output(stdout: str) -> PluginOutput:
    """Summary (first line before ``|``), long output, and all perfdata."""
    lines = stdout.splitlines()
    first = lines[0] if lines else ""
    summary, _, perf = first.partition("|")
    perf_parts = [perf]
    long_lines: list[str] = []
    in_perf = False
    for line in lines[1:]:
        if in_perf:
            perf_parts.append(line)
            continue
        text, bar, more = line.partition("|")
        if bar:
            in_perf = True
            perf_parts.append(more)
            if text.strip():
                long_lines.append(text.rstrip())
        else:
            long_lines.append(line)
    items, errors = parse_perfdata("\n".join(perf_parts))
    return PluginOutput(summary.strip(), "\n".join(long_lines), tuple(items), tuple(errors))


_NON_NAME = re.compile(r"[^a-z0-9_]+")


def measurement_name(datum: PerfDatum) -> str:
    """A metric-friendly name: the label lower-cased, runs of anything but
    ``[a-z0-9_]`` turned into one ``_``, trimmed, plus the unit suffix (unless the
    label already ends with it: ``time_seconds`` stays as it is).

    ``'/'`` (check_disk's root file system) becomes ``root``; a label with nothing
    usable becomes ``perf``; a leading digit gets the prefix ``perf_``.
    """
    label = datum.label.strip()
    base = "root" if label == "/" else _NON_NAME.sub("_", label.lower()).strip("_")
    if not base:
        base = "perf"
    elif base[0].isdigit():
        base = f"perf_{base}"
    suffix = datum.suffix
    return base if base.endswith(suffix) else base + suffix
