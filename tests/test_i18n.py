"""Reports and ticket bodies in Simplified Chinese (``language: zh-CN``) through Babel
catalogs; English stays as it was. Both stores where a store is involved."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from patrol.collector import i18n
from patrol.collector.config import ConfigError, load_collector_config
from patrol.collector.reports import html
from patrol.collector.reports.make import daily_report, retro_report
from tests.collector_fixtures import T0, event

pytest_plugins = ["tests.store_worlds"]
TEMPLATES = Path(i18n.__file__).parent / "web" / "templates"


def test_the_daily_report_in_chinese_has_chinese_headings_and_dates(any_world):
    any_world.one(event(check="root-disk", observed_at=T0))
    report = daily_report(any_world.store, date(2023, 10, 27), T0 + 60)
    chinese = html.render(report, "zh-CN")
    assert '<html lang="zh-CN">' in chinese
    assert "<h1>巡检报告: 2023-10-27</h1>" in chinese
    assert "<h2>主要风险</h2>" in chinese and "<h2>容量预测</h2>" in chinese
    assert "2023年10月27日 09:01:00 UTC" in chinese  # as of, in the Chinese date format
    english = html.render(report)
    assert "<h1>Inspection report: 2023-10-27</h1>" in english and "主要" not in english
    retro = html.render(retro_report(any_world.store, date(2023, 10, 27), date(2023, 10, 27),
                                     T0 + 60), "zh-CN")
    assert "<h1>复盘报告: 2023-10-27 至 2023-10-27</h1>" in retro


def test_a_ticket_body_in_chinese(any_world):
    any_world.engine.language = "zh-CN"
    number = any_world.one(event(check="root-disk", observed_at=T0)).ticket
    body = any_world.ticket(number).body
    headings = re.findall(r"^## (.+)$", body, re.MULTILINE)
    assert headings[:2] == ["问题", "环境"] and "历史发生记录" in headings
    assert "无：这是该主机和检查项的第一张工单。" in body
    assert "- **优先级**: P" in body
    assert "/var is 96.2% full on db-01" in body  # the agent's own words stay as sent


def test_numbers_follow_the_locale():
    assert i18n.number(1234567.891, "en", 2) == "1,234,567.89"
    assert i18n.number(1234567.891, "zh-CN", 2) == "1,234,567.89"
    assert i18n.moment(T0, "en") == "Oct 27, 2023, 9:00:00\u202fAM UTC"
    assert i18n.moment(T0, "zh-CN") == "2023年10月27日 09:00:00 UTC"


def test_every_template_message_has_a_chinese_translation():
    wanted = set()
    for template in TEMPLATES.glob("report_*.html"):
        wanted |= set(re.findall(r'_\("([^"]+)"\)', template.read_text()))
    assert len(wanted) > 20
    chinese = i18n.gettext_for("zh-CN")
    assert sorted(m for m in wanted if chinese(m) == m) == []


def test_the_language_setting_is_checked_with_file_and_line(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("collector:\n  language: zh-CN\n")
    assert load_collector_config(good).collector.language == "zh-CN"
    bad = tmp_path / "bad.yaml"
    bad.write_text("collector:\n  store: sqlite:///x.db\n  language: fr\n")
    with pytest.raises(ConfigError) as caught:
        load_collector_config(bad)
    assert f"{bad}:3:" in str(caught.value) and "language" in str(caught.value)
