"""The Ansible role, run with ansible-playbook against localhost into a temporary root.

The service is not managed here (systemd is not PID 1 in CI): the handler is still
notified, so "restarts only when something changed" shows as the handler running on
the first play and not on an unchanged rerun.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import require_command
from tests.release import ROOT, build_release, clean_env

pytestmark = pytest.mark.slow

PLAYBOOK = ROOT / "deploy" / "ansible" / "site.yml"
HANDLER = "RUNNING HANDLER [patrol_agent : Restart patrol-agent]"
TOKEN = "per-host-token-7f3a9c"


def _inventory(wheel: Path, root: Path, checks: list[dict] | None = None,
               host_labels: dict[str, str] | None = None) -> dict:
    host = {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3",
            "ansible_become": False, "patrol_agent_token": TOKEN,
            "patrol_host_labels": host_labels or {"rack": "r12", "tier": "standard"}}
    group = {"patrol_wheel": str(wheel), "patrol_root": str(root),
             "patrol_manage_user": False, "patrol_manage_service": False,
             "patrol_collector_url": "http://127.0.0.1:9732",
             "patrol_group_labels": {"role": "db", "tier": "critical"}}
    if checks is not None:
        group["patrol_checks"] = checks
    return {"patrol_agents": {"children": {"databases": {
        "vars": group, "hosts": {"localhost": host}}}}}


def _play(tmp: Path, inventory: dict) -> subprocess.CompletedProcess[str]:
    path = tmp / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    env = clean_env(ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-tmp"),
                    ANSIBLE_REMOTE_TEMP=str(tmp / "ansible-tmp"),
                    ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_HOST_KEY_CHECKING="0")
    return subprocess.run(["ansible-playbook", "-i", str(path), str(PLAYBOOK)],
                          capture_output=True, text=True, timeout=600, env=env, cwd=tmp)


def _changed(output: str) -> int:
    found = re.search(r"localhost\s*:\s*ok=\d+\s+changed=(\d+)", output)
    assert found, output
    return int(found.group(1))


def test_role_deploys_validates_and_restarts_only_on_change(tmp_path: Path) -> None:
    require_command("ansible-playbook", "ansible-core")
    wheel, _ = build_release(tmp_path / "dist")
    root = tmp_path / "root"

    first = _play(tmp_path, _inventory(wheel, root))
    assert first.returncode == 0, first.stdout + first.stderr
    assert HANDLER in first.stdout and _changed(first.stdout) > 0
    assert TOKEN not in first.stdout + first.stderr

    etc = root / "etc" / "patrol"
    patrol = root / "opt" / "patrol" / "bin" / "patrol"
    checked = subprocess.run([str(patrol), "validate", str(etc / "agent.yaml")],
                             capture_output=True, text=True, env=clean_env(), cwd=tmp_path)
    assert checked.returncode == 0 and "OK (3 checks)" in checked.stdout, checked.stdout
    config = yaml.safe_load((etc / "agent.yaml").read_text())
    # Group labels, then the host's: the host's tier wins.
    assert config["agent"]["labels"] == {"role": "db", "tier": "standard", "rack": "r12"}
    secret = etc / "secrets" / "collector-token"
    assert secret.read_text().strip() == TOKEN and secret.stat().st_mode & 0o777 == 0o600
    assert config["agent"]["collector"]["token"] == f"file:{secret}"
    assert "ExecStart=" + str(patrol) in (
        root / "etc" / "systemd" / "system" / "patrol-agent.service").read_text()

    again = _play(tmp_path, _inventory(wheel, root))
    assert again.returncode == 0, again.stdout
    assert _changed(again.stdout) == 0 and HANDLER not in again.stdout

    # A config the agent would refuse never replaces the running one.
    before = (etc / "agent.yaml").read_text()
    bad = _play(tmp_path, _inventory(wheel, root, checks=[
        {"name": "disk", "type": "disk", "warning": "99%", "critical": "90%"}]))
    assert bad.returncode != 0
    assert "warning 99% is not below critical 90%" in bad.stdout, bad.stdout
    assert (etc / "agent.yaml").read_text() == before

    relabelled = _play(tmp_path, _inventory(wheel, root, host_labels={"rack": "r13"}))
    assert relabelled.returncode == 0 and HANDLER in relabelled.stdout
    assert _changed(relabelled.stdout) == 1
    labels = yaml.safe_load((etc / "agent.yaml").read_text())["agent"]["labels"]
    assert json.dumps(labels, sort_keys=True) == json.dumps(
        {"rack": "r13", "role": "db", "tier": "critical"}, sort_keys=True)


def test_role_is_ansible_lint_clean() -> None:
    lint = require_command("ansible-lint", "ansible-lint")
    done = subprocess.run([lint, "--offline", "site.yml", "roles"], capture_output=True,
                          text=True, timeout=300, cwd=PLAYBOOK.parent, env=clean_env())
    assert done.returncode == 0, done.stdout + done.stderr
