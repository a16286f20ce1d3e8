"""The running ``patrol agent`` never imports pydantic: its config is validated once, in
a short-lived child (agent/validation.py), and the agent runs with plain frozen copies.
pydantic and the models it builds were ~13 MiB of a 32.6 MiB agent (issue 10, item 5).

Real processes throughout: the agent's entry point in a ``-c`` script that prints its
module names as it exits, so what is asserted is what the agent held after start,
first results and a SIGHUP reload."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from patrol.agent.config import load_config
from patrol.contract.yamlsource import ConfigError
from tests.conftest import free_port
from tests.test_agent_process import AgentProcess

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
# The agent's own entry (patrol.cli main), then its module names, as the process exits.
ENTRY = ("import atexit, json, sys\n"
         "atexit.register(lambda: print('MODULES ' + json.dumps(sorted(sys.modules))))\n"
         "from patrol.cli import main\n"
         "sys.exit(main(sys.argv[1:]))\n")


def shipped_profile(tmp_path: Path, port: int) -> dict[str, Any]:
    """configs/agent.yaml without ``include``, on a loopback port, a temp state dir."""
    profile = yaml.safe_load((ROOT / "configs" / "agent.yaml").read_text())
    profile.pop("include")
    profile["agent"].update(listen=f"127.0.0.1:{port}", state_dir=str(tmp_path / "state"),
                            interval="1s")
    return profile


class Agent(AgentProcess):
    """``patrol agent`` through ENTRY, its output in a file (the rest as in
    tests/test_agent_process.py)."""

    def __init__(self, tmp_path: Path, config: Path, port: int) -> None:
        self.config = config
        self.log = open(tmp_path / "agent.log", "w+")  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ENTRY, "agent", "--config", str(config)],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT,
            env={**os.environ, "PATROL_TOKEN": ""})
        self.url = f"http://127.0.0.1:{port}"

    def modules_at_exit(self) -> list[str]:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(10) == 0, self.output()
        line = next(x for x in self.output().splitlines() if x.startswith("MODULES "))
        names: list[str] = json.loads(line.removeprefix("MODULES "))
        return names


@pytest.fixture
def shipped(tmp_path: Path):
    port = free_port()
    config = tmp_path / "agent.yaml"
    profile = shipped_profile(tmp_path, port)
    config.write_text(yaml.safe_dump(profile))
    agent = Agent(tmp_path, config, port)
    yield agent, config, profile
    agent.stop()


def ran(agent: Agent, check: str) -> bool:
    """Whether ``check`` has a first result (before it, /metrics lists it as OK)."""
    return f'patrol_check_last_run_timestamp_seconds{{check="{check}"' in agent.metrics()


def test_the_shipped_profile_runs_and_reloads_without_pydantic(shipped) -> None:
    agent, config, profile = shipped
    agent.wait_for(lambda: ran(agent, "memory") and ran(agent, "disk"))
    profile["checks"].append({"name": "added", "type": "tcp", "host": "127.0.0.1",
                              "port": free_port()})
    profile["checks"][1]["warning"] = "91%"
    config.write_text(yaml.safe_dump(profile))
    agent.proc.send_signal(signal.SIGHUP)
    agent.wait_for(lambda: ran(agent, "added"))
    assert "config reloaded" in agent.output()
    modules = agent.modules_at_exit()
    assert "patrol.checks.disk" in modules  # it is the agent's list, after real runs
    assert [m for m in modules if m.split(".")[0] in ("pydantic", "pydantic_core")] == []
    assert [m for m in modules if m.startswith("patrol.checks.schemas.")] == []
    assert "patrol.contract.wire" not in modules


def test_a_bad_config_at_start_says_what_it_always_said(tmp_path: Path) -> None:
    """FILE:LINE for each problem, the summary, exit code 2: as when the agent
    validated in-process (the lines below are load_config's own)."""
    config = tmp_path / "agent.yaml"
    profile = shipped_profile(tmp_path, free_port())
    profile["checks"][0]["warnng"] = "80%"
    profile["checks"][2]["type"] = "swapp"
    config.write_text(yaml.safe_dump(profile))
    with pytest.raises(ConfigError) as expected:
        load_config(config)
    done = subprocess.run([sys.executable, "-m", "patrol.cli", "agent", "--config",
                           str(config)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        *(str(p) for p in expected.value.problems),
        f"patrol: {config} has {len(expected.value.problems)} problem(s); nothing was started"]
    assert "did you mean 'warning'?" in done.stderr and "did you mean 'swap'?" in done.stderr


def test_a_bad_config_at_sighup_keeps_the_old_checks_running(shipped) -> None:
    agent, config, profile = shipped
    agent.wait_for(lambda: ran(agent, "cpu"))
    profile["checks"].append({"name": "broken", "type": "load", "warnng": 3})
    config.write_text(yaml.safe_dump(profile))
    agent.proc.send_signal(signal.SIGHUP)
    agent.wait_for(lambda: "config reload refused" in agent.output())
    assert "option 'warnng': unknown option; did you mean 'warning'?" in agent.output()

    def last_run(text: str) -> float:
        line = next(x for x in text.splitlines() if x.startswith(
            'patrol_check_last_run_timestamp_seconds{check="cpu"'))
        return float(line.rsplit(" ", 1)[1])

    before = last_run(agent.metrics())
    agent.wait_for(lambda: last_run(agent.metrics()) > before)  # the old checks still run
    assert 'check="broken"' not in agent.metrics()
    assert [m for m in agent.modules_at_exit() if m.startswith("pydantic")] == []


def test_delivering_events_and_heartbeats_needs_no_pydantic(tmp_path: Path) -> None:
    """The agent writes its events and heartbeats as plain JSON (agent/events.py); the
    wire models are the collector's, for checking what arrives."""
    port = free_port()
    config = tmp_path / "agent.yaml"
    config.write_text(yaml.safe_dump({
        "agent": {"listen": f"127.0.0.1:{port}", "state_dir": str(tmp_path / "state"),
                  "interval": "1s", "heartbeat_interval": "1s",
                  "collector": {"url": f"http://127.0.0.1:{free_port()}",
                                "token": "agent-token-0123456789ab"}},
        "checks": [{"name": "gone", "type": "file", "path": str(tmp_path / "missing")}]}))
    agent = Agent(tmp_path, config, port)
    try:
        def queued() -> bool:
            text = agent.metrics()
            return all(f'patrol_outbox_events{{kind="{kind}",state="pending"}} 1' in text
                       for kind in ("event", "heartbeat"))

        agent.wait_for(queued)
        modules = agent.modules_at_exit()
        assert "patrol.agent.events" in modules
        assert [m for m in modules if m.split(".")[0] in ("pydantic", "pydantic_core")] == []
    finally:
        agent.stop()


def test_every_built_in_check_and_the_agent_runtime_import_without_pydantic() -> None:
    """A check's options model lives in checks/schemas/<type>.py; the check module, and
    what the agent runs with, import no pydantic (a new check that does fails here)."""
    code = ("import importlib, sys\n"
            "from patrol.checks.registry import BUILTINS\n"
            "for spec in BUILTINS.values():\n"
            "    importlib.import_module(spec.partition(':')[0])\n"
            "import patrol.agent.agent, patrol.agent.server, patrol.agent.events\n"
            "import patrol.agent.pusher, patrol.agent.check_set_pull, patrol.agent.validation\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0].startswith('pydantic')))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True, timeout=60)
    assert done.stdout.strip() == "[]"


def test_the_child_finds_what_validating_in_process_finds(tmp_path: Path, monkeypatch) -> None:
    """Same problems for a pulled check set; a child that cannot answer is no verdict
    (ValidationFailed: the caller keeps what it runs, or starts nothing)."""
    from patrol.agent import validation

    candidate = tmp_path / "check_sets.candidate.yaml"
    candidate.write_text("version: v1\nsets:\n  - name: web\n    checks:\n"
                         "      - {name: a, type: tcp, host: 127.0.0.1, port: 70000}\n"
                         "      - {name: b, type: load, warnng: 3}\n")
    allowed = {"tcp", "load"}
    in_child = validation.InChild().candidate_problems(candidate, allowed)
    assert [str(p) for p in in_child] == [
        str(p) for p in validation.InProcess().candidate_problems(candidate, allowed)]
    assert len(in_child) == 2
    monkeypatch.setattr(validation, "CHILD_MODULE", "patrol.agent.no_such_module")
    with pytest.raises(validation.ValidationFailed, match="No module named"):
        validation.InChild().load(candidate)
