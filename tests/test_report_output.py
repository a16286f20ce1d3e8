"""What a report file is: self-contained HTML, JSON with stable keys, made by the real
``patrol report`` command from the store it finds (``--store``, ``--config`` or
``patrol up``'s). Seeded as in tests/report_seed.py, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pytest

from patrol.collector.reports import html
from patrol.collector.reports.locate import NoStore, locate
from patrol.collector.reports.make import daily_report, retro_report
from tests.collector_fixtures import World
from tests.report_seed import NOW, Seeded, seed, seeded_story

ROOT = Path(__file__).resolve().parent.parent
DAY = date(2023, 10, 27)
URL_ATTRIBUTES = {"src", "href", "srcset", "action", "formaction", "background", "poster",
                  "data", "cite", "longdesc", "manifest", "xlink:href"}


@pytest.fixture(params=["sqlite", "postgres"], name="seeded")
def seeded_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Seeded]:
    yield from seeded_story(request.param, request, tmp_path)


class Resources(HTMLParser):
    """Every tag, every URL-bearing attribute and every inline style of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.urls: list[str] = []
        self.images: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in URL_ATTRIBUTES:
                self.urls.append(value or "")
            if name == "style":
                self.styles.append(value or "")
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False


def resources(page: str) -> Resources:
    parser = Resources()
    parser.feed(page)
    return parser


@pytest.mark.parametrize("kind", ["retro", "daily"])
def test_html_is_one_self_contained_file_with_png_charts(seeded, kind):
    store = seeded.world.store
    report = retro_report(store, DAY, DAY, NOW) if kind == "retro" else \
        daily_report(store, DAY, NOW)
    page = html.render(report)
    found = resources(page)
    assert found.urls and all(u.startswith("data:image/png;base64,") for u in found.urls)
    assert len(found.images) == (5 if kind == "retro" else 3)  # every chart has data
    assert not found.tags & {"script", "link", "iframe", "object", "embed", "svg", "base"}
    assert not any("url(" in s or "@import" in s for s in found.styles)
    assert "http://" not in page and "https://" not in page and "src=\"data:" in page
    assert "<script" not in page.lower()


def test_html_shows_the_figures_a_person_reads(seeded):
    page = html.render(retro_report(seeded.world.store, DAY, DAY, NOW))
    assert "<h1>Retrospective: 2023-10-27 to 2023-10-27</h1>" in page
    assert '<span class="n">20m</span>MTTA (3 acknowledged)' in page
    assert '<span class="n">67%</span>respond-by met' in page
    assert ("<tr><td>P2</td><td class=\"num\">3</td><td class=\"num\">3</td>"
            "<td class=\"num\">20m</td><td class=\"num\">3</td>"
            "<td class=\"num\">48m 20s</td></tr>") in page
    assert f"<tr><td>{seeded.number('C')}</td>" in page and ">15m</td>" in page
    daily = html.render(daily_report(seeded.world.store, DAY, NOW))
    assert '<td class="silent">old-01</td>' in daily
    assert "respond overdue by 4h 15m" in daily
    assert "Capacity forecasts" in daily and "no disk history yet" in daily
    past = html.render(daily_report(seeded.world.store, date(2023, 10, 26), NOW))
    assert '<span class="n">8</span>hosts (runs of a past day are not kept)' in past
    assert "checks run (of" not in past


def test_agent_text_stays_text(seeded):
    world = seeded.world
    from tests.collector_fixtures import event

    world.one(event("evil-01", "x", summary="<img src=http://x/a.png onerror=alert(1)>",
                    observed_at=world.clock()))
    page = html.render(daily_report(world.store, DAY, NOW + 60))
    assert "&lt;img src=http://x/a.png onerror=alert(1)&gt;" in page
    assert all(u.startswith("data:") for u in resources(page).urls)


RETRO_KEYS = {
    "": ["report", "schema", "generated_at", "period", "previous_period", "summary",
         "previous", "trend", "by_priority", "by_category", "by_team", "by_check_type", "sla",
         "reopens", "recurring", "flapping", "noisy", "per_day"],
    "period": ["from", "to", "days"],
    "summary": ["tickets", "acknowledged", "mtta_seconds", "resolved", "mttr_seconds",
                "respond_compliance", "resolve_compliance", "reopen_rate",
                "flapping_tickets", "noisy_tickets"],
    "trend[]": ["metric", "current", "previous", "delta"],
    "by_priority[]": ["key", "tickets", "acknowledged", "mtta_seconds", "resolved",
                      "mttr_seconds"],
    "sla": ["by_priority", "total", "breaches"],
    "sla.by_priority[]": ["priority", "respond", "resolve"],
    "sla.total.respond": ["met", "breached", "pending", "compliance"],
    "sla.breaches[]": ["ticket", "priority", "title", "host", "check", "deadline", "due_at",
                       "done_at", "late_seconds"],
    "reopens": ["reopened", "ever_resolved", "rate", "tickets"],
    "recurring": ["by_check", "by_host", "by_category"],
    "recurring.by_check[]": ["key", "incidents", "tickets", "reopens"],
    "flapping[]": ["host", "check", "tickets", "numbers"],
    "noisy": ["within_seconds", "checks"],
    "noisy.checks[]": ["check", "noisy_tickets", "tickets", "hosts", "numbers"],
    "per_day": ["days", "opened", "previous_opened"],
}
DAILY_KEYS = {
    "": ["report", "schema", "generated_at", "date", "as_of", "summary", "open_by_priority",
         "not_reporting", "fleet", "top_risks", "changes", "per_hour", "capacity"],
    "summary": ["hosts", "hosts_inspected", "hosts_not_reporting", "checks", "checks_run",
                "status", "tickets_opened", "tickets_reopened", "tickets_resolved",
                "tickets_open", "sla_at_risk"],
    "summary.status": ["OK", "WARNING", "CRITICAL", "UNKNOWN"],
    "open_by_priority": ["P1", "P2", "P3", "P4"],
    "not_reporting[]": ["host", "last_heartbeat", "silent_seconds", "interval_seconds"],
    "fleet[]": ["host", "labels", "reporting", "last_heartbeat", "checks"],
    "fleet[].checks[]": ["check", "type", "status", "summary", "last_run"],
    "top_risks[]": ["ticket", "priority", "title", "host", "check", "status", "opened_at",
                    "flapping", "at_risk", "overdue", "deadlines"],
    "top_risks[].deadlines[]": ["deadline", "due_at", "left_seconds", "overdue", "at_risk"],
    "changes": ["new_failures", "reopened", "recoveries", "yesterday"],
    "changes.new_failures[]": ["ticket", "priority", "title", "host", "check", "category",
                               "at"],
    "changes.yesterday": ["opened", "reopened", "resolved"],
    "per_hour": ["opened", "resolved"],
}


def _keys(document: object, path: str) -> list[str]:
    node = document
    for part in path.split(".") if path else []:
        many = part.endswith("[]")
        node = node[part.removesuffix("[]")]  # type: ignore[index]
        if many:
            assert node, f"{path}: the seeded store should fill it"
            node = node[0]  # type: ignore[index]
    return list(node)  # type: ignore[call-overload]


@pytest.mark.parametrize(("kind", "expected"), [("retro", RETRO_KEYS), ("daily", DAILY_KEYS)])
def test_json_keys_are_a_stable_schema(seeded, kind, expected):
    store = seeded.world.store
    report = retro_report(store, DAY, DAY, NOW) if kind == "retro" else \
        daily_report(store, DAY, NOW)
    document = json.loads(html.to_json(report))
    assert (document["report"], document["schema"]) == (kind, 1)
    for path, keys in expected.items():
        assert _keys(document, path) == keys, path
    # A quiet day has the same shape: every key present, lists merely empty.
    quiet = retro_report(store, date(2023, 1, 2), date(2023, 1, 2), NOW) if kind == "retro" \
        else daily_report(store, date(2023, 1, 2), NOW)
    assert list(json.loads(html.to_json(quiet))) == expected[""]
    assert list(quiet["summary"]) == expected["summary"]


# -- the command, as a real process ------------------------------------------------------


def test_patrol_report_as_a_process_writes_json_and_html(tmp_path):
    from patrol.collector.store import open_store

    url = f"sqlite:///{tmp_path}/patrol.db"
    store = open_store(url)
    try:
        seed(World(store))
    finally:
        store.close()
    out = tmp_path / "retro.json"
    done = subprocess.run(
        [sys.executable, "-m", "patrol.cli", "report", "retro", "--from", "2023-10-27",
         "--to", "2023-10-27", "--format", "json", "--out", str(out), "--store", url],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == f"patrol: wrote {out}"
    report = json.loads(out.read_text())
    assert report["summary"]["mtta_seconds"] == 1200.0
    assert report["summary"]["mttr_seconds"] == pytest.approx(2628.0)
    # Judged now (years after 2023): I, still open, has missed both of its deadlines.
    assert report["sla"]["total"]["respond"] == {"met": 4, "breached": 3, "pending": 0,
                                                 "compliance": pytest.approx(4 / 7)}
    done = subprocess.run(
        [sys.executable, "-m", "patrol.cli", "report", "daily", "--date", "2023-10-27",
         "--store", url], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("<!doctype html>")
    assert "<h1>Inspection report: 2023-10-27</h1>" in done.stdout


def test_patrol_report_says_what_is_wrong(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "patrol.cli", "report", "retro", "--from", "2023-10-21"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    assert done.stderr.startswith("patrol: no store to read: pass --store URL")


def test_a_bad_date_is_named(tmp_path, capsys):
    from patrol.cli import main

    assert main(["report", "retro", "--from", "27/10/2023", "--store",
                 f"sqlite:///{tmp_path}/p.db"]) == 2
    assert capsys.readouterr().err == ("patrol: '27/10/2023' is not a date; write it as "
                                       "YYYY-MM-DD, e.g. 2023-10-27\n")
    assert main(["report", "retro", "--from", "2023-10-27", "--to", "2023-10-20", "--store",
                 f"sqlite:///{tmp_path}/p.db"]) == 2
    assert "the period ends (2023-10-20) before it starts (2023-10-27)" in \
        capsys.readouterr().err
    assert main(["report", "daily", "--store", f"sqlite:///{tmp_path}/typo.db"]) == 2
    assert capsys.readouterr().err == (f"patrol: no store at {tmp_path}/typo.db (from "
                                       "--store); check the path\n")
    assert not (tmp_path / "typo.db").exists()


# -- which store ------------------------------------------------------------------------


def _collector_yaml(path: Path, store: str) -> Path:
    path.write_text(f"collector:\n  store: {store}\npolicy:\n  sla:\n    near_ratio: 0.5\n")
    return path


def test_the_store_comes_from_store_then_config_then_patrol_up(tmp_path):
    config = _collector_yaml(tmp_path / "c.yaml", "sqlite:///from-config.db")
    assert locate("sqlite:///given.db", None, tmp_path).store == "sqlite:///given.db"
    found = locate(None, str(config), tmp_path)
    assert (found.store, found.policy.sla.near_ratio) == ("sqlite:///from-config.db", 0.5)
    assert locate("postgresql://x/y", str(config), tmp_path).policy.sla.near_ratio == 0.5
    with pytest.raises(NoStore, match="pass --store URL"):
        locate(None, None, tmp_path)
    # patrol up keeps state/up.json; an older one names no config: up's default then
    (tmp_path / "state").mkdir()
    (tmp_path / "configs").mkdir()
    _collector_yaml(tmp_path / "configs" / "collector.yaml", "sqlite:///state/up-default.db")
    (tmp_path / "state" / "up.json").write_text(json.dumps({"url": "http://127.0.0.1:9732"}))
    assert locate(None, None, tmp_path).store == "sqlite:///state/up-default.db"
    chosen = _collector_yaml(tmp_path / "mine.yaml", "sqlite:///state/mine.db")
    (tmp_path / "state" / "up.json").write_text(json.dumps({"collector_config": str(chosen)}))
    assert locate(None, None, tmp_path).store == "sqlite:///state/mine.db"


def test_a_quiet_period_says_so_instead_of_drawing_empty_charts(seeded):
    page = html.render(retro_report(seeded.world.store, date(2023, 1, 2), date(2023, 1, 8),
                                    NOW))
    assert resources(page).images == []
    assert '<span class="n">0</span>tickets opened' in page
    for text in ("No deadline was missed.", "Nothing occurred more than once.",
                 "No ticket flapped.", "No ticket resolved by itself"):
        assert text in page
