"""A replayed week (issue 8): the tickets an on-call team would have received, counted
at the helpdesk.

- ``patrol up`` with the shipped configs on this host, for one simulated hour (every
  period scaled by :data:`UP_FACTOR`, tests/time_scale.py): no ticket, except a cpu or
  load ticket for load the test itself measured (a shared CI machine is not idle).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from checks.units import parse_duration
from tests.host_load import HostLoad
from tests.procs import ROOT, free_port, start_patrol_up
from tests.time_scale import scale_agent, scale_policy

pytestmark = pytest.mark.slow

UP_FACTOR = 60.0  # one simulated hour in one minute of real processes
SIMULATED_HOUR = 3600.0 / UP_FACTOR
ALL_STATUSES = ("new", "in_progress", "pending", "resolved", "closed")


# -- patrol up on an idle host ------------------------------------------------------------


def shipped_up_configs(tmp_path: Path, factor: float) -> tuple[Path, Path]:
    """configs/agent.yaml and configs/collector.yaml as shipped, with free ports, state
    in ``tmp_path``, and every period divided by ``factor``. The heartbeat ``patrol up``
    sends (15 s: agent/up.py) is scaled like everything else."""
    agent = yaml.safe_load((ROOT / "configs" / "agent.yaml").read_text())
    agent["agent"].update(listen=f"127.0.0.1:{free_port()}", state_dir=str(tmp_path / "state"),
                          heartbeat_interval="15s")
    agent["include"] = str(ROOT / "configs" / "conf.d")
    collector = yaml.safe_load((ROOT / "configs" / "collector.yaml").read_text())
    collector["collector"].update(listen=f"127.0.0.1:{free_port()}",
                                  store=f"sqlite:///{tmp_path}/state/collector.db",
                                  watchdog_interval=max(10.0 / factor, 0.2))
    collector["policy"] = scale_policy(collector["policy"], factor)
    paths = tmp_path / "agent.yaml", tmp_path / "collector.yaml"
    paths[0].write_text(yaml.safe_dump(scale_agent(agent, factor), sort_keys=False))
    paths[1].write_text(yaml.safe_dump(collector, sort_keys=False))
    return paths


def last_runs(db: Path) -> dict[str, float | None]:
    """check -> last run (epoch) as the collector stored it."""
    try:
        with sqlite3.connect(db) as conn:
            return dict(conn.execute("SELECT check_name, last_run FROM check_states"))
    except sqlite3.Error:
        return {}


def explained_by_load(agent: dict[str, Any], load: HostLoad) -> set[str]:
    """The shipped cpu and load checks whose breach this host really had while the
    test ran (measured by the test, tests/host_load.py): a shared CI machine is not
    idle, and a ticket for a CPU that was 95 % busy is true. The margin (10 points
    lower, one sample shorter) absorbs the difference between two samplers."""
    true = set()
    for check in agent["checks"]:
        which = {"cpu": "cpu", "load": "load5"}.get(check["type"])
        if which is None:
            continue
        level = float(str(check["warning"]).rstrip("%")) / (100 if which == "cpu" else 1)
        if load.sustained(which, level - (0.1 if which == "cpu" else 0.15),
                          parse_duration(check.get("for", 0)) - load.period):
            true.add(check["name"])
    return true


def test_patrol_up_on_an_idle_healthy_host_opens_no_ticket_in_a_simulated_hour(
        tmp_path: Path) -> None:
    agent_path, collector_path = shipped_up_configs(tmp_path, UP_FACTOR)
    problems = subprocess.run([sys.executable, "-m", "agent.cli", "validate", str(agent_path),
                               str(collector_path)], cwd=ROOT, capture_output=True, text=True)
    assert problems.returncode == 0, problems.stdout + problems.stderr
    agent = yaml.safe_load(agent_path.read_text())
    up, token = start_patrol_up(agent_path, collector_path, tmp_path / "up.log")
    try:
        db = tmp_path / "state" / "collector.db"
        interval_checks = [c["name"] for c in agent["checks"] if "schedule" not in c]
        up.wait_until(lambda: set(interval_checks) <= set(last_runs(db)), 30,
                      "every interval check's first report")
        started = time.time()
        with HostLoad() as load:
            while time.time() - started < SIMULATED_HOUR:
                time.sleep(1)
                assert up.alive(), up.output()[-4000:]
        reported = last_runs(db)
        for check in interval_checks:  # every check kept reporting all hour
            assert reported[check] and reported[check] > started, (check, reported)

        listing = subprocess.run(
            [sys.executable, "-m", "agent.cli", "tickets", "list",
             *[f"--status={s}" for s in ALL_STATUSES]],
            cwd=tmp_path, capture_output=True, text=True,  # finds state/up.json there
            env={k: v for k, v in os.environ.items() if not k.startswith("PATROL_")})
        assert listing.returncode == 0, listing.stderr
        url = yaml.safe_load(collector_path.read_text())["collector"]["listen"]
        tickets: list[dict[str, Any]] = requests.get(
            f"http://{url}/api/v1/tickets", params={"status": list(ALL_STATUSES)},
            headers={"Authorization": f"Bearer {token}"}, timeout=10).json()["tickets"]
        true = explained_by_load(agent, load)
        false = [(t["check"], t["title"]) for t in tickets if t["check"] not in true]
        assert false == [], (f"peak cpu {load.peak('cpu'):.0%}, load5/core "
                             f"{load.peak('load5'):.2f}\n{listing.stdout}")
        print(f"tickets {[t['check'] for t in tickets]}, true by measured load {sorted(true)}, "
              f"peak cpu {load.peak('cpu'):.0%}, load5/core {load.peak('load5'):.2f}")
        listed = listing.stdout.splitlines()[1:]
        assert listed == (["(no tickets)"] if not tickets else
                          [line for line in listed if line.startswith("TS")]), listing.stdout
        assert len(listed) == max(len(tickets), 1)
    finally:
        up.stop()
