"""Host facts: which machine breached, running what, up since when.

These change rarely (addresses and the OS only on reconfiguration or upgrade), so
:class:`HostFactsCache` keeps them for a few minutes and recomputes only the uptime,
which is derived from the cached boot time and the clock. Times are epoch seconds
plus an ISO-8601 UTC copy for humans; sizes in bytes.
"""

from __future__ import annotations

import platform
import shlex
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil

_FAMILIES = {socket.AF_INET: "ipv4", socket.AF_INET6: "ipv6"}


def _agent_version() -> str:
    from patrol.agent.version import AGENT_VERSION

    return AGENT_VERSION


def iso(epoch: float) -> str:
    """Epoch seconds as ISO-8601 in UTC, to the second."""
    return datetime.fromtimestamp(epoch, UTC).replace(microsecond=0).isoformat()


def os_pretty_name(path: str | Path = "/etc/os-release") -> str | None:
    """``PRETTY_NAME`` from os-release (shell-quoted values), else ``NAME VERSION``."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        try:
            parts = shlex.split(raw)
        except ValueError:
            parts = [raw.strip("'\"")]
        fields[key.strip()] = " ".join(parts)
    if fields.get("PRETTY_NAME"):
        return fields["PRETTY_NAME"]
    joined = " ".join(v for v in (fields.get("NAME"), fields.get("VERSION")) if v)
    return joined or None


def addresses(net_if_addrs: Callable[[], dict[str, list[Any]]]) -> list[dict[str, Any]]:
    """IPv4/IPv6 addresses per interface, loopback included but marked, sorted."""
    out: list[dict[str, Any]] = []
    for interface, entries in net_if_addrs().items():
        for entry in entries:
            family = _FAMILIES.get(entry.family)
            if family is None:  # link-layer (MAC) addresses say nothing useful here
                continue
            address = entry.address
            loopback = interface == "lo" or address in ("::1",) or address.startswith("127.")
            out.append({"interface": interface, "family": family, "address": address,
                        "netmask": entry.netmask, "loopback": loopback})
    out.sort(key=lambda a: (a["loopback"], a["interface"], a["family"], a["address"]))
    return out


def host_facts(
    *,
    os_release: str | Path = "/etc/os-release",
    ps: ModuleType | Any = psutil,
    clock: Callable[[], float] = time.time,
    hostname: Callable[[], str] = socket.gethostname,
    fqdn: Callable[[], str] = socket.getfqdn,
    plat: ModuleType | Any = platform,
    agent_version: Callable[[], str] = _agent_version,
) -> dict[str, Any]:
    """Facts about this host (keys documented by the tests in test_diagnostics_host)."""
    boot = float(ps.boot_time())
    return {
        "hostname": hostname(),
        "fqdn": fqdn(),
        "os": os_pretty_name(os_release) or plat.system(),
        "kernel": plat.release(),
        "architecture": plat.machine(),
        "boot_time": boot,
        "boot_time_iso": iso(boot),
        "uptime_seconds": round(max(0.0, clock() - boot), 3),
        "cpu_count": ps.cpu_count(),
        "memory_total_bytes": int(ps.virtual_memory().total),
        "addresses": addresses(ps.net_if_addrs),
        "agent_version": agent_version(),
        "python_version": plat.python_version(),
    }


class HostFactsCache:
    """Host facts, refreshed at most every ``ttl`` seconds; uptime always current."""

    def __init__(self, ttl: float = 300.0, *, collect: Callable[[], dict[str, Any]] = host_facts,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._collect = collect
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._facts: dict[str, Any] | None = None
        self._taken = 0.0

    def get(self) -> dict[str, Any]:
        with self._lock:
            now = self._monotonic()
            if self._facts is None or now - self._taken >= self._ttl:
                self._facts = self._collect()
                self._taken = now
            facts = dict(self._facts)
        facts["uptime_seconds"] = round(max(0.0, self._clock() - facts["boot_time"]), 3)
        return facts
