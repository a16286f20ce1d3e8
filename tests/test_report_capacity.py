"""Capacity forecasts in the daily report, from the rollups of a seeded store (SQLite and
PostgreSQL), against hand-computed days-until-full."""

from __future__ import annotations

import json
from datetime import date

import pytest

from patrol.collector.reports import html
from patrol.collector.reports.make import daily_report
from patrol.collector.store.history import HOUR, Sample
from tests.collector_fixtures import T0

pytest_plugins = ["tests.store_worlds"]

DAY_SECONDS = 86400.0
AS_OF = T0 + 4 * DAY_SECONDS  # 2023-10-31 09:00 UTC, "now" in the report of that day


def _seed(store) -> None:
    """Four days of hourly values up to AS_OF: /var on db-01 grows 5 points a day to 70 %
    (full in 30 / 5 = 6 days); its inodes 1 point a day to 24 % (76 days); / on web-01
    shrinks (no forecast); /srv on web-01 has two hours only (too little to claim a trend)."""
    with store.transaction() as tx:
        for h in range(96, 0, -1):
            at = AS_OF - h * HOUR + 60
            before = (AS_OF - HOUR + 60 - at) / DAY_SECONDS  # days before the latest value
            tx.record_samples("db-01", [
                Sample("disk", "used_ratio", "/var", at, 0.70 - 0.05 * before),
                Sample("disk", "inodes_used_ratio", "/var", at, 0.24 - 0.01 * before),
                Sample("disk", "free_bytes", "/var", at, 1e9)])
            tx.record_samples("web-01", [Sample("disk", "used_ratio", "/", at,
                                                0.60 + 0.02 * before)])
        for h in (2, 1):
            tx.record_samples("web-01", [Sample("disk", "used_ratio", "/srv",
                                                AS_OF - h * HOUR + 60, 0.9 + h / 100)])


def test_days_until_full_and_fastest_growing(any_world):
    _seed(any_world.store)
    report = daily_report(any_world.store, date(2023, 10, 31), AS_OF)
    capacity = report["capacity"]
    assert capacity["filesystems"] == 3  # /srv has too few hours
    rows = [(f["host"], f["item"], f["what"], round(f["days_to_full"], 2),
             round(f["growth_per_day"], 4)) for f in capacity["filling"]]
    assert rows == [("db-01", "/var", "space", 6.0, 0.05),
                    ("db-01", "/var", "inodes", 76.0, 0.01)]
    assert [f["what"] for f in capacity["fastest"]] == ["space", "inodes"]
    assert capacity["filling"][0]["full_at"] == pytest.approx(
        capacity["filling"][0]["latest_at"] + 6 * DAY_SECONDS)
    page = html.render(report)
    assert "Capacity forecasts" in page and "6.0 days" in page and "76.0 days" in page
    assert json.loads(html.to_json(report))["capacity"]["filling"][0]["item"] == "/var"


def test_without_history_the_report_says_so(any_world):
    report = daily_report(any_world.store, date(2023, 10, 31), AS_OF)
    assert report["capacity"]["filling"] == []
    assert "no disk history yet" in html.render(report)
