"""``patrol report daily|retro``: write a report as self-contained HTML or JSON.

``add_arguments`` runs whenever any ``patrol`` command builds its parser (the agent's
start-up included), so it imports nothing beyond argparse; the store, Jinja2 and
matplotlib are loaded by :func:`main` only.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

FORMATS = ("html", "json")
RETRO_DAYS = 7


def add_arguments(sub: Any) -> None:
    report = sub.add_parser("report", help="the daily inspection report or a retrospective")
    kinds = report.add_subparsers(dest="report", required=True, metavar="REPORT")
    daily = kinds.add_parser("daily", help="the fleet's state and the day's tickets")
    daily.add_argument("--date", metavar="DATE", help="YYYY-MM-DD, a UTC day (default: today)")
    retro = kinds.add_parser("retro", help="MTTA, MTTR, SLA compliance, what recurs")
    retro.add_argument("--from", dest="first", metavar="DATE",
                       help=f"first day, YYYY-MM-DD (default: {RETRO_DAYS - 1} days "
                            "before --to)")
    retro.add_argument("--to", dest="last", metavar="DATE",
                       help="last day, included (default: today)")
    for parser in (daily, retro):
        parser.add_argument("--format", choices=FORMATS, default="html")
        parser.add_argument("--out", "-o", metavar="FILE",
                            help="write to FILE (default: standard output)")
        parser.add_argument("--store", metavar="URL",
                            help="store URL (default: --config's, or patrol up's)")
        parser.add_argument("--config", "-c", metavar="FILE",
                            help="collector YAML file, for its store and policy")
        parser.add_argument("--language", choices=("en", "zh-CN"),
                            help="report text language (default: the config's, else en)")


def _days(args: Any, now: float) -> tuple[date, date]:
    """The report's first and last day (the same for daily); ValueError for bad input,
    raised before any store is touched."""
    from patrol.collector.reports.period import Period, day_of, parse_day

    today = day_of(now)
    if args.report == "daily":
        day = parse_day(args.date) if args.date else today
        return day, day
    last = parse_day(args.last) if args.last else today
    first = parse_day(args.first) if args.first else last - timedelta(RETRO_DAYS - 1)
    Period.days(first, last)  # refuses a period that ends before it starts
    return first, last


def _open(args: Any) -> tuple[Any, Any]:
    """The store to read and the source that named it."""
    from patrol.collector.reports.locate import NoStore, locate
    from patrol.collector.store import open_store, sqlite_path

    source = locate(args.store, args.config)
    if not source.store.startswith(("postgresql://", "postgres://")):
        path = Path(sqlite_path(source.store))
        if not path.is_file():  # opening would make an empty store and report nothing
            raise NoStore(f"no store at {path} (from {source.found_by}); check the path")
    return open_store(source.store, pool_size=2), source


def _build(args: Any, now: float) -> dict[str, Any]:
    from patrol.collector.reports.make import daily_report, retro_report

    first, last = _days(args, now)
    store, source = _open(args)
    args.language = args.language or source.language
    try:
        if args.report == "daily":
            return daily_report(store, first, now, source.policy)
        return retro_report(store, first, last, now)
    finally:
        store.close()


def main(args: Any, clock: Callable[[], float] = time.time) -> int:
    from patrol.collector.config import ConfigError
    from patrol.collector.reports.locate import NoStore
    from patrol.collector.store.base import StoreError

    try:
        report = _build(args, clock())
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    except (NoStore, StoreError, ValueError) as exc:
        print(f"patrol: {exc}", file=sys.stderr)
        return 2
    from patrol.collector.reports import html

    if args.format == "json":
        text = html.to_json(report)
    else:
        try:
            text = html.render(report, getattr(args, "language", None) or "en")
        except ModuleNotFoundError as exc:
            print(f"patrol: the HTML report needs {exc.name}: pip install "
                  "'patrol-inspect[reports]' (or use --format json)", file=sys.stderr)
            return 2
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"patrol: wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
