"""The shipped daily inspection profile (configs/examples/daily-inspection.yaml), run
as an operator would drop it on a server: ``patrol validate`` and ``patrol check`` on
this machine.

"Runs clean" means every check that is not OK is either a true finding on this host or
UNKNOWN because this host lacks the data source, with a summary saying how to provide
one. This machine (the CI machine is the same kind) is a Debian VM without systemd as
PID 1, without a running time service, without SMART disks or md arrays, busy with
other test runs, and with security updates pending: the assertions below name each
of those outcomes and check the host really is that way, so a check that starts
lying in either direction fails here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
PROFILE = ROOT / "configs" / "examples" / "daily-inspection.yaml"
SITE_MARKER = "\n  # --- SITE-SPECIFIC"


def _patrol(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "patrol.cli", *argv], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout, check=False)


def _names(text: str) -> list[str]:
    return re.findall(r"^  - name: (\S+)", text, flags=re.MULTILINE)


def _measurement(check: dict[str, Any], name: str) -> float:
    return next(m["value"] for m in check["measurements"] if m["name"] == name)


def _md_arrays() -> bool:
    try:
        return bool(re.search(r"^md\d+ :", Path("/proc/mdstat").read_text(), re.MULTILINE))
    except OSError:
        return False


def _time_service_running() -> bool:
    wanted = {"chronyd", "ntpd", "systemd-timesyncd", "systemd-timesyn"}
    return any(p.info["name"] in wanted for p in psutil.process_iter(["name"]))


def test_the_shipped_profile_validates_and_names_no_site() -> None:
    done = _patrol("validate", str(PROFILE), timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == f"{PROFILE}: OK (15 checks)"
    shipped = PROFILE.read_text().split(SITE_MARKER)[0]
    assert "example.com" not in shipped and "example.org" not in shipped


def test_the_site_specific_block_validates_once_uncommented(tmp_path: Path) -> None:
    """Operators uncomment it as it stands: it must not have rotted."""
    head, marker, block = PROFILE.read_text().partition(SITE_MARKER)
    assert marker, "the profile lost its SITE-SPECIFIC block"
    # YAML lines in the block are '  # - ...' or '  #   ...'; prose lines are not.
    uncommented = [line.replace("  # ", "  ", 1) for line in block.splitlines()
                   if line.startswith(("  # - ", "  #   "))]
    site = tmp_path / "daily-inspection.yaml"
    site.write_text(head + "\n" + "\n".join(uncommented) + "\n")
    done = _patrol("validate", str(site), timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == f"{site}: OK (19 checks)"
    assert _names("\n".join(uncommented)) == ["inspect-dns-site", "inspect-ports-site",
                                              "inspect-clock-reference", "inspect-https"]


@pytest.mark.slow
def test_the_daily_profile_runs_clean_on_this_host() -> None:
    done = _patrol("check", "--config", str(PROFILE), "--json")
    assert "Traceback" not in done.stderr, done.stderr
    report = json.loads(done.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert sorted(checks) == sorted(_names(PROFILE.read_text()))
    for check in checks.values():  # a crash or a hang is never an acceptable outcome
        assert not {"traceback", "stack"} & set(check.get("diagnostics", {})), check
        assert " crashed on " not in check["summary"], check["summary"]
        assert " timed out after " not in check["summary"], check["summary"]

    def status(name: str) -> str:
        return checks[name]["status"]

    def summary(name: str) -> str:
        return checks[name]["summary"]

    # True findings that depend on what else runs here: only when the figure is over
    # the profile's threshold (85 % busy; load 1 per core over 5 minutes).
    if status("inspect-cpu") != "OK":
        assert _measurement(checks["inspect-cpu"], "used_ratio") >= 0.85, summary("inspect-cpu")
    if status("inspect-load") != "OK":
        assert _measurement(checks["inspect-load"], "load5_per_core") >= 1, summary("inspect-load")
    # A true finding on this image: security updates are pending (the count changes as
    # the image is rebuilt; the kind of outcome does not).
    assert status("inspect-updates") == "WARNING", summary("inspect-updates")
    assert re.match(r"\d+ security updates? pending on ", summary("inspect-updates"))
    assert _measurement(checks["inspect-updates"], "security_updates") >= 1
    # Missing data sources: UNKNOWN, with how to provide one, and only where missing.
    unknown_here = {
        "inspect-core-services": (not os.path.isdir("/run/systemd/system"),
                                  "run the agent on a host booted with systemd"),
        "inspect-disk-health": (shutil.which("smartctl") is None and not _md_arrays(),
                                "apt-get install smartmontools"),
        "inspect-clock": (not _time_service_running(),
                          # installed but stopped: start it; missing: install chrony
                          "start it (systemctl start" if shutil.which("chronyc")
                          or shutil.which("ntpq") else "install and start chrony"),
    }
    for name, (missing, how) in unknown_here.items():
        if missing:
            assert status(name) == "UNKNOWN", summary(name)
            assert how in summary(name), summary(name)
        else:
            assert status(name) != "UNKNOWN", summary(name)
    judged_above = {"inspect-cpu", "inspect-load", "inspect-updates", *unknown_here}
    not_ok = {n: summary(n) for n in checks if n not in judged_above and status(n) != "OK"}
    assert not_ok == {}
