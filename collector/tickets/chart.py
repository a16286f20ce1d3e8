"""The chart of a ticket's breaching measurement: what the ticket page shows and what
helpdesks get attached.

Source, best first: the series the agent sent with the breach (minute-level, the day
before it, with the warning and critical levels in force then); else the hourly
rollups of the ticket's measurements from a day before the first breach to now
(an agent older than the history, or a ticket from a heartbeat reconciliation). The
chart is a PNG drawn server-side (:mod:`collector.reports.charts`): no JavaScript, no
external resource, and the same bytes a helpdesk attachment carries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from patrol.collector.model import Ticket
from patrol.collector.reports import charts
from patrol.collector.store.history import DAY, HOUR
from patrol.ticketing_bridge.protocol import Attachment, BridgeError, ExternalRef, TakesAttachments

if TYPE_CHECKING:
    from patrol.collector.store.base import TicketReads
    from patrol.ticketing_bridge.protocol import Helpdesk

log = logging.getLogger("patrol.collector.chart")
FILENAME = "patrol-chart.png"
MAX_LINES = 5


@dataclass(frozen=True, slots=True)
class ChartData:
    series: dict[str, list[tuple[float, float]]]
    warning: float | None
    critical: float | None
    unit: str
    breach_at: float | None


def _label(name: str, item: str) -> str:
    return f"{name} {item}" if item else name


def data_for(store: TicketReads, ticket: Ticket, now: float) -> ChartData | None:
    """What to draw for ``ticket``, or None when the store holds no history for it."""
    if ticket.is_group:
        return None
    breach = store.breach_series(ticket.dedup_key, before=max(ticket.last_seen, now))
    if breach:
        levels = breach[0]["levels"]
        return ChartData({_label(r["name"], r["item"]): [(float(t), float(v))
                                                         for t, v in r["points"]]
                          for r in breach[:MAX_LINES]},
                         levels.get("warning"), levels.get("critical"),
                         levels.get("unit") or "", breach[0]["observed_at"])
    wanted = {(m.get("name"), m.get("item", "")) for m in ticket.measurements}
    rows = store.rollups("hour", ticket.first_seen - DAY, now + HOUR, host=ticket.host,
                         check=ticket.check)
    series: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        if wanted and (row["name"], row["item"]) not in wanted:
            continue
        series.setdefault(_label(row["name"], row["item"]), []).append(
            (row["bucket"] + HOUR / 2, row["avg"]))
    if not series:
        return None
    return ChartData(dict(list(series.items())[:MAX_LINES]), None, None, "",
                     ticket.first_seen)


def _scaled(data: ChartData) -> tuple[ChartData, str]:
    """Ratios drawn as percent (what the ticket's summary says), with the axis label."""
    if data.unit != "ratio":
        return data, data.unit
    scale = 100.0

    def pct(v: float | None) -> float | None:
        return None if v is None else round(v * scale, 6)

    return ChartData({k: [(t, v * scale) for t, v in pts] for k, pts in data.series.items()},
                     pct(data.warning), pct(data.critical), "%", data.breach_at), "%"


def chart_png(store: TicketReads, ticket: Ticket, now: float) -> bytes | None:
    """The ticket's chart as PNG bytes, or None when there is nothing to draw."""
    data = data_for(store, ticket, now)
    if data is None:
        return None
    data, unit = _scaled(data)
    figure = charts.measurement_line(
        data.series, data.warning, data.critical,
        f"{ticket.check} on {ticket.host}", unit or "value", marker=data.breach_at)
    return None if figure is None else charts.png(figure)


def available(store: TicketReads, ticket: Ticket, now: float) -> bool:
    """Whether the ticket page should show a chart (cheaper than drawing it)."""
    return data_for(store, ticket, now) is not None


def attach_chart(adapter: Helpdesk, ref: ExternalRef, store: TicketReads, ticket: Ticket,
                 now: float) -> bool:
    """Attach the chart to a just-opened helpdesk ticket when the adapter takes files.

    Best effort: the ticket exists in the helpdesk already and its body links to the
    page with the chart, so a refused upload is logged, not retried (retrying the open
    row would not help, and must not open a second ticket)."""
    if not isinstance(adapter, TakesAttachments):
        return False
    try:
        png = chart_png(store, ticket, now)
        if png is None:
            return False
        adapter.attach(ref, Attachment(FILENAME, "image/png", png),
                       f"Chart: {ticket.check} on {ticket.host} around the breach.")
    except BridgeError as exc:
        log.warning("could not attach the chart to %s #%s: %s", ref.helpdesk, ref.id, exc)
        return False
    return True


HOST_DAYS = 7


def check_png(store: TicketReads, host: str, check: str, now: float) -> bytes | None:
    """A host page's chart of one check: the hourly averages of the last week, one line
    per item of its main measurement (a ratio when it has one, so one axis fits)."""
    rows = store.rollups("hour", now - HOST_DAYS * DAY, now + HOUR, host=host, check=check)
    names = sorted({r["name"] for r in rows}, key=lambda n: (not n.endswith("ratio"), n))
    if not names:
        return None
    series: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        if row["name"] == names[0]:
            series.setdefault(_label(row["name"], row["item"]), []).append(
                (row["bucket"] + HOUR / 2, row["avg"]))
    data, unit = _scaled(ChartData(dict(list(series.items())[:MAX_LINES]), None, None,
                                   "ratio" if names[0].endswith("ratio") else "", None))
    figure = charts.measurement_line(data.series, None, None, f"{check} on {host}",
                                     unit or names[0])
    return None if figure is None else charts.png(figure)
