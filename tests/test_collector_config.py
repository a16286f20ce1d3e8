"""Collector config: same file:line errors as the agent's, via ``patrol validate``."""

from __future__ import annotations

from pathlib import Path

from agent.cli import main as cli

TOKEN_A = "agent-token-0123456789abcdef"


def test_shipped_collector_config_is_valid(capsys) -> None:
    path = Path(__file__).resolve().parent.parent / "configs" / "collector.yaml"
    assert cli(["validate", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: OK (collector)\n"


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
        f"{path}:2: collector, option 'listen': port 70000 is out of range; use 1-65535",
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
