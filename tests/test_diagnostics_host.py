"""Host facts: exact values from injected fixtures, and a sane real run."""

from __future__ import annotations

import platform
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest

from patrol.agent.diagnostics.host import HostFactsCache, host_facts, os_pretty_name

BOOT = 1_795_000_000.0  # 2026-11-18T11:06:40Z


def _addr(family: int, address: str, netmask: str | None) -> SimpleNamespace:
    return SimpleNamespace(family=family, address=address, netmask=netmask, broadcast=None,
                           ptp=None)


FAKE_PSUTIL = SimpleNamespace(
    boot_time=lambda: BOOT,
    cpu_count=lambda: 8,
    virtual_memory=lambda: SimpleNamespace(total=16 * 1024**3),
    net_if_addrs=lambda: {
        "lo": [_addr(socket.AF_INET, "127.0.0.1", "255.0.0.0"),
               _addr(socket.AF_INET6, "::1", None)],
        "eth0": [_addr(socket.AF_PACKET, "52:54:00:12:34:56", None),
                 _addr(socket.AF_INET, "10.0.0.5", "255.255.255.0"),
                 _addr(socket.AF_INET6, "fe80::1%eth0", "ffff:ffff:ffff:ffff::")],
    },
)
FAKE_PLATFORM = SimpleNamespace(system=lambda: "Linux", release=lambda: "6.1.0-18-amd64",
                                machine=lambda: "x86_64", python_version=lambda: "3.11.2")


def _facts(os_release: Path, **overrides: object) -> dict:
    world = {"os_release": os_release, "ps": FAKE_PSUTIL, "clock": lambda: BOOT + 3600.5,
             "hostname": lambda: "db-01", "fqdn": lambda: "db-01.prod.example",
             "plat": FAKE_PLATFORM, "agent_version": lambda: "0.3.1"}
    world.update(overrides)
    return host_facts(**world)


def test_host_facts_from_fixtures(tmp_path: Path) -> None:
    release = tmp_path / "os-release"
    release.write_text('NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'
                       "VERSION_ID=\"12\"\n")
    assert _facts(release) == {
        "hostname": "db-01",
        "fqdn": "db-01.prod.example",
        "os": "Debian GNU/Linux 12 (bookworm)",
        "kernel": "6.1.0-18-amd64",
        "architecture": "x86_64",
        "boot_time": BOOT,
        "boot_time_iso": "2026-11-18T11:06:40+00:00",
        "uptime_seconds": 3600.5,
        "cpu_count": 8,
        "memory_total_bytes": 17179869184,
        "addresses": [
            {"interface": "eth0", "family": "ipv4", "address": "10.0.0.5",
             "netmask": "255.255.255.0", "loopback": False},
            {"interface": "eth0", "family": "ipv6", "address": "fe80::1%eth0",
             "netmask": "ffff:ffff:ffff:ffff::", "loopback": False},
            {"interface": "lo", "family": "ipv4", "address": "127.0.0.1",
             "netmask": "255.0.0.0", "loopback": True},
            {"interface": "lo", "family": "ipv6", "address": "::1", "netmask": None,
             "loopback": True},
        ],
        "agent_version": "0.3.1",
        "python_version": "3.11.2",
    }


@pytest.mark.parametrize(("content", "expected"), [
    ('PRETTY_NAME="Ubuntu 22.04.4 LTS"\n', "Ubuntu 22.04.4 LTS"),
    ("PRETTY_NAME='Rocky Linux 9.3 (Blue Onyx)'\n", "Rocky Linux 9.3 (Blue Onyx)"),
    ("# comment\nPRETTY_NAME=Alpine\\ Linux\\ v3.19\n", "Alpine Linux v3.19"),
    ('NAME="Fedora Linux"\nVERSION="39 (Server Edition)"\n', "Fedora Linux 39 (Server Edition)"),
    ("ID=weird\n", None),
], ids=["double-quoted", "single-quoted", "escaped-spaces", "name-version-fallback", "no-name"])
def test_os_pretty_name(tmp_path: Path, content: str, expected: str | None) -> None:
    path = tmp_path / "os-release"
    path.write_text(content)
    assert os_pretty_name(path) == expected


def test_missing_os_release_falls_back_to_platform_system(tmp_path: Path) -> None:
    assert _facts(tmp_path / "absent")["os"] == "Linux"


def test_cache_reuses_facts_but_keeps_uptime_current() -> None:
    calls: list[int] = []
    now = {"wall": BOOT + 100.0, "mono": 0.0}

    def collect() -> dict:
        calls.append(1)
        return {"hostname": f"h{len(calls)}", "boot_time": BOOT, "uptime_seconds": 100.0}

    cache = HostFactsCache(ttl=300, collect=collect, clock=lambda: now["wall"],
                           monotonic=lambda: now["mono"])
    assert cache.get() == {"hostname": "h1", "boot_time": BOOT, "uptime_seconds": 100.0}
    now.update(wall=BOOT + 250.0, mono=150.0)
    assert cache.get() == {"hostname": "h1", "boot_time": BOOT, "uptime_seconds": 250.0}
    now.update(wall=BOOT + 400.0, mono=300.0)
    assert cache.get()["hostname"] == "h2"
    assert len(calls) == 2


def test_real_host_facts() -> None:
    facts = host_facts()
    assert facts["hostname"] == socket.gethostname()
    assert facts["kernel"] == platform.release()
    assert facts["python_version"] == platform.python_version()
    assert facts["cpu_count"] >= 1 and facts["memory_total_bytes"] > 0
    assert 0 < facts["uptime_seconds"] < 10 * 365 * 86400
    assert any(a["address"] == "127.0.0.1" and a["loopback"] for a in facts["addresses"])
    assert facts["agent_version"]
