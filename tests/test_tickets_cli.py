"""``patrol tickets``: the ticket API from a terminal, against a real collector."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patrol.cli import main as cli
from patrol.collector.config import CollectorConfig, CollectorSettings
from patrol.collector.service import CollectorService
from patrol.contract.wire import Event
from tests.conftest import free_port
from tests.test_wire import EVENT

OPERATOR = "operator-token-0123456789ab"


@pytest.fixture(params=["sqlite", "postgres"])
def collector(request: pytest.FixtureRequest, tmp_path: Path):
    store = (f"sqlite:///{tmp_path}/c.db" if request.param == "sqlite"
             else request.getfixturevalue("pg_schema_url"))
    settings = CollectorSettings(listen=f"127.0.0.1:{free_port()}", store=store,
                                 agent_tokens=["agent-token-0123456789abcd"],
                                 operator_tokens=[OPERATOR])
    service = CollectorService(CollectorConfig(settings, "test"))
    service.start()
    service.engine.ingest([Event.model_validate(EVENT)])
    yield service
    service.stop()


def test_list_show_ack_and_a_refused_close(collector: CollectorService, capsys) -> None:
    base = ["tickets", "--url", collector.url, "--token", OPERATOR]
    number = collector.store.list_tickets()[0].number
    assert cli([*base, "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NUMBER", "PRI", "STATUS", "HOST", "RESPOND", "BY", "TITLE"]
    assert lines[1].split()[:4] == [number, "P1", "new", "db-01"]
    assert lines[1].endswith("/var is 96.1% full on db-01 (critical at 95%)")

    assert cli([*base, "show", number]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"{number} P1 new: /var is 96.1% full on db-01")
    assert "## Problem" in shown and "opened" in shown

    assert cli([*base, "ack", number, "-m", "looking", "--author", "alice"]) == 0
    assert capsys.readouterr().out == f"{number}: in_progress\n"
    with pytest.raises(SystemExit) as refused:
        cli([*base, "close", number])
    assert str(refused.value) == (
        "patrol: 409: disk still reports CRITICAL on db-01; close it after the check "
        "recovers, or pass force=true to record a won't-fix decision")
    assert cli([*base, "close", number, "--force", "-m", "disk replaced next week"]) == 0
    assert capsys.readouterr().out == f"{number}: closed\n"


def test_finds_patrol_up_collector_and_token_by_itself(collector: CollectorService,
                                                       tmp_path: Path, monkeypatch,
                                                       capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PATROL_OPERATOR_TOKEN", raising=False)
    monkeypatch.delenv("PATROL_COLLECTOR_URL", raising=False)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "up.json").write_text(json.dumps(
        {"url": collector.url, "operator_token": OPERATOR}))
    assert cli(["tickets", "list"]) == 0
    assert "db-01" in capsys.readouterr().out


@pytest.mark.parametrize("collector", ["sqlite"], indirect=True)
def test_finds_patrol_up_state_from_a_subfolder_and_by_environment(
        collector: CollectorService, tmp_path: Path, monkeypatch, capsys) -> None:
    """``state/up.json`` used to be looked up only in the working directory."""
    monkeypatch.delenv("PATROL_OPERATOR_TOKEN", raising=False)
    monkeypatch.delenv("PATROL_COLLECTOR_URL", raising=False)
    monkeypatch.delenv("PATROL_STATE_DIR", raising=False)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "up.json").write_text(json.dumps(
        {"url": collector.url, "operator_token": OPERATOR}))
    deep = tmp_path / "configs" / "conf.d"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert cli(["tickets", "list"]) == 0
    assert "db-01" in capsys.readouterr().out

    elsewhere = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("PATROL_STATE_DIR", str(tmp_path / "state"))
    assert cli(["tickets", "list"]) == 0
    assert "db-01" in capsys.readouterr().out
    monkeypatch.delenv("PATROL_STATE_DIR")
    assert cli(["tickets", "--state-dir", str(tmp_path / "state"), "list"]) == 0
    assert "db-01" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("collector", ["sqlite"], indirect=True)
def test_show_into_a_closed_pipe_ends_without_a_traceback(collector: CollectorService) -> None:
    """``patrol tickets show N | head -1``: the reader is gone before the output."""
    import subprocess
    import sys

    from tests.procs import ROOT

    number = collector.store.list_tickets()[0].number
    proc = subprocess.Popen(
        [sys.executable, "-m", "patrol.cli", "tickets", "--url", collector.url, "--token",
         OPERATOR, "show", number], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the ticket arrives: every write then fails
    errors = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in errors and "BrokenPipeError" not in errors, errors


def test_a_missing_collector_is_explained(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SystemExit) as info:
        cli(["tickets", "--url", url, "--token", OPERATOR, "list"])
    assert str(info.value) == (f"patrol: no collector at {url}; start one with 'patrol up' "
                               "or 'patrol collector', or pass --url")
