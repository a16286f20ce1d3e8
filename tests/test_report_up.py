"""``patrol report`` next to a running ``patrol up``: no flags, the report finds up's
store through ``state/up.json`` (in the folder it runs in: up's ``state_dir`` here is
``<tmp>/state``) and shows the breach up has just ticketed."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port
from tests.procs import start_patrol_up
from tests.test_up import service_port  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow


def _report(cwd: Path, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "patrol.cli", "report", *args,
                           "--format", "json"], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_reports_read_the_store_of_patrol_up_run_in_the_same_folder(tmp_path, service_port):  # noqa: F811
    port, _, stop_service = service_port
    agent_port, collector_port = free_port(), free_port()
    (tmp_path / "agent.yaml").write_text(f"""
agent:
  listen: 127.0.0.1:{agent_port}
  hostname: db-07
  labels: {{tier: critical, role: db, team: dba}}
  state_dir: {tmp_path}/state
  interval: 1s
checks:
  - {{name: orders-db-port, type: tcp, host: 127.0.0.1, port: {port}, timeout: 1s}}
""")
    (tmp_path / "collector.yaml").write_text(f"""
collector:
  listen: 127.0.0.1:{collector_port}
  store: sqlite:///{tmp_path}/state/collector.db
  watchdog_interval: 0.5s
""")
    up, token = start_patrol_up(tmp_path / "agent.yaml", tmp_path / "collector.yaml",
                                tmp_path / "up.log")
    try:
        api = f"http://127.0.0.1:{collector_port}/api/v1/tickets"
        stop_service()
        tickets = up.wait_until(lambda: requests.get(api, headers={
            "Authorization": f"Bearer {token}"}, timeout=5).json()["tickets"], 30, "a ticket")
        number, opened = tickets[0]["number"], tickets[0]["opened_at"]
        day = datetime.fromtimestamp(opened, UTC).date().isoformat()

        daily = _report(tmp_path, "daily", "--date", day)
        assert [t["ticket"] for t in daily["changes"]["new_failures"]] == [number]
        assert daily["top_risks"][0]["ticket"] == number
        # The check grid is what heartbeats carry: the next one (every 15 s under up)
        # brings the failing state the event already ticketed.
        daily = up.wait_until(lambda: (d := _report(tmp_path, "daily", "--date", day))[
            "summary"]["status"]["CRITICAL"] and d, 40, "a heartbeat with the failure")
        host = next(h for h in daily["fleet"] if h["host"] == "db-07")
        assert host["labels"]["team"] == "dba" and host["reporting"] is True
        assert [(c["check"], c["status"]) for c in host["checks"]] == [
            ("orders-db-port", "CRITICAL")]
        retro = _report(tmp_path, "retro", "--from", day, "--to", day)
        assert retro["summary"]["tickets"] == 1
        assert [g["key"] for g in retro["by_team"]] == ["dba"]
    finally:
        up.stop()
