"""``patrol report daily|retro``: write a report as self-contained HTML or JSON, and
with ``--mail`` mail it (:mod:`.mail`) through the collector config's ``reports.smtp``.

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
        parser.add_argument("--mail", action="store_true",
                            help="also mail the HTML report, through the config's "
                                 "reports.smtp, to its recipients for this report")
        parser.add_argument("--mail-to", action="append", metavar="ADDRESS",
                            help="with --mail: send to ADDRESS instead (repeatable)")


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


def _build(args: Any, now: float) -> tuple[dict[str, Any], Any]:
    """The report, and the source (store, policy, config) it was made from."""
    from patrol.collector.reports.make import daily_report, retro_report

    first, last = _days(args, now)
    store, source = _open(args)
    args.language = args.language or source.language
    try:
        if args.mail:
            _mail_settings(args, source)  # refuse before the work, not after it
        if args.report == "daily":
            return daily_report(store, first, now, source.policy), source
        return retro_report(store, first, last, now), source
    finally:
        store.close()


class CannotMail(ValueError):
    """``--mail`` without what mailing needs; the message says what to add."""


def _mail_settings(args: Any, source: Any) -> tuple[Any, list[str]]:
    """The SMTP settings and the recipients for ``--mail``."""
    reports = source.reports
    if reports is None or reports.smtp is None:
        raise CannotMail("--mail needs the collector config's reports.smtp block (the "
                         "email helpdesk's keys: host, from, ...); pass --config FILE")
    schedule = reports.scheduled().get(args.report)
    recipients = args.mail_to or (schedule.recipients if schedule is not None else [])
    if not recipients:
        raise CannotMail(f"--mail: no recipients; pass --mail-to ADDRESS or set "
                         f"reports.{args.report}.recipients in the collector config")
    bad = [r for r in recipients if "@" not in r]
    if bad:
        raise CannotMail(f"--mail-to: not an email address: {', '.join(bad)}")
    return reports.smtp, recipients


def _mail(args: Any, source: Any, report: dict[str, Any], page: str, now: float) -> int:
    from patrol.collector.reports import mail
    from patrol.ticketing_bridge.protocol import PermanentError, TemporaryError

    smtp, recipients = _mail_settings(args, source)
    msg = mail.message(page, report, smtp.sender, recipients, smtp.subject_prefix, now)
    try:
        mail.send(smtp, msg, recipients)
    except (TemporaryError, PermanentError) as exc:
        print(f"patrol: the report was not mailed: {exc}", file=sys.stderr)
        return 1
    print(f"patrol: mailed the report to {', '.join(recipients)}", file=sys.stderr)
    return 0


def main(args: Any, clock: Callable[[], float] = time.time) -> int:
    from patrol.collector.config import ConfigError
    from patrol.collector.reports.locate import NoStore
    from patrol.collector.store.base import StoreError

    now = clock()
    try:
        report, source = _build(args, now)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    except (NoStore, StoreError, ValueError) as exc:
        print(f"patrol: {exc}", file=sys.stderr)
        return 2
    from patrol.collector.reports import html

    page = None
    if args.format == "html" or args.mail:  # a mailed report is always the HTML one
        try:
            page = html.render(report, getattr(args, "language", None) or "en")
        except ModuleNotFoundError as exc:
            print(f"patrol: the HTML report needs {exc.name}: pip install "
                  "'patrol-inspect[reports]' (or use --format json)", file=sys.stderr)
            return 2
    text = html.to_json(report) if args.format == "json" else page or ""
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"patrol: wrote {args.out}", file=sys.stderr)
    elif not args.mail:  # --mail alone does not also pour HTML onto the terminal
        sys.stdout.write(text)
    return _mail(args, source, report, page or "", now) if args.mail else 0
