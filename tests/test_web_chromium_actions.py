"""Log in, act and read the timeline in real headless Chromium, driven like a person
(typing and clicking through the DevTools protocol, tests/cdp.py): the login form, the
ticket page's action forms (acknowledge, comment, a refused then forced resolve,
silence) and logout. The collector app (API and pages) is served by uvicorn from a
SQLite store; the forms carry no script (the pages' CSP forbids it).
Set ``PATROL_SCREENSHOT_DIR`` to keep the screenshots.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import requests

from patrol.collector.ingest.api import create_app
from patrol.collector.store import open_store
from tests.cdp import Browser
from tests.collector_fixtures import AGENT_TOKEN, OPERATOR_TOKEN, World, event, event_json
from tests.served import served

pytestmark = pytest.mark.slow


def keep(shot: Path) -> Path:
    folder = os.environ.get("PATROL_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(folder) / shot.name)
    return shot


def timeline_rows(html: str) -> list[tuple[str, str, str]]:
    """(kind, author, text) of each timeline row on the ticket page."""
    table = html[html.index('id="timeline"'):]
    return [(kind, author, re.sub(r"<[^>]+>", "", text)) for kind, author, text in re.findall(
        r'<tr class="kind-[\w-]+"><td class="time">[^<]*</td><td>([^<]*)</td>'
        r"<td>([^<]*)</td><td class=\"text\">(.*?)</td></tr>", table, re.S)]


def test_an_operator_logs_in_acts_and_sees_the_timeline_in_chromium(tmp_path: Path) -> None:
    world = World(open_store(f"sqlite:///{tmp_path}/patrol.db"))
    app = create_app(world.engine, [AGENT_TOKEN], [OPERATOR_TOKEN])
    try:
        with served(app) as base, Browser() as browser:
            alice = requests.post(f"{base}/api/v1/credentials", timeout=10, json={
                "kind": "operator", "name": "alice"},
                headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}).json()["token"]
            number = requests.post(f"{base}/api/v1/events", timeout=10, json=event_json(
                event("db-01", "root-disk")), headers={
                "Authorization": f"Bearer {AGENT_TOKEN}"}).json()["results"][0]["ticket"]

            browser.open(f"{base}/tickets/{number}")
            assert "<h1>Log in to Patrol</h1>" in browser.html()
            keep(browser.screenshot(tmp_path / "actions-1-login.png"))
            browser.type("#token", alice)
            browser.click("form.login button")
            assert browser.url() == f"{base}/tickets/{number}"
            page = browser.html()
            assert f"{number} · " in page and '<div class="who">alice' in page

            browser.click("form.act-acknowledge button")
            browser.type("#comment-text", "cleaning up /var/log")
            browser.click("form.act-comment button")
            browser.type("#resolve-text", "archive disk, won't fix")
            browser.click("form.act-resolve button[value=resolve]")
            refused = browser.html()
            assert "still reports CRITICAL on db-01" in refused
            assert 'class="action-error overdue"' in refused
            keep(browser.screenshot(tmp_path / "actions-2-refused.png"))
            browser.type("#resolve-text", "archive disk, won't fix")
            browser.click("form.act-resolve input[name=force]", navigates=False)
            browser.click("form.act-resolve button[value=resolve]")
            browser.type("form.act-silence input[name=text]", "disk swap tonight")
            browser.click("form.act-silence button")

            rows = timeline_rows(browser.html())
            assert [(kind, author) for kind, author, _ in rows] == [
                ("opened", "patrol"), ("acknowledged", "alice"), ("comment", "alice"),
                ("resolved", "alice"), ("silenced", "alice")]
            assert rows[2][2] == "cleaning up /var/log"
            assert rows[3][2].startswith("archive disk, won't fix (forced while")
            assert rows[4][2].startswith("silenced db-01 for 2h (maintenance window ")
            keep(browser.screenshot(tmp_path / "actions-3-timeline.png", full_page=True))
            assert world.store.maintenance_windows()[0]["hosts"] == ["db-01"]

            browser.click("form.logout button")
            assert browser.url() == f"{base}/login"
            browser.open(f"{base}/tickets/{number}")
            assert "<h1>Log in to Patrol</h1>" in browser.html()
    finally:
        world.store.close()
