"""The agent as an operator runs it: a real process, real HTTP, real signals."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port

pytestmark = pytest.mark.slow

TOKEN = "test-token-0123456789"


def config_text(port: int, extra: str = "") -> str:
    return f"""
agent:
  listen: 127.0.0.1:{port}
  hostname: web-01
  labels: {{tier: prod, team: ops}}
  interval: 1s
  token: ${{PATROL_TEST_AGENT_TOKEN}}
checks:
  - name: cpu
    type: cpu
    sample: 50ms
  - name: hangs
    type: nagios
    command: [sleep, "30"]
    timeout: 1s
  - name: stamp
    type: file
    path: {{stamp}}
    warning: 1h
{extra}"""


class AgentProcess:
    def __init__(self, tmp_path: Path, text: str, port: int) -> None:
        self.config = tmp_path / "agent.yaml"
        self.stamp = tmp_path / "stamp"
        self.stamp.write_text("x")
        self.write(text)
        self.log = open(tmp_path / "agent.log", "w+")  # noqa: SIM115 - open for the fixture
        env = {**os.environ, "PATROL_TEST_AGENT_TOKEN": TOKEN}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "patrol.cli", "agent", "--config", str(self.config)],
            stdout=self.log, stderr=subprocess.STDOUT, env=env,
            cwd=Path(__file__).resolve().parent.parent)
        self.url = f"http://127.0.0.1:{port}"

    def write(self, text: str) -> None:
        self.config.write_text(text.replace("{stamp}", str(self.stamp)))

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()

    def wait_for(self, predicate, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = predicate()
                if last:
                    return last
            except requests.ConnectionError:
                pass
            assert self.proc.poll() is None, self.output()
            time.sleep(0.05)
        raise AssertionError(f"timed out; last={last!r}\n{self.output()}")

    def metrics_with(self, *needles: str) -> str | None:
        text = self.metrics()
        return text if all(n in text for n in needles) else None

    def metrics(self) -> str:
        return requests.get(self.url + "/metrics", timeout=2).text

    def status(self) -> dict:
        response = requests.get(self.url + "/api/v1/status", timeout=2,
                                headers={"Authorization": f"Bearer {TOKEN}"})
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


@pytest.fixture
def agent(tmp_path: Path):
    port = free_port()
    proc = AgentProcess(tmp_path, config_text(port), port)
    yield proc
    proc.stop()


def test_serves_real_results_and_a_hung_check_does_not_stall_others(agent) -> None:
    # Wait for results, not for the status lines: /metrics lists every check as OK
    # before its first run (agent/exposition.py), so a scrape that early, which a loaded
    # machine makes likely, has the status lines and no value yet.
    text = agent.wait_for(lambda: agent.metrics_with(
        'patrol_check_last_run_timestamp_seconds{check="stamp",type="file"}',
        'patrol_check_last_run_timestamp_seconds{check="cpu",type="cpu"}'))
    assert 'patrol_check_status{check="stamp",type="file"} 0' in text
    assert 'patrol_agent_info{host="web-01",team="ops",tier="prod",version="' in text
    assert 'patrol_check_value{check="stamp",item="",measurement="size_bytes",type="file"} 1.0' \
        in text
    # The hung plugin is UNKNOWN after its 1 s timeout, while the others keep running.
    agent.wait_for(lambda: agent.metrics_with('patrol_check_status{check="hangs",type="nagios"} 3'))
    runs_before = agent.status()["checks"][0]["last_run"]
    agent.wait_for(lambda: agent.status()["checks"][0]["last_run"] > runs_before)
    hangs = next(c for c in agent.status()["checks"] if c["name"] == "hangs")
    assert (hangs["status"], hangs["summary"]) == (
        "UNKNOWN", "hangs could not inspect web-01: plugin sleep timed out after 1s")


def test_status_api_requires_the_token(agent) -> None:
    agent.wait_for(lambda: agent.status()["checks"][0]["last_run"])
    assert requests.get(agent.url + "/api/v1/status", timeout=2).status_code == 401
    wrong = requests.get(agent.url + "/api/v1/status", timeout=2,
                         headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    status = agent.status()
    assert status["agent"]["host"] == "web-01"
    assert TOKEN not in agent.output() and TOKEN not in agent.metrics()


def test_breach_captures_diagnostics_once_hard(agent) -> None:
    agent.wait_for(lambda: agent.status()["checks"][2]["last_run"])
    old = time.time() - 7200
    os.utime(agent.stamp, (old, old))
    def hard_warning_with_diagnostics() -> dict | None:
        check = agent.status()["checks"][2]
        return check if check["status"] == "WARNING" and check["diagnostics"] else None

    stamp = agent.wait_for(hard_warning_with_diagnostics)
    assert stamp["diagnostics"]["host"]["hostname"]
    assert "recent_changes" in stamp["diagnostics"]
    assert "stamp -> " not in agent.output()  # transitions are logged as name: OLD -> NEW
    assert "stamp: OK -> WARNING" in agent.output()


def test_sighup_reload_keeps_old_config_on_error_and_applies_a_good_one(agent, tmp_path) -> None:
    agent.wait_for(lambda: 'check="stamp"' in agent.metrics())
    good = agent.config.read_text()
    agent.config.write_text(good + "  - name: broken\n    type: cpu\n    warnng: 1\n")
    agent.proc.send_signal(signal.SIGHUP)
    agent.wait_for(lambda: "config reload refused" in agent.output())
    assert "option 'warnng': unknown option; did you mean 'warning'?" in agent.output()
    assert 'check="stamp"' in agent.metrics()
    agent.config.write_text(good + "  - name: added\n    type: load\n")
    agent.proc.send_signal(signal.SIGHUP)
    agent.wait_for(lambda: 'check="added"' in agent.metrics())
    assert 'check="stamp"' in agent.metrics()


def test_sigterm_stops_cleanly(agent) -> None:
    agent.wait_for(lambda: 'check="stamp"' in agent.metrics())
    agent.proc.send_signal(signal.SIGTERM)
    assert agent.proc.wait(5) == 0
    assert "patrol agent stopped" in agent.output()


def test_outbox_backlog_is_visible_while_the_collector_is_down(tmp_path: Path) -> None:
    port, down = free_port(), free_port()
    text = config_text(port).replace(
        "  token: ${PATROL_TEST_AGENT_TOKEN}\n",
        "  token: ${PATROL_TEST_AGENT_TOKEN}\n"
        f"  state_dir: {tmp_path}/state\n"
        f"  collector: {{url: 'http://127.0.0.1:{down}', token: agent-token-0123456789ab}}\n")
    proc = AgentProcess(tmp_path, text, port)
    try:
        proc.stamp.unlink()  # the file check goes CRITICAL: one event to deliver
        def pending_events() -> str | None:
            text = proc.metrics()
            found = re.search(r'patrol_outbox_events\{kind="event",state="pending"\} (\S+)',
                              text)
            return text if found and float(found.group(1)) >= 1 else None

        metrics = proc.wait_for(pending_events)
        assert 'patrol_outbox_failed_attempts_total' in metrics
        assert "agent-token-0123456789ab" not in metrics
        assert (tmp_path / "state" / "outbox.db").exists()
    finally:
        proc.stop()
