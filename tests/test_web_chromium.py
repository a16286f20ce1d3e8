"""The web pages in real headless Chromium, served by uvicorn from a seeded SQLite store.

Chromium cannot send a bearer header, so every page is reached the way a person's
first click reaches it: a one-time ``/login?code=...&next=/page`` link (what ``patrol
up`` prints) starts a session and redirects.
Set ``PATROL_SCREENSHOT_DIR`` to also keep the screenshots for a human to look at.
"""

from __future__ import annotations

import os
import shutil
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from tests import chromium
from tests.conftest import free_port, require_command
from tests.websetup import Seeded, login_link, make_app, seed

pytestmark = pytest.mark.slow


class Site:
    def __init__(self, base: str, data: Seeded) -> None:
        self.base = base
        self.data = data

    def via_login(self, path: str) -> str:
        return login_link(self.base, self.data.store, path)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_command("chromium", "chromium")
    data = seed(tmp_path_factory.mktemp("web") / "tickets.db")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(make_app(data.store), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn-web-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield Site(f"http://127.0.0.1:{port}", data)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        data.store.close()


def test_without_login_chromium_gets_the_login_explanation(site):
    dom = chromium.dump_dom(f"{site.base}/")
    assert "<h1>Log in to Patrol</h1>" in dom
    assert '<form class="login" method="post" action="/login">' in dom
    assert "db-01" not in dom


def test_grid_in_chromium(site):
    dom = chromium.dump_dom(site.via_login("/"))
    assert "<title>Fleet · Patrol</title>" in dom
    assert ('<td class="cell status-critical" title="/var is 96.2% full on db-01 '
            '(critical at 95%)">') in dom
    assert '<td class="cell status-ok" title="CPU 12% busy on db-01">OK</td>' in dom
    assert '<td class="cell status-unknown"' in dom and '<td class="cell status-missing"' in dom
    assert "12s ago" in dom and "UNREACHABLE" in dom
    assert "<script" not in dom  # the agent's "<script>" summary stayed text


def test_ticket_list_in_chromium(site):
    dom = chromium.dump_dom(site.via_login("/tickets"))
    p1, p3 = site.data.p1.number, site.data.p3.number
    assert dom.index(f'href="/tickets/{p1}"') < dom.index(f'href="/tickets/{p3}"')
    assert '<td class="clock overdue" title="2023-11-14T22:08:20Z">respond overdue by 5m' in dom
    assert '<span class="marker">flapping</span>' in dom


def test_ticket_detail_in_chromium(site):
    dom = chromium.dump_dom(site.via_login(f"/tickets/{site.data.p1.number}"))
    assert "TS20231114001 · /var is 96.2% full on db-01" in dom
    assert "<h2>Measured values</h2>" in dom and "<h3>Top processes</h3>" in dom
    assert "<details open=\"\"><summary>Check</summary>" in dom
    assert "looking at the journal size" in dom
    assert f'<a href="/tickets/{site.data.previous.number}">' in dom


def test_markup_from_agents_never_becomes_elements_in_chromium(site):
    dom = chromium.dump_dom(site.via_login(f"/tickets/{site.data.xss.number}"))
    assert "&lt;script&gt;alert('pwned')&lt;/script&gt;" in dom
    assert "<script" not in dom and "<img" not in dom


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


# patrol.css's status fills; a grid cell is about 56 x 50 pixels of one of them
FILLS = {"OK green": (0x1F, 0x8A, 0x3B), "WARNING amber": (0xF0, 0xA2, 0x02),
         "CRITICAL red": (0xC8, 0x10, 0x2E), "UNKNOWN purple": (0x7B, 0x3F, 0xA0),
         "missing grey": (0xD5, 0xD8, 0xDC)}


def keep(shot: Path) -> None:
    folder = os.environ.get("PATROL_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(folder) / shot.name)


def test_grid_screenshot_shows_every_status_colour(site, tmp_path):
    shot = chromium.screenshot(site.via_login("/"), tmp_path / "grid.png")
    keep(shot)
    assert png_size(shot) == chromium.WINDOW
    assert shot.stat().st_size > 20_000
    colours = chromium.png_colours(shot)
    # the stylesheet loaded and applied (the login page has none of these colours)
    assert {name: colours[rgb] >= 2000 for name, rgb in FILLS.items()} == dict.fromkeys(
        FILLS, True)


def test_ticket_detail_screenshot(site, tmp_path):
    shot = chromium.screenshot(site.via_login(f"/tickets/{site.data.p1.number}"),
                               tmp_path / "ticket.png")
    keep(shot)
    assert png_size(shot) == chromium.WINDOW
    assert shot.stat().st_size > 50_000  # fields, body text and tables, not a short page
    assert chromium.png_colours(shot)[FILLS["CRITICAL red"]] >= 150  # P1 badge, overdue
