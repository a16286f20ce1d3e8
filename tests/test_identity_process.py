"""Per-agent credentials end to end: ``patrol agents issue`` against a running
collector, real agents delivering with the issued token, an agent posing as another
host refused, rotation without a gap, and revocation."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.procs import (
    AGENT_TOKEN,
    OPERATOR_TOKEN,
    ROOT,
    AgentProcess,
    CollectorProcess,
    event_payload,
)

pytestmark = pytest.mark.slow

FAILING_CHECK = ("  - name: orders-port\n    type: tcp\n    host: 127.0.0.1\n"
                 "    port: 9\n")


def patrol(collector: CollectorProcess, *argv: str) -> str:
    """``patrol COMMAND ARGS --url ... --token ...`` as an operator types it."""
    command = [sys.executable, "-m", "patrol.cli", argv[0], "--url", collector.url,
               "--token", OPERATOR_TOKEN, *argv[1:]]
    done = subprocess.run(
        command,
        capture_output=True, text=True, timeout=30, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def agent_with(tmp: Path, collector: CollectorProcess, hostname: str, token: str
               ) -> AgentProcess:
    agent = AgentProcess(tmp / hostname, collector.url, FAILING_CHECK, hostname=hostname)
    config = tmp / hostname / "agent.yaml"
    config.write_text(config.read_text().replace(AGENT_TOKEN, token))
    return agent


def post_as(collector: CollectorProcess, token: str, host: str, sequence: int) -> int:
    return requests.post(collector.url + "/api/v1/events", timeout=10,
                         headers={"Authorization": f"Bearer {token}"},
                         json={"events": [event_payload(host, "cpu", sequence)]}).status_code


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_issued_credentials_bind_agents_to_their_hosts(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    store = request.getfixturevalue("pg_schema_url") if backend == "postgres" else None
    collector = CollectorProcess(tmp_path / "collector", store=store).start()
    agents: list[AgentProcess] = []
    try:
        issued = patrol(collector, "agents", "issue", "web-01", "--also", "web-01.*")
        token = re.search(r"agent web-01: (\S+)", issued).group(1)
        assert "may report: web-01, web-01.*" in issued
        honest = agent_with(tmp_path, collector, "web-01", token).start()
        impostor = agent_with(tmp_path, collector, "db-01", token).start()
        agents += [honest, impostor]
        tickets = collector.wait_until(lambda: collector.tickets(host="web-01"), 30.0,
                                       "web-01's ticket")
        assert tickets[0]["check"] == "orders-port"
        impostor.wait_until(lambda: "403" in impostor.output(), 30.0,
                            "the impostor to be refused")
        assert collector.tickets(host="db-01") == []

        # ``patrol enroll`` on the agent's host: its own token, in a 0600 file.
        enrolled = AgentProcess(tmp_path / "cache-01", collector.url, FAILING_CHECK,
                                hostname="cache-01")
        config = tmp_path / "cache-01" / "agent.yaml"
        said = patrol(collector, "enroll", "--config", str(config))
        token_file = enrolled.state_dir / "collector.token"
        assert f"token: file:{token_file}" in said
        assert token_file.stat().st_mode & 0o777 == 0o600
        config.write_text(config.read_text().replace(AGENT_TOKEN, f"file:{token_file}"))
        agents.append(enrolled.start())
        collector.wait_until(lambda: collector.tickets(host="cache-01"), 30.0,
                             "cache-01's ticket")
        assert token_file.read_text().strip() not in said

        listing = patrol(collector, "agents", "list")
        assert "web-01" in listing and "live" in listing and token not in listing

        rotated = patrol(collector, "agents", "rotate", "web-01", "--grace", "3600")
        new = re.search(r"agent web-01: (\S+)", rotated).group(1)
        assert post_as(collector, token, "web-01", 1) == 202  # both work during the grace
        assert post_as(collector, new, "web-01", 2) == 202
        assert post_as(collector, new, "db-01", 3) == 403

        assert "revoked 2 token(s)" in patrol(collector, "agents", "revoke", "web-01")
        assert post_as(collector, token, "web-01", 4) == 401
        assert post_as(collector, new, "web-01", 5) == 401
    finally:
        for agent in agents:
            agent.stop()
        collector.stop()
    log = "".join(a.output() for a in agents) + collector.output()
    assert token not in log and new not in log
