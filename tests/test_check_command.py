"""``patrol check``: one run of every check, a table, and the worst status as exit code."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from patrol.cli import main as cli


@pytest.fixture
def config(tmp_path: Path) -> Path:
    fresh = tmp_path / "fresh"
    fresh.write_text("x")
    path = tmp_path / "agent.yaml"
    path.write_text(f"""
agent:
  hostname: app-01
checks:
  - name: fresh-file
    type: file
    path: {fresh}
  - name: missing-backup
    type: file
    path: {tmp_path}/backup.dump
  - name: slow-plugin
    type: nagios
    command: [{sys.executable}, -c, "import time; time.sleep(1.2); print('OK - slept')"]
  - name: db-password-plugin
    type: nagios
    command: [{sys.executable}, -c, "print('WARNING - conn postgresql://u:hunter22@db/x'); exit(1)"]
""")
    return path


def test_table_and_exit_code_is_the_worst_status(config: Path, capsys) -> None:
    assert cli(["check", "--config", str(config)]) == 2
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["STATUS", "NAME", "DURATION", "SUMMARY"]
    rows = {line.split()[1]: line for line in lines[1:5]}
    assert rows["fresh-file"].startswith("OK ")
    assert rows["missing-backup"].startswith("CRITICAL ")
    assert f"file does not exist: {config.parent}/backup.dump on app-01" in rows["missing-backup"]
    assert rows["slow-plugin"].startswith("OK ") and "OK - slept on app-01" in rows["slow-plugin"]
    assert lines[-1] == "2 ok, 1 warning, 1 critical; worst: CRITICAL"
    # While the slow plugin ran, progress said what it was waiting for.
    assert "waiting for slow-plugin" in err


def test_only_runs_the_named_checks(config: Path, capsys) -> None:
    assert cli(["check", "--config", str(config), "--only", "fresh-file"]) == 0
    out = capsys.readouterr().out
    assert "fresh-file" in out and "missing-backup" not in out
    assert out.splitlines()[-1] == "1 ok; worst: OK"


def test_only_with_an_unknown_name_says_so(config: Path, capsys) -> None:
    assert cli(["check", "--config", str(config), "--only", "fresh-fil"]) == 3
    assert capsys.readouterr().err == (
        f"patrol: no check named 'fresh-fil' in {config}; did you mean 'fresh-file'?\n")


def test_json_has_measurements_and_redacted_breach_diagnostics(config: Path, capsys) -> None:
    assert cli(["check", "--config", str(config), "--json", "--only", "fresh-file",
                "missing-backup", "db-password-plugin"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["host"] == "app-01" and report["worst"] == "CRITICAL"
    by_name = {c["name"]: c for c in report["checks"]}
    fresh = by_name["fresh-file"]
    assert fresh["status"] == "OK" and fresh["breach_diagnostics"] == {}
    assert {m["name"] for m in fresh["measurements"]} >= {"age_seconds", "size_bytes"}
    missing = by_name["missing-backup"]["breach_diagnostics"]
    assert missing["host"]["hostname"] and "recent_changes" in missing
    plugin = by_name["db-password-plugin"]
    assert plugin["status"] == "WARNING"
    assert "hunter22" not in json.dumps(plugin["breach_diagnostics"])


def test_invalid_config_stops_with_every_problem(tmp_path: Path, capsys) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("checks:\n  - name: a\n    type: cpu\n    warnng: 1\n")
    with pytest.raises(SystemExit) as info:
        cli(["check", "--config", str(path)])
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{path}:4: check 'a', option 'warnng': unknown option; did you mean 'warning'?",
        f"patrol: {path} has 1 problem(s); nothing was started",
    ]


def test_a_broken_check_outranks_one_that_could_not_look(tmp_path: Path, capsys) -> None:
    """CRITICAL beside UNKNOWN exits 2 and says CRITICAL; a plugin's own UNKNOWN (exit 3)
    stays UNKNOWN, and alone it still exits 3, as Nagios plugins do."""
    path = tmp_path / "agent.yaml"
    path.write_text(f"""
agent:
  hostname: app-01
checks:
  - name: missing-backup
    type: file
    path: {tmp_path}/backup.dump
  - name: unsure-plugin
    type: nagios
    command: [{sys.executable}, -c, "print('UNKNOWN - cannot read /mnt/nfs'); exit(3)"]
""")
    assert cli(["check", "--config", str(path)]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:3]] == ["CRITICAL", "UNKNOWN"]
    assert lines[-1] == "1 critical, 1 unknown; worst: CRITICAL"
    assert cli(["check", "--config", str(path), "--only", "unsure-plugin"]) == 3
    assert capsys.readouterr().out.splitlines()[-1] == "1 unknown; worst: UNKNOWN"
