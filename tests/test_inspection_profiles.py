"""The shipped profiles' issue-14 checks, run for real on this machine with ``patrol
check``: the daily agent profile must come out clean here, and the daily inspection
profile must at least run every check type it lists (its findings depend on the host)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NEW_IN_AGENT_PROFILE = ["file-descriptors", "zombies", "kernel-log", "network-links",
                        "listening-ports"]


def _patrol(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "patrol.cli", *argv], capture_output=True,
                          text=True, cwd=ROOT, timeout=300, check=False)


@pytest.mark.slow
def test_the_agent_profile_inspection_checks_run_clean_here() -> None:
    done = _patrol("check", "--config", "configs/agent.yaml", "--json",
                   "--only", *NEW_IN_AGENT_PROFILE)
    assert done.returncode == 0, done.stdout + done.stderr
    checks = json.loads(done.stdout)["checks"]
    assert sorted(c["name"] for c in checks) == sorted(NEW_IN_AGENT_PROFILE)
    assert {c["status"] for c in checks} == {"OK"}, [c["summary"] for c in checks]


@pytest.mark.slow
def test_the_daily_inspection_profile_runs_every_checklist_type() -> None:
    config = "configs/examples/daily-inspection.yaml"
    checks = ["inspect-file-descriptors", "inspect-kernel-log", "inspect-processes",
              "inspect-listening-ports", "inspect-network-links"]
    done = _patrol("check", "--config", config, "--json", "--only", *checks)
    assert done.returncode in (0, 1, 2), done.stdout + done.stderr  # findings, not UNKNOWN
    ran = json.loads(done.stdout)["checks"]
    assert sorted(c["name"] for c in ran) == sorted(checks)
    assert "UNKNOWN" not in {c["status"] for c in ran}
    # http needs a site's URL, so it is in the profile's commented SITE-SPECIFIC block
    types = {line.split(":", 1)[1].strip() for line in (ROOT / config).read_text().splitlines()
             if line.strip().lstrip("#").strip().startswith("type:")}
    assert {"fd", "zombies", "kernel", "net_interface", "listen", "clock", "dns",
            "updates", "disk_health", "http"} <= {t.split()[0] for t in types}
