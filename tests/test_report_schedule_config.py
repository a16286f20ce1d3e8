"""The collector config's ``reports:`` section (issue 11, item 3): every mistake at
FILE:LINE, word for word, through ``patrol validate``; a good section loads with its
archive folders relative to the config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from patrol.cli import main as cli
from patrol.collector.config import load_collector_config

HEAD = "collector:\n  listen: 127.0.0.1:9732\n"


def test_schedule_mistakes_are_reported_at_their_lines(tmp_path: Path, capsys) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text(HEAD +
                    "reports:\n"
                    "  timezone: Europe/Berlinn\n"
                    "  smtp: {host: mail.example.test, from: patrol@example.test}\n"
                    "  daily:\n"
                    "    cron: '0 25 * * *'\n"
                    "    recipients: []\n"
                    "  retro:\n"
                    "    cron: '0 8 * * 1'\n"
                    "    recipents: [lead@example.test]\n"
                    "    period: 36h\n")
    assert cli(["validate", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{path}:4: reports, option 'timezone': unknown time zone 'Europe/Berlinn'; use an "
        "IANA name such as 'UTC' or 'Europe/Berlin'",
        f"{path}:7: reports, option 'daily.cron': '0 25 * * *' is not a cron schedule (five "
        "fields, e.g. '0 7 * * *'): Error validating expression '25': the last value (25) "
        "is higher than the maximum value (23); fix the value",
        f"{path}:8: reports, option 'daily.recipients': a scheduled report is mailed; give "
        "at least one address",
        f"{path}:9: reports, option 'retro.recipients': required option is missing; add it",
        f"{path}:11: reports, option 'retro.recipents': unknown option; did you mean "
        "'recipients'?",
        f"{path}:12: reports, option 'retro.period': a period is whole days, e.g. 7d; fix "
        "the value",
    ]


def test_a_schedule_needs_smtp_an_archive_and_real_addresses(tmp_path: Path,
                                                             capsys) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text(HEAD +
                    "reports:\n"
                    "  daily:\n"
                    "    cron: '0 7 * * *'\n"
                    "    recipients: [ops@example.test]\n"
                    "    period: 2d\n"
                    "  retro: {cron: '0 8 * * mon', recipients: [lead], archive: retros}\n")
    assert cli(["validate", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{path}:8: reports, option 'retro.recipients': not an email address: lead; fix "
        "the value",
    ]
    path.write_text(path.read_text().replace("[lead]", "[lead@example.test]"))
    assert cli(["validate", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{path}:3: reports: scheduled reports are mailed; add an smtp block (host, from, "
        "...: the email helpdesk's keys)",
        f"{path}:4: reports, option 'daily': a scheduled report is kept in an archive "
        "folder; set reports.archive or reports.daily.archive",
        f"{path}:7: reports, option 'daily.period': a daily report covers one day; period "
        "belongs to retro",
    ]


def test_smtp_takes_the_email_helpdesks_keys_but_not_its_ticket_ones(tmp_path: Path,
                                                                     capsys) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text(HEAD +
                    "reports:\n"
                    "  smtp:\n"
                    "    host: mail.example.test\n"
                    "    from: patrol@example.test\n"
                    "    ssl: true\n"
                    "    starttls: true\n"
                    "    to: [ops@example.test]\n")
    assert cli(["validate", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{path}:4: reports, option 'smtp': ssl (implicit TLS, port 465) and starttls "
        "(upgrade on port 587) exclude each other; set only one",
    ]
    path.write_text(path.read_text().replace("    starttls: true\n", ""))
    assert cli(["validate", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{path}:4: reports, option 'smtp': to: not an SMTP setting; recipients go in "
        "reports.daily.recipients / reports.retro.recipients",
    ]


def test_a_good_section_loads_with_archives_next_to_the_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATROL_TEST_SMTP_PASSWORD", "s3cret")
    path = tmp_path / "collector.yaml"
    path.write_text(HEAD +
                    "reports:\n"
                    "  timezone: Europe/Berlin\n"
                    "  archive: reports\n"
                    "  smtp: {host: mail.example.test, from: patrol@example.test,\n"
                    "         username: patrol, password: '${PATROL_TEST_SMTP_PASSWORD}'}\n"
                    "  daily: {cron: '0 7 * * *', recipients: [ops@example.test]}\n"
                    "  retro: {cron: '0 8 * * 1', period: 14d, recipients: [lead@x.test],\n"
                    "          archive: /srv/retros}\n")
    reports = load_collector_config(path).reports
    assert reports.archive_of("daily") == tmp_path / "reports"
    assert reports.archive_of("retro") == Path("/srv/retros")
    assert reports.scheduled()["retro"].days == 14
    assert reports.smtp is not None and reports.smtp.effective_port == 587
    assert reports.smtp.password is not None
    assert reports.smtp.password.get_secret_value() == "s3cret"
    assert reports.timezone == "Europe/Berlin"
