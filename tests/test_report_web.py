"""The Reports page of the web UI: the same self-contained reports, served.

TestClient on SQLite and PostgreSQL for what the pages say; real headless Chromium
(against uvicorn) for how a report looks, with a screenshot a person can keep by
setting ``PATROL_SCREENSHOT_DIR``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests import chromium
from tests.conftest import require_command
from tests.report_seed import NOW, seeded_story
from tests.served import served
from tests.test_web_chromium import keep
from tests.websetup import OPERATOR_TOKEN, login_link, make_app

AUTH = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


@pytest.fixture(params=["sqlite", "postgres"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    for story in seeded_story(request.param, request, tmp_path):
        yield TestClient(make_app(story.world.store, NOW))


def test_the_reports_page_offers_today_and_a_period(client):
    page = client.get("/reports", headers=AUTH)
    assert page.status_code == 200
    assert '<a href="/reports">Reports</a>' in page.text  # in the navigation
    assert '<a href="/reports/daily">Today\'s inspection report (2023-10-27)</a>' in page.text
    assert '<input type="date" name="from" value="2023-10-21" required>' in page.text
    assert '<input type="date" name="to" value="2023-10-27" required>' in page.text


def test_todays_daily_report_is_served_as_the_file(client):
    page = client.get("/reports/daily", headers=AUTH)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<h1>Inspection report: 2023-10-27</h1>" in page.text
    assert '<td class="silent">old-01</td>' in page.text
    policy = page.headers["content-security-policy"]
    assert "img-src data:" in policy and "script-src" not in policy
    assert "default-src 'none'" in policy


def test_a_retrospective_for_a_chosen_period(client):
    page = client.get("/reports/retro?from=2023-10-27&to=2023-10-27", headers=AUTH)
    assert page.status_code == 200
    assert "<h1>Retrospective: 2023-10-27 to 2023-10-27</h1>" in page.text
    assert '<span class="n">67%</span>respond-by met' in page.text
    week = client.get("/reports/retro", headers=AUTH)
    assert "<h1>Retrospective: 2023-10-21 to 2023-10-27</h1>" in week.text
    assert '<span class="n">8</span>tickets opened' in week.text


def test_the_figures_as_json(client):
    answer = client.get("/reports/retro?from=2023-10-27&to=2023-10-27&format=json",
                        headers=AUTH)
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["summary"]["mtta_seconds"] == 1200.0
    daily = client.get("/reports/daily?format=json", headers=AUTH).json()
    assert (daily["date"], daily["summary"]["tickets_open"]) == ("2023-10-27", 2)


def test_report_pages_need_a_login_and_say_what_is_wrong(client):
    assert client.get("/reports/daily").status_code == 401
    bad = client.get("/reports/retro?from=yesterday", headers=AUTH)
    assert bad.status_code == 400
    assert "&#39;yesterday&#39; is not a date; write it as YYYY-MM-DD" in bad.text
    assert client.get("/reports/weekly", headers=AUTH).status_code == 404


# -- in a real browser -------------------------------------------------------------------


@pytest.fixture
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    require_command("chromium", "chromium")
    for story in seeded_story("sqlite", request, tmp_path):
        with served(make_app(story.world.store, NOW)) as base:
            yield base, story.world.store


def _via_login(site: tuple[str, Any], path: str) -> str:
    return login_link(*site, path, NOW)


# The report's status and priority colours, as its inline CSS and its charts draw them.
RED, GREEN, AMBER = (0xC8, 0x10, 0x2E), (0x1F, 0x8A, 0x3B), (0xF0, 0xA2, 0x02)


@pytest.mark.slow
def test_daily_report_in_chromium_shows_its_charts(site, tmp_path):
    dom = chromium.dump_dom(_via_login(site, "/reports/daily"))
    assert "<h1>Inspection report: 2023-10-27</h1>" in dom
    assert dom.count('<img src="data:image/png;base64,') == 3
    shot = chromium.screenshot(_via_login(site, "/reports/daily"),
                               tmp_path / "report-daily.png", window=(1200, 1400))
    keep(shot)
    colours = chromium.png_colours(shot)
    # The status chart's bars (drawn by matplotlib into the PNG) and the tiles' badges
    # only show if the browser displayed the embedded images and the inline styles.
    assert colours[GREEN] > 5000 and colours[RED] > 2000 and colours[AMBER] > 1000


@pytest.mark.slow
def test_retrospective_in_chromium(site, tmp_path):
    path = "/reports/retro?from=2023-10-21&to=2023-10-27"
    dom = chromium.dump_dom(_via_login(site, path))
    assert "<h1>Retrospective: 2023-10-21 to 2023-10-27</h1>" in dom
    assert dom.count('<img src="data:image/png;base64,') == 5
    shot = chromium.screenshot(_via_login(site, path), tmp_path / "report-retro.png",
                               window=(1200, 1400))
    keep(shot)
    assert chromium.png_colours(shot)[(0x0B, 0x5C, 0xAD)] > 3000  # the charts' blue bars
