"""Collector config: same file:line errors as the agent's, via ``patrol validate``."""

from __future__ import annotations

from pathlib import Path

from patrol.cli import main as cli

TOKEN_A = "agent-token-0123456789abcdef"


def test_shipped_collector_config_is_valid(capsys) -> None:
    path = Path(__file__).resolve().parent.parent / "configs" / "collector.yaml"
    assert cli(["validate", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: OK (collector)\n"


def test_the_shipped_configs_commented_examples_validate_once_uncommented(
        tmp_path: Path, capsys, monkeypatch) -> None:
    """The reports and check-set examples in configs/collector.yaml are what an operator
    uncomments first: they must be right as written."""
    import re

    shipped = (Path(__file__).resolve().parent.parent / "configs" / "collector.yaml").read_text()
    text = re.sub(r"^# (reports:|check_sets:|  )", r"\1", shipped, flags=re.M)
    assert "\nreports:" in text and "\ncheck_sets:" in text
    path = tmp_path / "collector.yaml"
    path.write_text(text.replace("sqlite:///state/collector.db", f"sqlite:///{tmp_path}/c.db"))
    monkeypatch.setenv("SMTP_PASSWORD", "from-the-environment")
    assert cli(["validate", str(path)]) == 0, capsys.readouterr().out


def test_every_problem_with_file_and_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text(
        "collector:\n"
        "  listen: 127.0.0.1:70000\n"
        "  stroe: sqlite:///x.db\n"
        f"  agent_tokens: [{TOKEN_A}]\n"
        "  operator_tokens: [short]\n"
        "  max_body_bytes: 10\n")
    assert cli(["validate", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{path}:2: collector, option 'listen': port 70000 is out of range; use 1-65535, "
        "or 0 for any free port",
        f"{path}:3: collector, option 'stroe': unknown option; did you mean 'store'?",
        f"{path}:5: collector, option 'operator_tokens': a token must be at least 16 "
        "characters; generate one with python -c 'import secrets; "
        "print(secrets.token_urlsafe(32))'",
        f"{path}:6: collector, option 'max_body_bytes': input should be greater than or equal "
        "to 1024 (got 10); change the value",
    ]


def test_agent_and_operator_tokens_must_differ(tmp_path: Path, capsys) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text(f"collector:\n  agent_tokens: [{TOKEN_A}]\n  operator_tokens: [{TOKEN_A}]\n")
    assert cli(["validate", str(path)]) == 1
    assert capsys.readouterr().out == (
        f"{path}:2: collector: agent_tokens and operator_tokens must differ; an agent token "
        "must never be able to act on tickets\n")


def test_policy_and_maintenance_mistakes_are_reported_with_lines(tmp_path: Path,
                                                                 capsys) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text(
        "collector:\n"
        "  listen: 127.0.0.1:9732\n"
        "policy:\n"
        "  lifecycle:\n"
        "    verify_for: soon\n"
        "  grouping: {lable: role}\n"
        "maintenance:\n"
        "  - name: x\n"
        "    hosts: ['*']\n"
        "  - name: y\n"
        "    weekly: {days: [funday], from: '02:00', to: '04:00'}\n"
        "    hosts: ['*']\n")
    assert cli(["validate", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{path}:5: policy, option 'lifecycle.verify_for': 'soon' is not a duration; write "
        "it like 30s, 5m, 1h30m or 14d",
        f"{path}:6: policy, option 'grouping.lable': unknown option; did you mean 'label'?",
        f"{path}:8: maintenance 'x': give exactly one schedule: start and end (one-off), "
        "cron and duration, or weekly; got none",
        f"{path}:11: maintenance 'y', option 'weekly.days.0': input should be 'mon', 'tue', "
        "'wed', 'thu', 'fri', 'sat' or 'sun' (got 'funday')",
    ]


def test_config_windows_reach_the_store_and_api_windows_survive_a_restart(
        tmp_path: Path) -> None:
    from patrol.collector.config import load_collector_config
    from patrol.collector.service import CollectorService

    path = tmp_path / "collector.yaml"
    path.write_text(
        f"collector:\n  store: sqlite:///{tmp_path}/c.db\n"
        "maintenance:\n"
        "  - name: nightly\n    cron: '0 2 * * *'\n    duration: 1h\n    hosts: ['db-*']\n")
    service = CollectorService(load_collector_config(path))
    with service.store.transaction() as tx:
        tx.add_maintenance({"name": "by-hand", "start": "2026-11-22T00:00:00Z",
                            "end": "2026-11-23T00:00:00Z", "hosts": ["web-01"],
                            "origin": "api"})
    assert sorted(w.name for w in service.engine.windows()) == ["by-hand", "nightly"]
    service.store.close()
    path.write_text(f"collector:\n  store: sqlite:///{tmp_path}/c.db\n")
    again = CollectorService(load_collector_config(path))
    assert [w.name for w in again.engine.windows()] == ["by-hand"]
    again.store.close()


def test_ticketing_helpdesks_are_validated_by_their_adapters(tmp_path: Path, capsys) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text(
        "collector:\n"
        "  listen: 127.0.0.1:9732\n"
        "ticketing:\n"
        "  helpdesks:\n"
        "    desk:\n"
        "      type: redmin\n"
        "    rm:\n"
        "      type: redmine\n"
        "      url: http://127.0.0.1:3000\n"
        "      api_kye: x\n"
        "  routes:\n"
        "    - helpdesk: rm\n"
        "    - helpdesk: jira\n"
        "  on_remote_close: ignore\n")
    assert cli(["validate", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert f"{path}:6: helpdesk 'desk', option 'type': unknown helpdesk type 'redmin'; " \
           "did you mean 'redmine'?" in out
    assert any(line.startswith(f"{path}:10: helpdesk 'rm', option 'api_kye': unknown option")
               for line in out)
    assert f"{path}:14: ticketing, option 'on_remote_close': input should be 'reopen' or " \
           "'respect' (got 'ignore')" in out


def test_routes_must_name_configured_helpdesks(tmp_path: Path, capsys) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text(
        "collector:\n"
        "  listen: 127.0.0.1:9732\n"
        "ticketing:\n"
        "  helpdesks:\n"
        "    hook: {type: webhook, url: 'http://127.0.0.1:9/x', preset: slack}\n"
        "  routes:\n"
        "    - helpdesk: hook\n"
        "    - helpdesk: jira\n")
    assert cli(["validate", str(path)]) == 1
    assert capsys.readouterr().out == (
        f"{path}:8: ticketing, option 'routes': route 2 sends to unknown helpdesk 'jira'; "
        "known: hook\n")
