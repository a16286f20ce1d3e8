"""The ticket page's chart of the breaching measurement, on SQLite and PostgreSQL, and in
real headless Chromium."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from patrol.contract.wire import MeasurementSeries, MeasurementValue
from tests import chromium
from tests.collector_fixtures import HOUR, T0, World, event, heartbeat, snapshot, store_for
from tests.conftest import require_command
from tests.served import served
from tests.websetup import OPERATOR_TOKEN, login_link, make_app

pytest_plugins = ["tests.store_worlds"]

BLUE, RED, AMBER = (11, 92, 173), (200, 16, 46), (240, 162, 2)
AUTH = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
FILLING = [(T0 - 3 * HOUR + 300 * i, 0.80 + 0.0045 * i) for i in range(37)]  # 80 % -> 96.2 %


def _breach(world: World, history: bool = True) -> str:
    outcome = world.one(event(
        check="root-disk", observed_at=T0,
        measurements=[MeasurementValue(name="used_ratio", value=0.962, item="/var")],
        thresholds={"used_ratio[/var]": {"warning": 0.9, "critical": 0.95, "unit": "ratio",
                                         "higher_is_worse": True}},
        history=[MeasurementSeries(name="used_ratio", item="/var", points=FILLING)]
        if history else []))
    return outcome.ticket


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def _colours(data: bytes, tmp_path: Path) -> set[tuple[int, int, int]]:
    path = tmp_path / "chart.png"
    path.write_bytes(data)
    return set(chromium.png_colours(path))


def test_the_ticket_page_shows_the_breach_with_its_warning_and_critical_lines(
        any_world, tmp_path):
    number = _breach(any_world)
    client = TestClient(make_app(any_world.store, now=T0 + 60))
    page = client.get(f"/tickets/{number}", headers=AUTH).text
    assert f'<img class="chart" src="/tickets/{number}/chart.png"' in page
    chart = client.get(f"/tickets/{number}/chart.png", headers=AUTH)
    assert chart.headers["content-type"] == "image/png"
    assert _png_size(chart.content) == (640, 300)
    assert {BLUE, RED, AMBER} <= _colours(chart.content, tmp_path)
    assert client.get(f"/tickets/{number}/chart.png").status_code == 401  # operators only


def test_without_the_agents_series_the_chart_is_drawn_from_the_hourly_rollups(
        any_world, tmp_path):
    for hour in range(6):
        run = T0 - 6 * HOUR + hour * HOUR
        check = snapshot("root-disk", last_run=run).model_copy(update={"measurements": [
            MeasurementValue(name="used_ratio", value=0.5 + hour * 0.08, item="/var")]})
        any_world.engine.heartbeat(heartbeat(checks=[check], sent_at=run + 5))
    number = _breach(any_world, history=False)
    client = TestClient(make_app(any_world.store, now=T0 + 60))
    chart = client.get(f"/tickets/{number}/chart.png", headers=AUTH)
    assert chart.status_code == 200
    colours = _colours(chart.content, tmp_path)
    assert BLUE in colours and RED not in colours  # the rollups know no levels


def test_a_ticket_without_any_history_shows_no_chart(any_world):
    number = any_world.one(event(check="ping", check_type="ping", observed_at=T0)).ticket
    client = TestClient(make_app(any_world.store, now=T0 + 60))
    assert "chart.png" not in client.get(f"/tickets/{number}", headers=AUTH).text
    missing = client.get(f"/tickets/{number}/chart.png", headers=AUTH)
    assert missing.status_code == 404 and "no measurement history" in missing.text


@pytest.mark.slow
def test_the_chart_in_the_ticket_page_in_chromium(request, tmp_path):
    require_command("chromium", "chromium")
    store = store_for("sqlite", request, tmp_path)
    world = World(store)
    for hour in range(12):  # the host page's week: a disk filling over 12 hours
        run = T0 - 12 * HOUR + hour * HOUR
        disk = snapshot("root-disk", last_run=run).model_copy(update={"measurements": [
            MeasurementValue(name="used_ratio", value=0.8 + hour * 0.014, item="/var")]})
        world.engine.heartbeat(heartbeat(checks=[disk], sent_at=run + 5))
    number = _breach(world)
    with served(make_app(store, now=T0 + 60)) as base:
        url = login_link(base, store, f"/tickets/{number}", now=T0 + 60)
        dom = chromium.dump_dom(url)
        assert f'src="/tickets/{number}/chart.png"' in dom
        # A login link works once: the screenshot's browser gets its own.
        shot = chromium.screenshot(login_link(base, store, f"/tickets/{number}", now=T0 + 60),
                                   tmp_path / "ticket-chart.png", window=(1280, 2600))
        keep = os.environ.get("PATROL_SCREENSHOT_DIR")
        if keep:
            shutil.copy(shot, Path(keep) / "ticket-chart.png")
        colours = chromium.png_colours(shot)
        assert colours[RED] > 100 and colours[AMBER] > 100 and colours[BLUE] > 100
        host = chromium.screenshot(login_link(base, store, "/hosts/db-01", now=T0 + 60),
                                   tmp_path / "host.png", window=(1280, 900))
        if keep:
            shutil.copy(host, Path(keep) / "host-page.png")
        assert chromium.png_colours(host)[BLUE] > 100  # the disk's week, drawn
    store.close()


def test_the_host_page_shows_each_checks_recent_chart(any_world, tmp_path):
    for hour in range(6):
        run = T0 - 6 * HOUR + hour * HOUR
        disk = snapshot("root-disk", last_run=run).model_copy(update={"measurements": [
            MeasurementValue(name="used_ratio", value=0.5 + hour * 0.01, item="/"),
            MeasurementValue(name="free_bytes", value=1e9, item="/")]})
        any_world.engine.heartbeat(heartbeat(
            checks=[disk, snapshot("ntp", check_type="command", last_run=run)],
            sent_at=run + 5))
    client = TestClient(make_app(any_world.store, now=T0))
    page = client.get("/hosts/db-01", headers=AUTH).text
    assert 'src="/hosts/db-01/checks/root-disk/chart.png"' in page
    assert "ntp" in page and "checks/ntp/chart.png" not in page  # nothing measured
    chart = client.get("/hosts/db-01/checks/root-disk/chart.png", headers=AUTH)
    assert _png_size(chart.content) == (640, 300) and BLUE in _colours(chart.content,
                                                                       tmp_path)
    assert client.get("/hosts/nobody", headers=AUTH).status_code == 404
    assert client.get("/hosts/db-01/checks/ntp/chart.png", headers=AUTH).status_code == 404
