"""updates: this Debian machine's real apt simulation, and dnf from recorded output."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from patrol.checks.base import CheckError, Status
from tests.conftest import require_command
from tests.helpers import build


@pytest.mark.slow
def test_real_apt_simulation_matches_dpkg() -> None:
    require_command("apt-get", "apt")
    check, ctx = build("updates")
    result = check.run(ctx)
    pending = result.measurement("pending_updates")
    security = result.measurement("security_updates")
    assert pending is not None and security is not None and 0 <= security <= pending
    assert result.diagnostics["manager"] == "apt"
    assert result.summary.startswith(f"{security:.0f} security update")
    assert "pending on testhost" in result.summary and "in all (apt)" in result.summary
    for package in result.diagnostics["packages"][:3]:  # the installed version is the "from"
        installed = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package["package"]],
                                   capture_output=True, text=True, check=True).stdout
        assert installed == package["from"]
    if security:
        assert result.status is Status.WARNING
        assert result.diagnostics["packages"][0]["security"] is True


# Lines as apt-get -s upgrade prints them ("Inst pkg [old] (new origins [arch])"),
# recorded on a Debian 12 host.
APT = (
    "NOTE: This is only a simulation!\n"
    "Inst base-files [12.4+deb12u11] (12.4+deb12u15 Debian:12.15/oldstable [amd64])\n"
    "Inst libgcrypt20 [1.10.1-3] (1.10.1-3+deb12u1 Debian:12.15/oldstable, "
    "Debian-Security:12/oldstable-security [amd64])\n"
    "Inst libssl3 [3.0.1-1] (3.0.2-0ubuntu1.10 Ubuntu:22.04/jammy-security [amd64]) []\n"
    "Conf base-files (12.4+deb12u15 Debian:12.15/oldstable [amd64])\n"
)


def _runner(outputs: dict[str, tuple[int, str]], calls: list[list[str]]):
    def run(argv, timeout):
        calls.append(list(argv))
        key = next(k for k in outputs if k in " ".join(argv))
        code, out = outputs[key]
        return SimpleNamespace(returncode=code, stdout=out, stderr="E: boom" if code else "")
    return run


def test_apt_security_origins_reboot_and_stale_lists(tmp_path: Path) -> None:
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "deb_InRelease").write_text("x")
    reboot = tmp_path / "reboot-required"
    reboot.write_text("*** System restart required ***\n")
    (tmp_path / "reboot-required.pkgs").write_text("linux-image-amd64\n")
    calls: list[list[str]] = []
    mtime = (lists / "deb_InRelease").stat().st_mtime
    world = {"run": _runner({"upgrade": (0, APT), "dpkg-query": (0, "ii \tbase-files\n")},
                            calls), "which": lambda c: "/usr/bin/" + c,
             "apt_lists": lists, "reboot_flag": reboot, "clock": lambda: mtime + 10 * 86400}
    check, ctx = build("updates", world=world)
    result = check.run(ctx)
    assert calls[0] == ["apt-get", "-s", "-o", "Debug::NoLocking=true", "upgrade"]
    assert result.measurement("broken_packages") == 0
    assert result.measurement("security_updates") == 2
    assert result.measurement("pending_updates") == 3
    assert result.measurement("reboot_required") == 1
    assert result.summary == ("2 security updates pending on testhost (warning at 1); "
                              "3 updates in all (apt); a reboot is required; package lists "
                              "are 10d old (warning at 7d)")
    assert [p["package"] for p in result.diagnostics["packages"]] == [
        "libgcrypt20", "libssl3", "base-files"]
    assert result.diagnostics["reboot_required_by"] == ["linux-image-amd64"]


def test_refresh_updates_the_lists_first_and_failures_are_unknown(tmp_path: Path) -> None:
    calls: list[list[str]] = []
    world = {"run": _runner({"update": (100, ""), "upgrade": (0, APT)}, calls),
             "which": lambda c: "/usr/bin/" + c, "apt_lists": tmp_path,
             "reboot_flag": tmp_path / "none"}
    check, ctx = build("updates", refresh=True, world=world)
    with pytest.raises(CheckError, match=r"apt-get update -qq failed \(exit 100\): E: boom"):
        check.run(ctx)
    assert calls == [["apt-get", "update", "-qq"]]


# A dpkg database (the format of /var/lib/dpkg/status, deb-control(5) / dpkg(1)
# "PACKAGE STATES") with one package in each state an interrupted install leaves.
DPKG_STATUS = "".join(
    f"Package: {name}\nStatus: install ok {state}\nPriority: optional\nSection: misc\n"
    f"Maintainer: Ops <ops@example.com>\nArchitecture: all\nVersion: 1.0\n"
    f"Description: {name}\n{extra}\n"
    for name, state, extra in [
        ("fine", "installed", ""), ("gone", "config-files", ""),
        ("midway", "half-configured", ""), ("unpacked-only", "unpacked", ""),
        # dpkg insists a package awaiting triggers names whose (deb-triggers(5)).
        ("waiting", "triggers-awaited", "Triggers-Awaited: fine\n")])


def test_packages_dpkg_left_half_done_are_counted_by_the_real_dpkg_query(
        tmp_path: Path) -> None:
    """A normal install passes through these states for a moment (dpkg.log is full of
    them), so the check reads the database as it is now, with the real dpkg-query."""
    require_command("dpkg-query", "dpkg")
    admin = tmp_path / "dpkg"
    (admin / "updates").mkdir(parents=True)
    (admin / "info").mkdir()
    (admin / "status").write_text(DPKG_STATUS)
    (admin / "available").write_text("")
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "deb_InRelease").write_text("x")
    real = build("updates")[0]._run
    calls: list[list[str]] = []

    def run(argv, timeout):
        calls.append(list(argv))
        if argv[0] == "dpkg-query":
            return real(argv, timeout)
        return SimpleNamespace(returncode=0, stdout="", stderr="")

    world = {"run": run, "which": lambda c: "/usr/bin/" + c, "apt_lists": tmp_path / "lists",
             "reboot_flag": tmp_path / "none", "dpkg_admindir": admin}
    check, ctx = build("updates", world=world)
    result = check.run(ctx)
    assert result.measurement("broken_packages") == 3
    assert result.status is Status.WARNING
    assert "3 packages left half-done: midway (half-configured), unpacked-only (unpacked), " \
        "waiting (triggers-awaited)" in result.summary
    assert [b["package"] for b in result.diagnostics["half_done_packages"]] == [
        "midway", "unpacked-only", "waiting"]


# dnf(8): check-update prints "name.arch  version  repository" and exits 100 when
# updates are available; updateinfo list prints "ADVISORY  Severity/Sec.  NEVRA".
DNF_CHECK = """
kernel.x86_64                     6.5.6-300.fc39                 updates
openssl-libs.x86_64               1:3.1.1-4.fc39                 updates
Obsoleting Packages
grub2-tools.x86_64                1:2.06-100.fc39                updates
    grub2-tools.x86_64            1:2.06-95.fc39                 @anaconda
"""
DNF_SECURITY = "FEDORA-2023-1a2b3c4d5e Important/Sec. openssl-libs-1:3.1.1-4.fc39.x86_64\n"


def test_dnf_from_cache_only(tmp_path: Path) -> None:
    calls: list[list[str]] = []
    world = {"run": _runner({"check-update": (100, DNF_CHECK), "updateinfo": (0, DNF_SECURITY)},
                            calls),
             "which": lambda c: "/usr/bin/dnf" if c == "dnf" else None,
             "apt_lists": tmp_path, "reboot_flag": tmp_path / "none"}
    check, ctx = build("updates", world=world)
    result = check.run(ctx)
    assert all("--cacheonly" in argv for argv in calls)
    assert result.measurement("pending_updates") == 2
    assert result.measurement("security_updates") == 1
    assert result.measurement("lists_age_seconds") is None
    assert result.summary == ("1 security update pending on testhost (warning at 1); "
                              "2 updates in all (dnf)")


def test_no_package_manager_is_unknown_with_the_reason() -> None:
    check, ctx = build("updates", world={"which": lambda c: None})
    with pytest.raises(CheckError, match="neither apt-get nor dnf is installed on testhost"):
        check.run(ctx)
