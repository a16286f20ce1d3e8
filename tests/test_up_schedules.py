"""``patrol up`` with the shipped agent config: the daily cron inspection is not called
stale (it used to be, within 100 s of a fresh start) while every check keeps reporting."""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port
from tests.procs import start_patrol_up

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
CRON_CHECK = "daily-capacity-inspection"


def shipped_agent_config(tmp_path: Path, port: int) -> Path:
    """configs/agent.yaml as shipped, on a free port, with its state in tmp_path and
    everything fast: checks every second, a heartbeat every second."""
    text = (ROOT / "configs" / "agent.yaml").read_text()
    for pattern, replacement in (
            (r"listen: 127\.0\.0\.1:9731", f"listen: 127.0.0.1:{port}"),
            (r"state_dir: state", f"state_dir: {tmp_path}/state"),
            (r"interval: 30s", "interval: 1s\n  heartbeat_interval: 1s"),
            (r"include: conf\.d", f"include: {ROOT}/configs/conf.d")):
        text, found = re.subn(pattern, replacement, text, count=1)
        assert found == 1, f"configs/agent.yaml no longer has {pattern!r}"
    assert f"name: {CRON_CHECK}" in text and 'schedule: "0 7 * * *"' in text
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    return path


def grid(db: Path) -> dict[str, tuple[float | None, float | None]]:
    """check -> (last_run, next_due) as the collector stored them."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT check_name, last_run, next_due FROM check_states").fetchall()
    return {name: (last, due) for name, last, due in rows}


def test_fresh_patrol_up_with_the_shipped_config_opens_no_stale_ticket(tmp_path: Path) -> None:
    agent_port, collector_port = free_port(), free_port()
    agent = shipped_agent_config(tmp_path, agent_port)
    collector = tmp_path / "collector.yaml"
    collector.write_text(f"""
collector:
  listen: 127.0.0.1:{collector_port}
  store: sqlite:///{tmp_path}/state/collector.db
  watchdog_interval: 0.5s
""")
    proc, token = start_patrol_up(agent, collector, tmp_path / "up.log")
    try:
        db = tmp_path / "state" / "collector.db"

        def reported() -> dict[str, tuple[float | None, float | None]]:
            try:
                return grid(db)
            except sqlite3.Error:
                return {}

        proc.wait_until(lambda: reported().get(CRON_CHECK, (None,))[0] and reported().get("cpu"),
                        30, "the first heartbeat with both checks")
        started = reported()
        last_run, next_due = started[CRON_CHECK]
        assert time.time() < next_due <= time.time() + 86400
        assert time.localtime(next_due)[3:6] == (7, 0, 0)  # the next 07:00, local time

        # Many times the old limit (3 x max(interval, heartbeat) = 3 s here) and many
        # watchdog passes: the cpu check keeps reporting, the inspection rightly waits.
        time.sleep(12)
        assert proc.alive(), proc.output()
        now = reported()
        assert now["cpu"][0] > started["cpu"][0]  # heartbeats kept coming
        assert now[CRON_CHECK][0] == last_run  # no run since start-up, as scheduled
        tickets = requests.get(f"http://127.0.0.1:{collector_port}/api/v1/tickets",
                               headers={"Authorization": f"Bearer {token}"},
                               timeout=5).json()["tickets"]
        assert [t["title"] for t in tickets if t["check"].startswith("stale:")] == []
    finally:
        proc.stop()
