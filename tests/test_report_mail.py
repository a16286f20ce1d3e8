"""Mailed and scheduled reports (issue 11, item 3): the report received by a real SMTP
server (aiosmtpd, STARTTLS and login), its charts as cid: PNG parts, its text summary
checked against the seeded story (tests/report_seed.py); the watchdog's ``reports``
duty on a fixed clock archiving and mailing each report exactly once, also when the
mail server was down at first. Both stores."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from patrol.collector.reports import html, mail
from patrol.collector.reports.make import daily_report, retro_report
from patrol.collector.reports.schedule import ReportsSettings, due
from patrol.collector.watchdog.leader import Leadership
from patrol.collector.watchdog.reports import ScheduledReports
from patrol.ticketing_bridge.protocol import TemporaryError
from tests import smtp_server
from tests.conftest import free_port
from tests.report_seed import NOW, Seeded, seeded_story
from tests.smtp_server import SmtpServer, start_smtp
from tests.test_report_output import Resources

ROOT = Path(__file__).resolve().parent.parent
DAY = date(2023, 10, 27)
SENDER = "patrol@example.test"


@pytest.fixture(params=["sqlite", "postgres"], name="seeded")
def seeded_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Seeded]:
    yield from seeded_story(request.param, request, tmp_path)


def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The seeded store's URL (as tests/collector_fixtures.py's ``store_for`` made it)."""
    if "sqlite" in request.node.callspec.id:
        return f"sqlite:///{tmp_path}/patrol.db"
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture(name="smtp")
def smtp_fixture(tmp_path: Path) -> Iterator[SmtpServer]:
    (tmp_path / "smtp").mkdir()
    server = start_smtp(tmp_path / "smtp")
    yield server
    server.stop()


def smtp_block(port: int, ca_file: Path) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": port, "from": SENDER, "username": "patrol",
            "password": "s3cret", "ca_file": str(ca_file), "subject_prefix": "[ops] "}


def settings(port: int, ca_file: Path, folder: Path, **schedules: Any) -> ReportsSettings:
    return ReportsSettings.model_validate({"archive": folder, "smtp": smtp_block(port, ca_file),
                                           **schedules})


def parts(msg: EmailMessage) -> dict[str, Any]:
    """The message's structure and contents, as a mail client would find them."""
    assert msg.get_content_type() == "multipart/alternative"
    text, related = msg.get_payload()  # type: ignore[misc]
    assert text.get_content_type() == "text/plain"
    if related.get_content_type() == "text/html":  # a report without charts
        page, images = related, []
    else:
        assert related.get_content_type() == "multipart/related"
        page, *images = related.get_payload()
    assert page.get_content_type() == "text/html"
    return {"text": text.get_content().replace("\r\n", "\n"), "html": page.get_content(),
            "images": {i["Content-ID"].strip("<>"): i for i in images}}


def assert_mailable(found: dict[str, Any]) -> None:
    """Every image is a cid: reference to a PNG part of the message; nothing else is
    referenced (no data: URI, nothing fetched), and every part is used."""
    page = Resources()
    page.feed(found["html"])
    assert page.images and all(src.startswith("cid:") for src in page.images)
    assert {src.removeprefix("cid:") for src in page.images} == set(found["images"])
    for image in found["images"].values():
        assert image.get_content_type() == "image/png"
        assert image.get_content().startswith(b"\x89PNG\r\n\x1a\n")
        assert image.get_content_disposition() == "inline"
    assert not [u for u in page.urls if not u.startswith(("cid:", "#"))], page.urls
    assert "data:" not in found["html"] and "url(" not in "".join(page.styles)


def test_a_mailed_daily_report_has_its_charts_as_cid_parts_and_the_seeded_figures(
        seeded: Seeded, smtp: SmtpServer, tmp_path: Path) -> None:
    from patrol.collector.reports import mail

    report = daily_report(seeded.world.store, DAY, NOW)
    config = settings(smtp.port, smtp.ca_file, tmp_path)
    assert config.smtp is not None
    msg = mail.message(html.render(report), report, SENDER, ["ops@example.test"], "[ops] ")
    mail.send(config.smtp, msg, ["ops@example.test"])

    [received] = smtp.messages
    assert received.tls and received.login == "patrol"
    assert received.rcpt_tos == ["ops@example.test"]
    got = received.message
    assert got["Subject"] == "[ops] Daily inspection report 2023-10-27"
    found = parts(got)
    assert_mailable(found)
    assert len(found["images"]) == 3  # status, tickets per hour, open by priority
    # The seeded day, as tests/test_report_figures.py computes it by hand.
    assert found["text"].splitlines()[2:7] == [
        "Hosts: 8 (8 inspected, 1 not reporting)",
        "Checks: 9 (9 run today): OK 7, WARNING 1, CRITICAL 1, UNKNOWN 0",
        "Tickets: 7 opened, 1 reopened, 5 resolved, 2 open",
        "SLAs at risk: 1",
        ""]
    assert f"- {seeded.number('D')} P1 " in found["text"]  # the top risk
    assert "Inspection report: 2023-10-27" in found["html"]
    assert seeded.number("D") in found["html"]


def test_a_mailed_retrospective_reads_its_headline_figures(
        seeded: Seeded, smtp: SmtpServer, tmp_path: Path) -> None:
    from patrol.collector.reports import mail

    report = retro_report(seeded.world.store, DAY, DAY, NOW)
    config = settings(smtp.port, smtp.ca_file, tmp_path)
    msg = mail.message(html.render(report), report, SENDER, ["lead@example.test"])
    mail.send(config.smtp, msg, ["lead@example.test"])
    found = parts(smtp.messages[0].message)
    assert_mailable(found)
    assert smtp.messages[0].message["Subject"] == "Retrospective 2023-10-27 to 2023-10-27"
    # 7 tickets; MTTA 20 min; respond SLA 4 of 6, resolve 5 of 6 (test_report_figures).
    assert "Tickets: 7\nMTTA: 20m" in found["text"]
    assert "SLA met: respond 67%, resolve 83%" in found["text"]


# -- the schedule ----------------------------------------------------------------------

def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("cron", "zone", "now", "expected"), [
    ("0 7 * * *", "UTC", "2026-12-05T07:00:00", ("daily", "2026-12-04", "2026-12-04")),
    ("0 7 * * *", "UTC", "2026-12-05T06:59:59", ("daily", "2026-12-03", "2026-12-03")),
    # 07:00 in Berlin is 06:00 UTC in winter
    ("0 7 * * *", "Europe/Berlin", "2026-12-05T06:00:00",
     ("daily", "2026-12-04", "2026-12-04")),
    ("0 8 * * 1", "UTC", "2026-12-07T09:00:00", ("retro", "2026-11-30", "2026-12-06")),
], ids=["at-the-firing", "just-before", "in-berlin", "weekly-retro"])
def test_a_firing_owes_the_days_that_ended_before_it(cron: str, zone: str, now: str,
                                                     expected: tuple[str, str, str]) -> None:
    kind = expected[0]
    config = ReportsSettings.model_validate({kind: {"cron": cron, "recipients": ["a@b.c"]},
                                             "timezone": zone, "archive": "/tmp"})
    owed = due(kind, config.scheduled()[kind], zone, at(now))
    assert owed is not None
    assert (owed.kind, str(owed.first), str(owed.last)) == expected


def test_a_firing_missed_by_more_than_a_day_is_not_made() -> None:
    config = ReportsSettings.model_validate({"retro": {"cron": "0 8 * * 1",
                                                       "recipients": ["a@b.c"]}})
    schedule = config.scheduled()["retro"]
    assert due("retro", schedule, "UTC", at("2026-12-08T07:59:00")) is not None
    assert due("retro", schedule, "UTC", at("2026-12-08T08:01:00")) is None


class Follower:
    def lead(self) -> bool:
        return False

    def close(self) -> None:
        pass


def test_the_duty_archives_and_mails_each_report_once(seeded: Seeded, smtp: SmtpServer,
                                                      tmp_path: Path) -> None:
    """At 13:30 (NOW) a daily cron of 13:30 owes the day before: 2023-10-26."""
    folder = tmp_path / "reports"
    config = settings(smtp.port, smtp.ca_file, folder,
                      daily={"cron": "30 13 * * *", "recipients": ["ops@example.test"]})
    watchdog = seeded.world.watchdog
    watchdog.reports = ScheduledReports(config, seeded.world.engine)
    leadership: Leadership = Follower()
    watchdog.leadership, leader = leadership, watchdog.leadership
    watchdog.run_once(NOW)
    assert smtp.messages == [] and not folder.exists()  # a follower mails nothing
    watchdog.leadership = leader

    assert watchdog.run_once(NOW)["reports_mailed"] == 1
    assert sorted(p.name for p in folder.iterdir()) == [
        "daily-2023-10-26.html", "daily-2023-10-26.json"]
    for later in (NOW + 10, NOW + 3600):
        assert watchdog.run_once(later)["reports_mailed"] == 0
    [received] = smtp.messages
    found = parts(received.message)
    assert_mailable(found)
    assert received.message["Subject"] == "[ops] Daily inspection report 2023-10-26"
    # J opened and resolved that day; nothing open at its end (test_report_figures).
    assert "Tickets: 1 opened, 0 reopened, 1 resolved, 0 open" in found["text"]
    marker = seeded.world.store.report_mailing("daily-2023-10-26")
    assert marker is not None and marker["message_id"] == received.message["Message-ID"]
    assert marker["recipients"] == ["ops@example.test"]
    # The archived file is the self-contained report (data: URIs), not the mail's HTML.
    kept = (folder / "daily-2023-10-26.html").read_text()
    assert "data:image/png;base64," in kept and "cid:" not in kept


def test_a_report_the_mail_server_refused_is_mailed_once_when_it_is_back(
        seeded: Seeded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()  # nothing listens here yet
    folder = tmp_path / "reports"
    config = settings(port, tmp_path / "smtp" / "ca.pem", folder,
                      daily={"cron": "30 13 * * *", "recipients": ["ops@example.test"]},
                      retro={"cron": "30 13 * * *", "period": "1d",
                             "recipients": ["lead@example.test"]})
    watchdog = seeded.world.watchdog
    watchdog.reports = ScheduledReports(config, seeded.world.engine)
    counts = watchdog.run_once(NOW)
    assert counts["reports_mailed"] == 0 and watchdog.health.errors["reports"] == 1
    assert "reports" not in watchdog.health.last_success
    # Made and kept, not marked as mailed.
    assert sorted(p.name for p in folder.iterdir()) == [
        "daily-2023-10-26.html", "daily-2023-10-26.json",
        "retro-2023-10-26-2023-10-26.html", "retro-2023-10-26-2023-10-26.json"]

    monkeypatch.setattr(smtp_server, "free_port", lambda: port)
    (tmp_path / "smtp").mkdir()
    server = start_smtp(tmp_path / "smtp")  # back, on the same port, with the same CA
    try:
        watchdog.reports = ScheduledReports(settings(
            port, server.ca_file, folder, **{k: s.model_dump() for k, s in
                                              config.scheduled().items()}),
            seeded.world.engine)
        assert watchdog.run_once(NOW + 10)["reports_mailed"] == 2
        assert watchdog.run_once(NOW + 20)["reports_mailed"] == 0
        assert sorted(m.message["Subject"] for m in server.messages) == [
            "[ops] Daily inspection report 2023-10-26",
            "[ops] Retrospective 2023-10-26 to 2023-10-26"]
        assert watchdog.health.last_success["reports"] == NOW + 20
    finally:
        server.stop()


def test_a_failing_mail_does_not_stop_the_other_schedule(seeded: Seeded,
                                                         tmp_path: Path) -> None:
    sent: list[str] = []

    def send(smtp: Any, msg: EmailMessage, recipients: list[str]) -> None:
        if recipients == ["ops@example.test"]:
            raise TemporaryError("450 try later")
        sent.append(msg["Subject"])

    config = settings(1, tmp_path / "ca.pem", tmp_path / "reports",
                      daily={"cron": "30 13 * * *", "recipients": ["ops@example.test"]},
                      retro={"cron": "30 13 * * *", "recipients": ["lead@example.test"]})
    duty = ScheduledReports(config, seeded.world.engine, send)
    with pytest.raises(TemporaryError):
        duty.run(NOW)
    assert sent == ["[ops] Retrospective 2023-10-20 to 2023-10-26"]



def test_a_report_mailed_before_the_upgrade_is_not_mailed_again(seeded: Seeded,
                                                                tmp_path: Path) -> None:
    """Patrol used to mark a mailed report with a ``.sent`` file in the archive; after
    the upgrade that mark is carried into the store instead of mailing the report again."""
    sent: list[str] = []
    folder = tmp_path / "reports"
    config = settings(1, tmp_path / "ca.pem", folder,
                      daily={"cron": "30 13 * * *", "recipients": ["ops@example.test"]})
    duty = ScheduledReports(config, seeded.world.engine,
                            lambda smtp, msg, to: sent.append(msg["Subject"]))
    folder.mkdir()
    (folder / "daily-2023-10-26.sent").write_text(
        '{"at": 1698413400.0, "recipients": ["ops@example.test"], "message_id": "<m@x>"}\n')
    assert duty.run(NOW) == 0 and duty.run(NOW + 60) == 0
    assert sent == []
    assert seeded.world.store.report_mailing("daily-2023-10-26") == {
        "at": 1698413400.0, "recipients": ["ops@example.test"], "message_id": "<m@x>"}

# -- patrol report --mail ----------------------------------------------------------------

def test_patrol_report_mail_sends_through_the_configs_smtp(
        seeded: Seeded, smtp: SmtpServer, tmp_path: Path,
        request: pytest.FixtureRequest) -> None:
    config = tmp_path / "collector.yaml"
    config.write_text(
        "collector:\n"
        f"  store: '{store_url(request, tmp_path)}'\n"
        "reports:\n"
        "  smtp:\n"
        + "".join(f"    {k}: '{v}'\n" for k, v in smtp_block(smtp.port, smtp.ca_file).items())
        + "  archive: archive\n"
        "  daily: {cron: '0 7 * * *', recipients: [ops@example.test, boss@example.test]}\n")
    result = subprocess.run(
        [sys.executable, "-m", "patrol.cli", "report", "daily", "--date", "2023-10-27",
         "--config", str(config), "--mail"], cwd=ROOT, capture_output=True, text=True,
        timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # mailed, not poured onto the terminal
    assert "mailed the report to ops@example.test, boss@example.test" in result.stderr
    [received] = smtp.messages
    assert received.rcpt_tos == ["ops@example.test", "boss@example.test"]
    found = parts(received.message)
    assert_mailable(found)
    assert "Tickets: 7 opened, 1 reopened, 5 resolved" in found["text"]


def test_patrol_report_mail_without_smtp_says_what_to_add(
        seeded: Seeded, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "patrol.cli", "report", "daily", "--store",
         store_url(request, tmp_path), "--mail"], cwd=ROOT, capture_output=True, text=True,
        timeout=120)
    assert result.returncode == 2
    assert result.stderr == ("patrol: --mail needs the collector config's reports.smtp "
                             "block (the email helpdesk's keys: host, from, ...); pass "
                             "--config FILE\n")


# -- the Reports page lists the archive ---------------------------------------------------

def test_the_reports_page_lists_and_serves_archived_reports(seeded: Seeded, smtp: SmtpServer,
                                                            tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from tests.websetup import OPERATOR_TOKEN, make_app

    folder = tmp_path / "reports"
    config = settings(smtp.port, smtp.ca_file, folder,
                      daily={"cron": "30 13 * * *", "recipients": ["ops@example.test"]},
                      retro={"cron": "30 13 * * *", "period": "2d",
                             "recipients": ["lead@example.test"]})
    def send(smtp: Any, msg: EmailMessage, recipients: list[str]) -> None:
        if recipients == ["lead@example.test"]:  # the retrospective's mail fails
            raise TemporaryError("450 try later")
        mail.send(smtp, msg, recipients)

    with pytest.raises(TemporaryError):
        ScheduledReports(config, seeded.world.engine, send).run(NOW)

    app = make_app(seeded.world.store, NOW)
    app.state.reports = config
    client = TestClient(app)
    auth = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    page = client.get("/reports", headers=auth).text
    assert ('<a href="/reports/archive/retro-2023-10-25-2023-10-26.html">2023-10-25 to '
            '2023-10-26</a>') in page
    assert '<a href="/reports/archive/daily-2023-10-26.html">2023-10-26</a>' in page
    rows = page.split("<tbody>")[1].split("</tbody>")[0]
    # Newest last day first; the mail column says when each went out.
    retro, daily = rows.split("</tr>")[:2]
    assert "retro-2023-10-25" in retro and "<td>not yet</td>" in retro
    assert "daily-2023-10-26" in daily and "<td>2023-10-27T13:30:00Z</td>" in daily

    kept = client.get("/reports/archive/daily-2023-10-26.html", headers=auth)
    assert kept.status_code == 200 and "<h1>Inspection report: 2023-10-26</h1>" in kept.text
    assert "img-src data:" in kept.headers["content-security-policy"]
    for name in ("daily-2023-10-26.json", "daily-2023-10-25.html", "..%2Fcollector.yaml"):
        assert client.get(f"/reports/archive/{name}", headers=auth).status_code == 404
    assert client.get("/reports/archive/daily-2023-10-26.html").status_code in (401, 303)


def test_without_an_archive_the_reports_page_says_how_to_get_one(seeded: Seeded) -> None:
    from fastapi.testclient import TestClient

    from tests.websetup import OPERATOR_TOKEN, make_app

    page = TestClient(make_app(seeded.world.store, NOW)).get(
        "/reports", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}).text
    assert "No archived reports. Schedule them in the collector config's" in page


# -- a real collector process --------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_collector_mails_its_scheduled_report_once_the_server_is_back(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``patrol collector`` with an every-minute daily schedule and its mail server down:
    the report is archived at once, mailed when the server answers, and only once."""
    from datetime import timedelta

    from tests.procs import CollectorProcess

    port = free_port()
    folder = tmp_path / "archive"
    store = str(request.getfixturevalue("pg_schema_url")) if kind == "postgres" else None
    collector = CollectorProcess(
        tmp_path / "collector", store=store, settings=("watchdog_interval: 1s",),
        extra_yaml=("reports:\n"
                    f"  archive: {folder}\n"
                    f"  smtp: {{host: 127.0.0.1, port: {port}, starttls: false,\n"
                    f"         from: {SENDER}, timeout: 5}}\n"
                    "  daily: {cron: '* * * * *', recipients: [ops@example.test]}\n"))
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    name = f"daily-{yesterday}"
    collector.start()
    server = None
    try:
        collector.wait_until(lambda: (folder / f"{name}.html").is_file(), 30,
                             "the archived report")
        time.sleep(2.5)  # passes that find no mail server
        assert mailed_mark(collector.store, name) is None
        assert "watchdog duty reports failed" in collector.output()

        monkeypatch.setattr(smtp_server, "free_port", lambda: port)
        (tmp_path / "smtp").mkdir()
        server = start_smtp(tmp_path / "smtp", tls="none")
        received = server
        collector.wait_until(lambda: received.messages, 30, "the mailed report")
        time.sleep(3.5)  # more passes: nothing more is sent
        [message] = server.messages
        assert message.message["Subject"] == f"Daily inspection report {yesterday}"
        found = parts(message.message)  # an empty store: no charts, but the same shape
        assert "data:" not in found["html"] and "Hosts: 0 (" in found["text"]
        marker = mailed_mark(collector.store, name)
        assert marker is not None and marker["message_id"] == message.message["Message-ID"]
        assert "watchdog duty reports works again" in collector.output()
    finally:
        collector.stop()
        if server is not None:
            server.stop()


def mailed_mark(store_url: str, name: str) -> dict[str, Any] | None:
    """The store's record that report ``name`` was mailed, read as a replica would."""
    from patrol.collector.store import open_store

    store = open_store(store_url)
    try:
        return store.report_mailing(name)
    finally:
        store.close()


def collector_with_reports(workdir: Path, store: str, folder: Path, smtp_port: int) -> Any:
    from tests.procs import CollectorProcess

    return CollectorProcess(
        workdir, store=store, settings=("watchdog_interval: 1s",),
        extra_yaml=("reports:\n"
                    f"  archive: {folder}\n"
                    f"  smtp: {{host: 127.0.0.1, port: {smtp_port}, starttls: false,\n"
                    f"         from: {SENDER}, timeout: 5}}\n"
                    "  daily: {cron: '* * * * *', recipients: [ops@example.test]}\n"))


@pytest.mark.slow
def test_a_replica_that_takes_over_on_another_machine_does_not_mail_the_report_again(
        tmp_path: Path, request: pytest.FixtureRequest,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two replicas of one collector on PostgreSQL, each with its own archive folder (as
    on two machines): the first leader mails yesterday's report; when it stops, the
    other leads, finds the report missing from its own folder and makes it there, but
    the mail server still receives it once."""
    from datetime import timedelta

    store = str(request.getfixturevalue("pg_schema_url"))
    port = free_port()
    monkeypatch.setattr(smtp_server, "free_port", lambda: port)
    (tmp_path / "smtp").mkdir()
    server = start_smtp(tmp_path / "smtp", tls="none")
    name = f"daily-{datetime.now(UTC).date() - timedelta(days=1)}"
    first = collector_with_reports(tmp_path / "a", store, tmp_path / "a-archive", port)
    second = collector_with_reports(tmp_path / "b", store, tmp_path / "b-archive", port)
    try:
        first.start()
        first.wait_until(lambda: server.messages, 30, "the first leader's mail")
        first.stop()
        second.start()
        second.wait_until(lambda: (tmp_path / "b-archive" / f"{name}.html").is_file(), 30,
                          "the report in the new leader's own folder")
        time.sleep(3.5)  # more passes of the new leader
        [message] = server.messages
        marker = mailed_mark(store, name)
        assert marker is not None and marker["message_id"] == message.message["Message-ID"]
        assert "watchdog duty reports failed" not in second.output()
    finally:
        first.stop()
        second.stop()
        server.stop()
