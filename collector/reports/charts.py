"""Charts as PNG ``data:`` URIs, drawn with matplotlib's Agg backend.

PNG rather than SVG because mail clients do not render inline SVG, and the report is
meant to be mailed as one file. The object API (``Figure`` + ``FigureCanvasAgg``) is
used instead of pyplot: pyplot keeps global state, which is not safe in the
collector's web threads. Colours are the web pages' status and priority colours, so
a chart reads like the fleet grid. Each function returns None when there is nothing
to draw: an empty chart would look like a broken one.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

STATUS_COLOURS = {"OK": "#1f8a3b", "WARNING": "#f0a202", "CRITICAL": "#c8102e",
                  "UNKNOWN": "#7b3fa0"}
PRIORITY_COLOURS = {"P1": "#c8102e", "P2": "#e8590c", "P3": "#f0a202", "P4": "#6c7a89"}
CURRENT, PREVIOUS, SECOND = "#0b5cad", "#b8c4d0", "#1f8a3b"
SIZE = (6.4, 3.0)
DPI = 100


def _figure() -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.spines[["top", "right"]].set_visible(False)
    axes.tick_params(labelsize=8)
    locator = axes.yaxis.get_major_locator()
    assert isinstance(locator, MaxNLocator)  # the default AutoLocator is one
    locator.set_params(integer=True)  # no "0.5 tickets" ticks
    return figure, axes


def png(figure: Any) -> bytes:
    """The figure as PNG bytes (for a web route or a helpdesk attachment)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _uri(figure: Any) -> str:
    return "data:image/png;base64," + base64.b64encode(png(figure)).decode("ascii")


def _label(value: float | None, fmt: str) -> str:
    """The text over a bar: blank for nothing, "n/a" where there is no figure, so a
    0 % bar and a missing one read differently."""
    if value is None:
        return "n/a"
    return "" if value == 0 and fmt != PERCENT else fmt.format(value)


COUNT, ONE_DECIMAL, PERCENT = "{:.0f}", "{:.1f}", "{:.0f}%"


def bars(labels: Sequence[str], values: Sequence[float | None], colours: Sequence[str],
         title: str, ylabel: str, fmt: str = COUNT) -> str | None:
    """One bar per label, each with its value written on top."""
    if not any(values):
        return None
    figure, axes = _figure()
    drawn = axes.bar(labels, [v or 0 for v in values], color=colours)
    axes.bar_label(drawn, labels=[_label(v, fmt) for v in values], fontsize=8)
    axes.set_title(title, fontsize=10)
    axes.set_ylabel(ylabel, fontsize=8)
    return _uri(figure)


def paired_bars(labels: Sequence[str], series: Mapping[str, Sequence[float | None]],
                colours: Sequence[str], title: str, ylabel: str,
                fmt: str | None = None) -> str | None:
    """Side-by-side bars per label, one per series; ``fmt`` writes each value on its
    bar (None: no labels, for dense series such as 24 hours)."""
    every = [v for values in series.values() for v in values]
    if all(v is None for v in every) or (fmt != PERCENT and not any(every)):
        return None  # nothing to show; but a 0 % compliance is a figure, not nothing
    figure, axes = _figure()
    width = 0.8 / len(series)
    for i, ((name, values), colour) in enumerate(zip(series.items(), colours, strict=False)):
        positions = [x + (i - (len(series) - 1) / 2) * width for x in range(len(labels))]
        drawn = axes.bar(positions, [v or 0 for v in values], width, label=name, color=colour)
        if fmt is not None:
            axes.bar_label(drawn, labels=[_label(v, fmt) for v in values], fontsize=7)
    # Many days or hours: turn the labels so they do not run into each other.
    axes.set_xticks(range(len(labels)), labels, rotation=60 if len(labels) > 12 else 0)
    axes.set_title(title, fontsize=10)
    axes.set_ylabel(ylabel, fontsize=8)
    axes.legend(fontsize=8, frameon=False)
    return _uri(figure)


def ranking(labels: Sequence[str], values: Sequence[float], title: str) -> str | None:
    """Horizontal bars, the largest on top (for "what recurs most")."""
    if not values:
        return None
    figure, axes = _figure()
    drawn = axes.barh(list(reversed(labels)), list(reversed(values)), color=CURRENT)
    axes.bar_label(drawn, fontsize=8)
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.set_title(title, fontsize=10)
    return _uri(figure)


def measurement_line(series: Mapping[str, Sequence[tuple[float, float]]],
                     warning: float | None, critical: float | None, title: str,
                     ylabel: str, marker: float | None = None) -> Any | None:
    """Time series (epoch seconds, value), one line per label, with dashed warning and
    critical lines and a vertical line at ``marker`` (the breach); a Figure, or None
    when no series has a point. Times are drawn in UTC, as the web pages write them."""
    if not any(series.values()):
        return None
    from datetime import UTC, datetime

    import matplotlib.dates as mdates

    figure, axes = _figure()
    axes.yaxis.get_major_locator().set_params(integer=False)
    for (label, points), colour in zip(series.items(), (CURRENT, SECOND, "#6c7a89",
                                                         "#7b3fa0", "#e8590c"),
                                       strict=False):
        times = [datetime.fromtimestamp(t, UTC) for t, _ in points]
        axes.plot(times, [v for _, v in points], color=colour, linewidth=1.6, label=label)
    for level, name in ((warning, "WARNING"), (critical, "CRITICAL")):
        if level is not None:
            # Not antialiased: a level line is exactly its status colour (crisp, and a
            # test can find it in the pixels).
            axes.axhline(level, color=STATUS_COLOURS[name], linestyle="--", linewidth=1.5,
                         antialiased=False, label=f"{name.lower()} {level:g}")
    if marker is not None:
        axes.axvline(datetime.fromtimestamp(marker, UTC), color="#444444", linestyle=":",
                     linewidth=1.0, label="breach")
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M", tz=UTC))
    axes.tick_params(axis="x", labelrotation=30)
    axes.set_title(title, fontsize=10)
    axes.set_ylabel(ylabel, fontsize=8)
    axes.legend(fontsize=7, frameon=False, loc="best")
    return figure
