"""Central check sets end to end (issue 12, item 5): a real collector assigns sets by
label, a real agent pulls, validates, stores and runs them, and keeps them when the
collector is gone. On SQLite and PostgreSQL (the collector's store holds the host-bound
credential that must not fetch another host's set)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.procs import (
    AGENT_TOKEN,
    OPERATOR_TOKEN,
    ROOT,
    CollectorProcess,
    PatrolProcess,
    free_port,
    operator_headers,
    port_open,
)

pytestmark = pytest.mark.slow


def check_sets_yaml(collector_port: int, extra: str = "") -> str:
    return (
        "check_sets:\n"
        "  sets:\n"
        "    web:\n"
        "      - name: remote-port\n"
        "        type: tcp\n"
        "        host: 127.0.0.1\n"
        f"        port: {collector_port}\n"
        "      - name: remote-plugin\n"
        "        type: nagios\n"
        "        command: [/bin/true]\n"
        "      - name: collector-port\n"
        "        type: tcp\n"
        "        host: 127.0.0.1\n"
        "        port: 9\n"
        + extra +
        "    db:\n"
        "      - name: db-only\n"
        "        type: cpu\n"
        "  assign:\n"
        "    - match: {role: web}\n"
        "      sets: [web]\n"
        "    - match: {role: db}\n"
        "      sets: [db]\n")


def agent_process(workdir: Path, collector_url: str, collector_port: int) -> PatrolProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = workdir / "agent.yaml"
    config.write_text(
        "agent:\n"
        f"  listen: 127.0.0.1:{port}\n"
        "  hostname: web-01\n"
        "  labels: {role: web}\n"
        f"  state_dir: {workdir / 'state'}\n"
        "  interval: 1s\n"
        "  heartbeat_interval: 1h\n"
        "  check_sets: {pull: true, interval: 10s}\n"
        "  collector:\n"
        f"    url: {collector_url}\n"
        f"    token: {AGENT_TOKEN}\n"
        "checks:\n"
        "  - name: collector-port\n"
        "    type: tcp\n"
        "    host: 127.0.0.1\n"
        f"    port: {collector_port}\n")
    agent = PatrolProcess("agent", config, workdir / "agent.log")
    agent.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    agent.port = port  # type: ignore[attr-defined]
    return agent


def start(agent: PatrolProcess) -> None:
    agent.start()
    agent.wait_until(lambda: port_open(agent.port), 20.0, "the agent's port")  # type: ignore[attr-defined]


def metrics(agent: PatrolProcess) -> str:
    return requests.get(agent.url + "/metrics", timeout=2).text  # type: ignore[attr-defined]


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one series in exposition text (labels matched as a subset)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def issue_credential(collector: CollectorProcess, host: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "patrol.cli", "agents", "--url", collector.url, "--token",
         OPERATOR_TOKEN, "issue", host], capture_output=True, text=True, timeout=30, cwd=ROOT,
        check=False)
    assert done.returncode == 0, done.stderr
    found = re.search(rf"agent {host}: (\S+)", done.stdout)
    assert found, done.stdout
    return found.group(1)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_agent_pulls_applies_and_keeps_its_check_sets(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    store = request.getfixturevalue("pg_schema_url") if backend == "postgres" else None
    port = free_port()
    collector = CollectorProcess(tmp_path / "collector", port=port, store=store,
                                 extra_yaml=check_sets_yaml(port))
    collector.start()
    agent = agent_process(tmp_path / "agent", collector.url, port)
    try:
        start(agent)
        # The set assigned by role=web runs; its nagios check is refused by default and
        # its check named like a local one is not run (local wins, both places named).
        agent.wait_until(lambda: sample(metrics(agent), "patrol_check_status",
                                        check="remote-port") is not None, 30.0,
                         "the remote check on /metrics")
        text = metrics(agent)
        assert sample(text, "patrol_check_status", check="remote-plugin") is None
        assert sample(text, "patrol_check_status", check="db-only") is None
        assert sample(text, "patrol_check_set_checks") == 1.0
        assert sample(text, "patrol_check_set_rejected_total", reason="type_not_allowed") == 1
        assert sample(text, "patrol_check_set_rejected_total", reason="local_conflict") == 1
        log = agent.output()
        stored = tmp_path / "agent" / "state" / "check_sets.yaml"
        assert re.search(rf"{re.escape(str(stored))}:\d+: check 'remote-plugin' from check set "
                         r"'web' is refused: type 'nagios' is not in "
                         r"agent.check_sets.allow_types \(it runs the plugin", log), log
        assert re.search(rf"{re.escape(str(stored))}:\d+: check 'collector-port' from check "
                         rf"set 'web' is not run: the check at "
                         rf"{re.escape(str(tmp_path / 'agent' / 'agent.yaml'))}:13 has this "
                         "name, and local checks win", log), log
        # The local check of that name is the one running (it probes an open port).
        agent.wait_until(lambda: sample(metrics(agent), "patrol_check_status",
                                        check="collector-port") == 0, 15.0, "the local check OK")

        # After applying, the agent asked again and got 304; the collector shows the
        # version it holds.
        agent.wait_until(lambda: sample(metrics(agent), "patrol_check_set_pulls_total",
                                        result="unchanged") == 1, 15.0, "a 304 pull")
        hosts = requests.get(collector.url + "/api/v1/hosts", headers=operator_headers(),
                             timeout=10).json()["hosts"]
        web = next(h for h in hosts if h["host"] == "web-01") if hosts else None
        first = _applied_version(text)
        assert web is not None, hosts
        assert web["check_set"]["version"] == first and web["check_set"]["current"], web
        answer = requests.get(collector.url + "/api/v1/check-sets",
                              params={"host": "web-01", "label": "role=web"},
                              headers={"Authorization": f"Bearer {AGENT_TOKEN}",
                                       "If-None-Match": f'"{first}"'}, timeout=10)
        assert answer.status_code == 304 and answer.headers["etag"] == f'"{first}"'

        # A host-bound credential fetches its own host's sets, never another's.
        token = issue_credential(collector, "web-01")
        own = requests.get(collector.url + "/api/v1/check-sets",
                           params={"host": "web-01", "label": "role=web"},
                           headers={"Authorization": f"Bearer {token}"}, timeout=10)
        other = requests.get(collector.url + "/api/v1/check-sets",
                             params={"host": "db-01", "label": "role=db"},
                             headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert own.status_code == 200 and own.json()["version"] == first
        assert other.status_code == 403, other.text

        # The operator changes the set and reloads the collector: the agent runs the new
        # check by its next pull.
        config = collector.log_path.with_suffix(".yaml")
        config.write_text(config.read_text().replace(
            "    db:\n", "      - {name: remote-load, type: load}\n    db:\n"))
        collector.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        agent.wait_until(lambda: sample(metrics(agent), "patrol_check_status",
                                        check="remote-load") is not None, 30.0,
                         "the changed set applied")
        second = _applied_version(metrics(agent))
        assert second != first
        # The issued credential still works after the reload (it is in the store).
        own = requests.get(collector.url + "/api/v1/check-sets",
                           params={"host": "web-01", "label": "role=web"},
                           headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert own.status_code == 200 and own.json()["version"] == second, own.text

        # Collector gone, agent restarted: the last good set still runs.
        collector.stop()
        agent.stop()
        start(agent)
        agent.wait_until(lambda: sample(metrics(agent), "patrol_check_status",
                                        check="remote-load") is not None, 15.0,
                         "the stored set after a restart")
        assert _applied_version(metrics(agent)) == second
        agent.wait_until(lambda: sample(metrics(agent), "patrol_check_set_pulls_total",
                                        result="failed") == 1, 15.0, "the failed pull")
        assert "check sets: http://127.0.0.1" in agent.output()
    finally:
        agent.stop()
        collector.stop()


def _applied_version(text: str) -> str:
    found = re.search(r'patrol_check_set_info\{version="([0-9a-f]*)"\} 1', text)
    assert found, text
    return found.group(1)
