"""A check whose data source is missing on a host says UNKNOWN, why, and how to get one
(issue 14), never CRITICAL and never a false OK.

The process test runs ``patrol check`` for real with an empty ``PATH``, so chronyc,
ntpq, timedatectl, smartctl, apt-get, dnf, journalctl and dmesg are all absent, as on
a minimal container image; systemd is judged as this host has it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from patrol.checks.base import CheckError
from tests.helpers import build

ROOT = Path(__file__).resolve().parent.parent

PROFILE = """\
agent:
  state_dir: {state}
checks:
  - {{name: clock, type: clock}}
  - {{name: disk-health, type: disk_health, raid: false}}
  - {{name: updates, type: updates}}
  - {{name: kernel-journal, type: kernel, source: journal}}
  - {{name: kernel-dmesg, type: kernel, source: dmesg}}
  - {{name: services, type: systemd, unit: sshd.service}}
"""

# What each summary must say: the reason, then how to provide the source.
EXPECTED = {
    "clock": ("clock could not inspect {host}: no time service answered on {host} (chrony: "
              "chronyc is not installed; ntpd: ntpq is not installed); install and start "
              "chrony (apt-get install chrony), or set server: to query an NTP server "
              "directly"),
    "disk-health": ("disk-health could not inspect {host}: nothing to judge disk health by "
                    "on {host}: smartctl is not installed (apt-get install smartmontools); no "
                    "SMART data from any disk and no md arrays in /proc/mdstat; on virtual "
                    "disks leave this check out"),
    "updates": ("updates could not inspect {host}: neither apt-get nor dnf is installed on "
                "{host}; the updates check reads apt (Debian, Ubuntu) or dnf (Fedora, RHEL) "
                "only: leave it out of this host's profile"),
    "kernel-journal": ("kernel-journal could not inspect {host}: cannot read the kernel log "
                       "on {host} (journal: journalctl: No such file or directory); run the "
                       "agent as root or with CAP_SYSLOG for /dev/kmsg, add its user to the "
                       "systemd-journal group for journalctl -k, or set "
                       "kernel.dmesg_restrict=0 for dmesg"),
    "kernel-dmesg": ("kernel-dmesg could not inspect {host}: cannot read the kernel log on "
                     "{host} (dmesg: dmesg: No such file or directory); run the agent as root "
                     "or with CAP_SYSLOG for /dev/kmsg, add its user to the systemd-journal "
                     "group for journalctl -k, or set kernel.dmesg_restrict=0 for dmesg"),
}


def test_checks_without_their_programs_are_unknown_and_say_how(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(PROFILE.format(state=tmp_path / "state"))
    empty = tmp_path / "bin"
    empty.mkdir()
    done = subprocess.run([sys.executable, "-m", "patrol.cli", "check", "--config",
                           str(config), "--json"], capture_output=True, text=True, cwd=ROOT,
                          env={"PATH": str(empty), "HOME": str(tmp_path)}, timeout=120,
                          check=False)
    assert done.returncode == 3, done.stdout + done.stderr  # worst: UNKNOWN
    report = json.loads(done.stdout)
    host = report["host"]
    summaries = {c["name"]: (c["status"], c["summary"]) for c in report["checks"]}
    for name, text in EXPECTED.items():
        assert summaries[name] == ("UNKNOWN", text.format(host=host))
    if os.path.isdir("/run/systemd/system"):  # systemctl is not on PATH either
        assert summaries["services"][0] == "UNKNOWN"
        assert "cannot run systemctl" in summaries["services"][1]
    else:
        pid1 = Path("/proc/1/comm").read_text().strip()
        assert summaries["services"] == (
            "UNKNOWN", f"systemd is not running on {host} (PID 1 is {pid1}); cannot inspect "
            "unit sshd.service; run the agent on a host booted with systemd, not inside a "
            "container, or leave this check out here")


@pytest.mark.parametrize("lists", ["absent", "empty"])
def test_apt_without_package_lists_is_unknown_not_zero_updates(tmp_path: Path,
                                                              lists: str) -> None:
    """Container images ship apt with /var/lib/apt/lists emptied: 'apt-get -s upgrade'
    then finds nothing to upgrade, which must not read as 'no updates pending'."""
    folder = tmp_path / "lists"
    if lists == "empty":
        folder.mkdir()
    calls: list[list[str]] = []

    def run(argv, timeout):
        calls.append(list(argv))
        return SimpleNamespace(returncode=0, stdout="", stderr="")

    check, ctx = build("updates", world={"run": run, "which": lambda c: "/usr/bin/" + c,
                                         "apt_lists": folder,
                                         "reboot_flag": tmp_path / "none"})
    with pytest.raises(CheckError) as info:
        check.run(ctx)
    assert str(info.value) == (
        f"apt has no package lists on testhost ({folder} holds no Release files), so it "
        "knows of no update; run apt-get update (apt-daily.timer does daily), or set "
        "refresh: true")
    assert calls == []


def test_apt_with_refresh_fetches_lists_instead_of_giving_up(tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def run(argv, timeout):
        calls.append(list(argv))
        return SimpleNamespace(returncode=0, stdout="", stderr="")

    check, ctx = build("updates", refresh=True,
                       world={"run": run, "which": lambda c: "/usr/bin/" + c,
                              "apt_lists": tmp_path / "lists",
                              "reboot_flag": tmp_path / "none"})
    result = check.run(ctx)
    assert calls[0] == ["apt-get", "update", "-qq"]
    assert result.measurement("security_updates") == 0
