"""``patrol agent`` that cannot start says why, naming the setting that fixes it, and
never with a traceback (issue 9): a busy port is a port problem, a read-only state
directory is a state-directory problem."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.procs import AGENT_TOKEN, ROOT
from tests.small_disk import small_disk


def _agent_config(tmp_path: Path, port: int, state_dir: Path) -> Path:
    config = tmp_path / "agent.yaml"
    config.write_text(
        "agent:\n"
        f"  listen: 127.0.0.1:{port}\n"
        f"  state_dir: {state_dir}\n"
        "  collector:\n"
        "    url: http://127.0.0.1:9\n"
        f"    token: {AGENT_TOKEN}\n"
        "checks:\n  - name: load\n    type: load\n")
    return config


def _start_agent(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "patrol.cli", "agent", "--config",
                           str(config)], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.slow
def test_a_busy_port_is_reported_as_such(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _start_agent(_agent_config(tmp_path, port, tmp_path / "state"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr, result.stderr
    assert f"cannot serve on 127.0.0.1:{port}: Address already in use; set agent.listen " \
           "to a free HOST:PORT" in result.stderr


@pytest.mark.slow
def test_a_read_only_state_directory_is_not_called_a_port_problem(tmp_path: Path) -> None:
    with small_disk(tmp_path / "ro") as disk:
        disk.read_only()
        state = disk.path / "state"
        with socket.socket() as probe:  # a port that is free
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        result = _start_agent(_agent_config(tmp_path, port, state))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr, result.stderr
    assert "agent.listen" not in result.stderr
    assert f"cannot write {state}: Read-only file system; make agent.state_dir" \
           in result.stderr, result.stderr
