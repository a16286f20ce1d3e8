"""``patrol up`` end to end: a real breach on this host becomes a ticket with
priority, SLA dates and diagnostics, visible in the API and the web page; recovery
resolves it after verification."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def wait_for(predicate, timeout: float, proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = predicate()
        except requests.ConnectionError:
            found = None
        if found:
            return found
        assert proc.poll() is None, log.read_text()
        time.sleep(0.1)
    raise AssertionError(f"timed out\n{log.read_text()}")


@pytest.fixture
def service_port():
    """A TCP service on this host that the test can stop and start again."""
    port = free_port()
    holder: dict[str, socket.socket | None] = {"sock": None}

    def start() -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(16)
        holder["sock"] = sock

    def stop() -> None:
        if holder["sock"] is not None:
            holder["sock"].close()
            holder["sock"] = None

    start()
    yield port, start, stop
    stop()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_patrol_up_turns_a_real_breach_into_a_verified_ticket(
        request: pytest.FixtureRequest, tmp_path: Path, service_port, backend: str) -> None:
    store = (f"sqlite:///{tmp_path}/state/collector.db" if backend == "sqlite"
             else request.getfixturevalue("pg_schema_url"))
    port, start_service, stop_service = service_port
    agent_port, collector_port = free_port(), free_port()
    (tmp_path / "agent.yaml").write_text(f"""
agent:
  listen: 127.0.0.1:{agent_port}
  hostname: db-07
  labels: {{tier: critical, role: db, env: prod}}
  state_dir: {tmp_path}/state
  interval: 1s
checks:
  - name: orders-db-port
    type: tcp
    host: 127.0.0.1
    port: {port}
    timeout: 1s
    runbook: https://wiki.example.com/runbooks/orders-db
""")
    (tmp_path / "collector.yaml").write_text(f"""
collector:
  listen: 127.0.0.1:{collector_port}
  store: '{store}'
  watchdog_interval: 0.5s
policy:
  lifecycle: {{verify_for: 2s}}
""")
    log = tmp_path / "up.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "patrol.cli", "up", "--config", str(tmp_path / "agent.yaml"),
             "--collector-config", str(tmp_path / "collector.yaml")],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        banner = wait_for(lambda: "operator token" in log.read_text() and log.read_text(),
                          30, proc, log)
        token = re.search(r"operator token\s+(\S+)", banner).group(1)
        web = re.search(r"web page\s+(\S+)", banner).group(1)
        api = f"http://127.0.0.1:{collector_port}/api/v1/tickets"
        auth = {"Authorization": f"Bearer {token}"}

        stop_service()  # the real breach: the service's port refuses connections
        tickets = wait_for(lambda: requests.get(api, headers=auth, timeout=5).json()["tickets"],
                           30, proc, log)
        assert len(tickets) == 1
        number = tickets[0]["number"]
        assert re.fullmatch(r"TS\d{8}\d{3}", number)
        ticket = requests.get(f"{api}/{number}", headers=auth, timeout=5).json()
        assert ticket["priority"] == "P1"  # critical on a critical-tier host
        assert ticket["respond_by"] - ticket["opened_at"] == pytest.approx(15 * 60)
        assert ticket["resolve_by"] - ticket["opened_at"] == pytest.approx(4 * 3600)
        assert ticket["host"] == "db-07" and ticket["check"] == "orders-db-port"
        assert "refused" in ticket["title"]
        assert ticket["diagnostics"]["host"]["hostname"]
        assert "## Problem" in ticket["body"] and "## Suggested first actions" in ticket["body"]
        assert "https://wiki.example.com/runbooks/orders-db" in ticket["body"]
        assert "patrol check --config" in ticket["body"]

        browser = requests.Session()
        page = browser.get(web.replace("/login?", f"/login?next=/tickets/{number}&"),
                           timeout=5)
        assert page.status_code == 200 and number in page.text and "P1" in page.text

        start_service()  # recovery: resolved only after it stayed OK for verify_for
        recovering = wait_for(lambda: (t := requests.get(f"{api}/{number}", headers=auth,
                                                         timeout=5).json())["recovered_at"]
                              and t, 30, proc, log)
        assert recovering["status"] in ("new", "in_progress")
        resolved = wait_for(lambda: (t := requests.get(f"{api}/{number}", headers=auth,
                                                       timeout=5).json())["status"]
                            == "resolved" and t, 30, proc, log)
        assert resolved["resolved_at"] - resolved["recovered_at"] >= 2
        kinds = [entry["kind"] for entry in resolved["timeline"]]
        assert kinds[0] == "opened" and "recovering" in kinds and kinds[-1] == "resolved"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
