"""``file:/path`` secrets read the same in the agent's, the collector's and the
helpdesks' config: one file gives one value everywhere, and a missing file gives one
sentence at the option's ``FILE:LINE``."""

from __future__ import annotations

from pathlib import Path

import pytest

from patrol.agent.config import load_config
from patrol.collector.config import load_collector_config
from patrol.contract.secrets import resolve_secret
from patrol.contract.yamlsource import ConfigError

TOKEN = "agent-token-0123456789abcdef"


def _configs(tmp_path: Path, reference: str) -> dict[str, Path]:
    """The same reference as the agent's token, a collector agent token and a Jira
    token, each on line 2 / 2 / 5 of its file."""
    agent = tmp_path / "agent.yaml"
    agent.write_text(f"agent:\n  token: {reference}\n")
    collector = tmp_path / "collector.yaml"
    collector.write_text(f"collector:\n  agent_tokens: ['{reference}']\n"
                         "ticketing:\n  helpdesks:\n"
                         "    jira: {type: jira, url: 'https://jira.example', api_version: 2, "
                         f"token: '{reference}'}}\n"
                         "  routes: [{helpdesk: jira}]\n")
    return {"agent": agent, "collector": collector}


@pytest.mark.parametrize(
    "content",
    [TOKEN, f"{TOKEN}\n", f"{TOKEN}\r\n", f"  {TOKEN}  \n\n"],
    ids=["bare", "newline", "crlf", "blanks"],
)
def test_one_secret_file_gives_one_value_everywhere(tmp_path: Path, content: str) -> None:
    secret = tmp_path / "token"
    secret.write_text(content, newline="")
    paths = _configs(tmp_path, f"file:{secret}")
    agent = load_config(paths["agent"]).agent
    collector = load_collector_config(paths["collector"])
    assert agent.token is not None and agent.token.reveal() == TOKEN
    assert collector.collector.agent_tokens == [TOKEN]
    assert collector.helpdesks["jira"].token.get_secret_value() == TOKEN


def test_a_missing_secret_file_reads_the_same_everywhere(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    paths = _configs(tmp_path, f"file:{missing}")
    said = (f"cannot read secret file {missing}: No such file or directory; create it or "
            "fix the path")
    with pytest.raises(ConfigError) as agent:
        load_config(paths["agent"])
    with pytest.raises(ConfigError) as collector:
        load_collector_config(paths["collector"])
    assert [str(p) for p in agent.value.problems] == [
        f"{paths['agent']}:2: agent, option 'token': {said}"]
    assert [str(p) for p in collector.value.problems] == [
        f"{paths['collector']}:2: collector, option 'agent_tokens': {said}",
        f"{paths['collector']}:5: helpdesk 'jira', option 'token': {said}",
    ]


def test_inline_and_non_text_values(tmp_path: Path) -> None:
    assert resolve_secret("  inline with blanks ") == "  inline with blanks "
    with pytest.raises(ValueError, match=r"expected a string, \$\{ENV_VAR\} or file:/path"):
        resolve_secret(12345)
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(ValueError, match=f"secret file {binary} is not UTF-8 text"):
        resolve_secret(f"file:{binary}")
