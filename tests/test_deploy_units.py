"""The shipped systemd units, ``patrol install-units`` and ``patrol init``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from patrol import install_units as units
from patrol import starter_config
from patrol.agent.config import load_config
from patrol.cli import main
from patrol.collector.config import load_collector_config
from tests.conftest import require_command

SYSTEMD_DIR = Path(__file__).resolve().parent.parent / "deploy" / "systemd"


def settings(path: Path) -> dict[str, list[str]]:
    """Every ``Key=value`` of a unit file (repeated keys keep each value)."""
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


@pytest.mark.parametrize("name", units.UNITS)
def test_units_are_hardened(name: str) -> None:
    unit = settings(SYSTEMD_DIR / name)
    for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                       ("PrivateTmp", "yes"), ("Restart", "on-failure"),
                       ("StandardOutput", "journal"), ("User", "patrol")):
        assert unit[key] == [value], key
    assert unit["ProtectHome"][0] in ("yes", "read-only")
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    # Only the state directory is writable.
    state = unit["StateDirectory"][0]
    assert unit["ReadWritePaths"] == [f"/var/lib/{state}"]


def test_only_the_agent_holds_capabilities_and_exactly_the_documented_ones() -> None:
    agent = settings(SYSTEMD_DIR / "patrol-agent.service")
    collector = settings(SYSTEMD_DIR / "patrol-collector.service")
    assert agent["CapabilityBoundingSet"] == ["CAP_DAC_READ_SEARCH CAP_SYS_PTRACE"]
    assert agent["AmbientCapabilities"] == agent["CapabilityBoundingSet"]
    assert "systemd-journal" in agent["SupplementaryGroups"][0]
    assert collector["CapabilityBoundingSet"] == [""]
    comments = (SYSTEMD_DIR / "patrol-agent.service").read_text()
    for capability in ("CAP_DAC_READ_SEARCH", "CAP_SYS_PTRACE", "systemd-journal"):
        assert f"#   {capability}" in comments or f"group {capability}" in comments


@pytest.mark.slow
def test_installed_units_pass_systemd_analyze_verify(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    analyze = require_command("systemd-analyze", "systemd")
    patrol = tmp_path / "bin" / "patrol"
    patrol.parent.mkdir()
    patrol.write_text("#!/bin/sh\n")
    patrol.chmod(0o755)
    assert main(["install-units", "--root", str(tmp_path), "--patrol", str(patrol)]) == 0
    unit_dir = tmp_path / "etc" / "systemd" / "system"
    installed = [unit_dir / name for name in units.UNITS]
    for path in installed:
        assert f"ExecStart={patrol} " in path.read_text()
    assert (tmp_path / "etc" / "sysusers.d" / "patrol.conf").read_text().count("u patrol") == 1

    verify = subprocess.run([analyze, "verify", "--man=no", *map(str, installed)],
                            capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stderr
    assert "patrol-" not in verify.stderr, verify.stderr  # no warning about our units

    # The same check catches a broken unit: one whose command is not there.
    broken = unit_dir / "patrol-broken.service"
    broken.write_text(installed[0].read_text().replace(str(patrol), "/nonexistent/patrol"))
    refused = subprocess.run([analyze, "verify", "--man=no", str(broken)],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "/nonexistent/patrol" in refused.stderr


FACTS = starter_config.HostFacts(mounts=["/", "/srv/data"], services=["ssh.service",
                                 "cron.service"], database_ports=[3306, 5432, 6379])


def test_init_agent_writes_a_layout_and_a_config_that_validates(tmp_path: Path) -> None:
    etc = tmp_path / "etc" / "patrol"
    text = starter_config.agent_config(FACTS, etc)
    made = starter_config.make_layout(etc, starter_config.AGENT_SECRETS)
    (etc / "agent.yaml").write_text(text)
    config = load_config(str(etc / "agent.yaml"))
    by_name = {c.config.name: c.config for c in config.checks}
    assert by_name["disk"].paths == ["/", "/srv/data"]
    assert by_name["services"].units == ["ssh.service", "cron.service"]
    assert {"postgres-connections", "mysql-connections", "redis-connections"} <= set(by_name)
    assert (etc / "conf.d").is_dir()
    # The secret is a fresh random token only its owner can read, and not in the config.
    assert made == [etc / "secrets" / "agent-api-token"]
    secret = made[0].read_text().strip()
    assert len(secret) >= 32 and secret not in text
    assert made[0].stat().st_mode & 0o777 == 0o600
    assert (etc / "secrets").stat().st_mode & 0o777 == 0o700


def test_init_keeps_existing_secrets_and_existing_configs(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    target = tmp_path / "collector.yaml"
    assert main(["init", "collector", "--output", str(target)]) == 0
    load_collector_config(str(target))
    token = (tmp_path / "secrets" / "operator-token").read_text()
    assert main(["init", "collector", "--output", str(target)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert main(["init", "collector", "--output", str(target), "--force"]) == 0
    assert (tmp_path / "secrets" / "operator-token").read_text() == token



def test_the_collectors_reports_block_validates_once_uncommented(tmp_path: Path) -> None:
    """``patrol init collector`` offers scheduled reports commented out (they need a
    mail server); uncommented as written, the config loads and schedules both."""
    text = starter_config.collector_config(starter_config.HostFacts([], [], []), tmp_path)
    assert "# reports:" in text
    opened = text.replace("# reports:", "reports:").replace("#   ", "  ")
    target = tmp_path / "collector.yaml"
    target.write_text(opened)
    (tmp_path / "secrets").mkdir()
    for letter, name in zip("ab", starter_config.COLLECTOR_SECRETS, strict=True):
        (tmp_path / "secrets" / name).write_text(letter * 32 + "\n")
    reports = load_collector_config(str(target)).reports
    assert reports is not None and sorted(reports.scheduled()) == ["daily", "retro"]
    assert reports.scheduled()["retro"].recipients == ["ops-lead@example.com"]

def test_init_on_this_host_validates(tmp_path: Path) -> None:
    """Whatever this machine has (containers have no systemd), the result loads."""
    target = tmp_path / "agent.yaml"
    assert main(["init", "agent", "-o", str(target)]) == 0
    assert load_config(str(target)).checks


def test_init_suggests_postgresql_for_the_collector_only_when_one_listens() -> None:
    with_pg = starter_config.collector_config(FACTS)
    without = starter_config.collector_config(starter_config.HostFacts([], [], []))
    assert "# store: postgresql://" in with_pg and "postgresql" not in without


def test_init_reads_the_running_services_from_systemctl_text() -> None:
    listing = ("cron.service   loaded active running Regular background program daemon\n"
               "ssh.service    loaded active running OpenBSD Secure Shell server\n"
               "\n"
               "user@0.service loaded active running User Manager for UID 0\n")
    assert starter_config.service_names(listing) == ["cron.service", "ssh.service",
                                                     "user@0.service"]
