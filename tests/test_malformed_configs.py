"""A corpus of malformed configs (tests/configs_malformed/): each one is reported as
``FILE:LINE: ...`` naming what is wrong, with no traceback, by ``patrol validate`` and
by the daemon that would read it at start-up (issue 9, item 8)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.procs import ROOT

CORPUS = Path(__file__).resolve().parent / "configs_malformed"

# file -> (line, words the message must contain)
EXPECTED: dict[str, tuple[int, str]] = {
    "agent_bad_cron.yaml": (6, "is not a cron schedule"),
    "agent_bad_regex.yaml": (7, "is not a valid regular expression"),
    "agent_binary.yaml": (3, "not UTF-8 text"),
    "agent_control_character.yaml": (3, "is not allowed in YAML text"),
    "agent_huge_number.yaml": (3, "'heartbeat_interval': '1e999' is not a duration"),
    "agent_missing_include.yaml": (3, "no-such-folder.d does not exist"),
    "agent_tabs.yaml": (4, "found character '\\t'"),
    "agent_tiny_interval.yaml": (3, "'heartbeat_interval': input should be greater than or "
                                    "equal to 1"),
    "agent_unset_variable.yaml": (3, "PATROL_CORPUS_UNSET_TOKEN is not set"),
    "agent_wrong_types.yaml": (3, "option 'interval': ['30s'] is not a duration"),
    "collector_bad_cron.yaml": (6, "option 'cron'"),
    "collector_bad_report.yaml": (7, "option 'daily.cron': '0 7 * * 8' is not a cron "
                                     "schedule"),
    "collector_binary.yaml": (3, "not UTF-8 text"),
    "collector_huge_number.yaml": (3, "option 'max_body_bytes'"),
    "collector_tabs.yaml": (3, "found character '\\t'"),
    "collector_unset_variable.yaml": (3, "option 'agent_tokens[0]'"),
    "collector_wrong_types.yaml": (3, "option 'watchdog_interval'"),
}
ENV = {k: v for k, v in os.environ.items() if k != "PATROL_CORPUS_UNSET_TOKEN"}


def _patrol(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "patrol.cli", *argv], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=60)


def _assert_reported(output: str, name: str) -> None:
    line, words = EXPECTED[name]
    assert "Traceback" not in output, output
    ours = [row for row in output.splitlines() if row.startswith(f"{CORPUS / name}:")]
    assert any(row.startswith(f"{CORPUS / name}:{line}: ") and words in row
               for row in ours), output


def test_the_corpus_and_the_expectations_match() -> None:
    assert sorted(p.name for p in CORPUS.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.slow
def test_validate_reports_every_corpus_file_at_its_line() -> None:
    result = _patrol("validate", *(str(CORPUS / name) for name in sorted(EXPECTED)))
    assert result.returncode == 1, result.stdout + result.stderr
    for name in EXPECTED:
        _assert_reported(result.stdout + result.stderr, name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_daemon_refuses_to_start_with_a_message(name: str) -> None:
    """``patrol agent`` / ``patrol collector`` exit 2 naming FILE:LINE, no traceback."""
    daemon = "collector" if name.startswith("collector") else "agent"
    result = _patrol(daemon, "--config", str(CORPUS / name))
    assert result.returncode == 2, result.stdout + result.stderr
    _assert_reported(result.stderr, name)


@pytest.mark.slow
def test_an_unreachable_store_is_a_message_naming_the_setting(tmp_path: Path) -> None:
    config = tmp_path / "collector.yaml"
    config.write_text("collector:\n  listen: 127.0.0.1:0\n"
                      "  store: postgresql://patrol@127.0.0.1:1/patrol\n")
    result = _patrol("collector", "--config", str(config))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("patrol: cannot open the store: ")
    assert f"fix collector.store in {config}" in result.stderr
