"""Reports as one self-contained HTML file: inline CSS, charts as PNG ``data:`` URIs,
no JavaScript, nothing fetched from anywhere, so the file can be mailed, archived or
opened offline and looks the same everywhere.

The templates (``collector/web/templates/report_*.html``) only lay out the report dict
and the charts drawn here from it; every figure comes from :mod:`.retro` /
:mod:`.daily`. Jinja2 autoescapes: titles and summaries come from agents.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from patrol.collector.model import Priority
from patrol.collector.reports import charts, present

TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"
PRIORITIES = [p.value for p in Priority]


@cache
def _environment(language: str = "en") -> Any:
    """One Jinja environment per language: gettext from collector/i18n.py (``_`` in the
    templates); dates in the locale's format except English, which keeps the ISO-like
    form the web pages use."""
    import jinja2

    from patrol.collector import i18n

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, extensions=["jinja2.ext.i18n"])
    # install_gettext_translations is added by the jinja2.ext.i18n extension at run time
    env.install_gettext_translations(  # type: ignore[attr-defined]
        i18n.translations(language), newstyle=True)
    when = present.when if language == "en" else (
        lambda epoch: present.DASH if epoch is None else i18n.moment(epoch, language))
    env.filters.update(duration=present.duration, percent=present.percent, when=when,
                       number=lambda value, digits=1: i18n.number(value, language, digits))
    env.globals.update(metrics=present.METRICS, metric_value=present.value,
                       metric_change=present.change, metric_verdict=present.verdict)
    return env


def in_clock_units(seconds: Sequence[float | None]) -> tuple[list[float | None], str]:
    """Durations in minutes, or in hours when the longest is 2 h or more, so the bars
    of one chart are readable against one axis."""
    longest = max((s for s in seconds if s is not None), default=0.0)
    unit, size = ("hours", 3600.0) if longest >= 7200 else ("minutes", 60.0)
    return [None if s is None else s / size for s in seconds], unit


def retro_charts(report: dict[str, Any]) -> dict[str, str | None]:
    per_day = report["per_day"]
    by_priority = report["by_priority"]
    sla = report["sla"]["by_priority"]
    recurring = report["recurring"]["by_check"]
    colours = [charts.PRIORITY_COLOURS[p] for p in PRIORITIES]
    mtta, mtta_unit = in_clock_units([g["mtta_seconds"] for g in by_priority])
    mttr, mttr_unit = in_clock_units([g["mttr_seconds"] for g in by_priority])
    return {
        "per_day": charts.paired_bars(
            per_day["days"], {"this period": per_day["opened"],
                              "previous period": per_day["previous_opened"]},
            [charts.CURRENT, charts.PREVIOUS], "Tickets opened per day", "tickets",
            charts.COUNT),
        "mtta": charts.bars(PRIORITIES, mtta, colours, "MTTA by priority", mtta_unit,
                            charts.ONE_DECIMAL),
        "mttr": charts.bars(PRIORITIES, mttr, colours, "MTTR by priority", mttr_unit,
                            charts.ONE_DECIMAL),
        "sla": charts.paired_bars(
            PRIORITIES, {name: [None if row[name]["compliance"] is None
                                else row[name]["compliance"] * 100 for row in sla]
                         for name in ("respond", "resolve")},
            [charts.CURRENT, charts.SECOND], "SLA met, by priority", "% of tickets",
            charts.PERCENT),
        "recurring": charts.ranking([r["key"] for r in recurring],
                                    [r["incidents"] for r in recurring],
                                    "Most recurring checks (incidents)"),
    }


def daily_charts(report: dict[str, Any]) -> dict[str, str | None]:
    status = report["summary"]["status"]
    hours = [f"{h:02d}" for h in range(24)]
    return {
        "status": charts.bars(list(status), list(status.values()),
                              [charts.STATUS_COLOURS[s] for s in status],
                              "Checks by latest status", "checks", charts.COUNT),
        "per_hour": charts.paired_bars(
            hours, {"opened": report["per_hour"]["opened"],
                    "resolved": report["per_hour"]["resolved"]},
            [charts.PRIORITY_COLOURS["P1"], charts.STATUS_COLOURS["OK"]],
            "Tickets per hour (UTC)", "tickets"),
        "open": charts.bars(PRIORITIES, [report["open_by_priority"][p] for p in PRIORITIES],
                            [charts.PRIORITY_COLOURS[p] for p in PRIORITIES],
                            "Open tickets by priority", "tickets"),
    }


def render(report: dict[str, Any], language: str = "en") -> str:
    """The report as HTML in ``language`` (``en``, ``zh-CN``); the template and charts
    follow ``report["report"]``."""
    kind = report["report"]
    drawn = retro_charts(report) if kind == "retro" else daily_charts(report)
    return _environment(language).get_template(f"report_{kind}.html").render(
        r=report, charts=drawn, language=language)


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=False) + "\n"
