"""Listen: the set of listening TCP and UDP ports, and which process holds each.

A port that should be open and is not (the database did not come back after a
reboot) and a port that nobody opened on purpose (a debug server, a miner, a
forgotten ``python -m http.server``) are both findings. What is "on purpose" comes
from ``expected`` (must listen), ``allowed`` (may listen) and, with ``learn: true``
(the default), the set seen on the check's first run: later newcomers are reported
until they are added to ``allowed``. The learned set lives in the agent's memory, so
a restart learns again; list the ports to make the policy survive restarts.

Entries are ``PROTO/PORT`` or ``PROTO/FIRST-LAST`` with PROTO ``tcp``, ``udp`` or
``*`` (``tcp/22``, ``udp/123``, ``*/9731``, ``tcp/8000-8099``). A listener is one
protocol and port, whatever addresses it binds (0.0.0.0 and :: are one listener).

By default listeners bound only to loopback are left out (nothing outside the host
reaches them; ``loopback: true`` includes them), and so are UDP sockets on ports
from the ephemeral range (``net.ipv4.ip_local_port_range``): unconnected client
sockets of resolvers and NTP clients look like UDP listeners but come and go.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import psutil

from patrol.checks.base import ConfigClass, Measurement, MeasurementSpec, Result, RunContext, Status
from patrol.checks.schemas import config_schema
from patrol.checks.thresholds import limit_note

if TYPE_CHECKING:
    from patrol.checks.schemas.listen import ListenConfig

_ENTRY = re.compile(r"^(tcp|udp|\*)/(\d{1,5})(?:-(\d{1,5}))?$")
PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


@dataclass(frozen=True, slots=True)
class PortRule:
    proto: str
    first: int
    last: int

    def matches(self, proto: str, port: int) -> bool:
        return self.proto in ("*", proto) and self.first <= port <= self.last


def parse_rule(text: str) -> PortRule:
    match = _ENTRY.match(text.strip().lower())
    if not match:
        raise ValueError(f"{text!r} is not a port entry; write it like tcp/22, udp/123, "
                         "*/9731 or tcp/8000-8099")
    proto, first, last = match.group(1), int(match.group(2)), int(match.group(3) or match.group(2))
    if not 1 <= first <= last <= 65535:
        raise ValueError(f"{text!r}: ports are 1-65535, the first not above the last")
    return PortRule(proto, first, last)


@dataclass(frozen=True, slots=True)
class Socket:
    proto: str
    address: str
    port: int
    pid: int | None


def listening_sockets() -> list[Socket]:
    """TCP sockets in LISTEN and unconnected bound UDP sockets, from psutil (which
    reads /proc/net/{tcp,udp}{,6} and maps inodes to PIDs; root sees every PID)."""
    out = []
    for conn in psutil.net_connections(kind="inet"):
        if not conn.laddr:
            continue
        if conn.type == socket.SOCK_STREAM and conn.status == psutil.CONN_LISTEN:
            out.append(Socket("tcp", conn.laddr.ip, conn.laddr.port, conn.pid))
        elif conn.type == socket.SOCK_DGRAM and not conn.raddr:
            out.append(Socket("udp", conn.laddr.ip, conn.laddr.port, conn.pid))
    return out


def ephemeral_range(path: Path = PORT_RANGE) -> tuple[int, int]:
    try:
        low, high = path.read_text(encoding="ascii").split()[:2]
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # the kernel's default


def process_name(pid: int | None) -> str:
    if pid is None:
        return "?"
    try:
        return psutil.Process(pid).name()
    except psutil.Error:
        return "?"


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


class ListenCheck:
    """An unexpected listener is a warning, a missing expected one critical."""

    type: ClassVar[str] = "listen"
    Config: ClassVar[ConfigClass] = config_schema("listen", "ListenConfig")
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = (
        MeasurementSpec("listeners", "distinct listening protocol/port pairs watched"),
        MeasurementSpec("unexpected_listeners", "listeners neither expected, allowed nor "
                        "learned on the first run", True, 1, None),
        MeasurementSpec("missing_listeners", "expected ports nothing listens on",
                        True, None, 1),
    )
    REQUIRES: ClassVar[tuple[str, ...]] = ()
    DIAGNOSTICS: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        config: ListenConfig,
        sockets: Callable[[], Iterable[Socket]] = listening_sockets,
        ephemeral: Callable[[], tuple[int, int]] = ephemeral_range,
        name_of: Callable[[int | None], str] = process_name,
    ) -> None:
        self.config = config
        self._sockets = sockets
        self._ephemeral = ephemeral
        self._name_of = name_of
        self._expected = [parse_rule(e) for e in config.expected]
        self._allowed = [parse_rule(e) for e in config.allowed]
        self._learned: set[tuple[str, int]] | None = None

    def _listeners(self) -> dict[tuple[str, int], list[Socket]]:
        low, high = self._ephemeral()
        found: dict[tuple[str, int], list[Socket]] = {}
        for sock in self._sockets():
            if sock.proto == "udp" and low <= sock.port <= high:
                continue
            found.setdefault((sock.proto, sock.port), []).append(sock)
        if not self.config.loopback:
            found = {k: v for k, v in found.items()
                     if not all(_is_loopback(s.address) for s in v)}
        return found

    def _describe(self, key: tuple[str, int], socks: list[Socket]) -> dict[str, Any]:
        pids = sorted({s.pid for s in socks if s.pid is not None})
        return {"listener": f"{key[0]}/{key[1]}",
                "addresses": sorted({s.address for s in socks}),
                "processes": [{"pid": pid, "name": self._name_of(pid)} for pid in pids]}

    def run(self, ctx: RunContext) -> Result:
        listeners = self._listeners()
        if self._learned is None:
            self._learned = set(listeners) if self.config.learn else set()
        known = [*self._expected, *self._allowed]
        unexpected = sorted(k for k in listeners if k not in self._learned
                            and not any(r.matches(*k) for r in known))
        missing = [e for e, rule in zip(self.config.expected, self._expected, strict=True)
                   if not any(rule.matches(*k) for k in listeners)]
        measurements = (Measurement("listeners", float(len(listeners))),
                        Measurement("unexpected_listeners", float(len(unexpected))),
                        Measurement("missing_listeners", float(len(missing))))
        judged = [ctx.judge(m) for m in measurements]
        status = Status.worst(*judged)
        described = [self._describe(k, listeners[k]) for k in unexpected]
        notes = [limit_note(ctx.evaluator.levels(m.name), s, m.value)
                 for m, s in zip(measurements, judged, strict=True)]
        parts = []
        if missing:
            parts.append(f"nothing listens on expected {', '.join(missing)}{notes[2]}")
        if unexpected:
            who = ", ".join(
                f"{d['listener']} ({', '.join(p['name'] for p in d['processes']) or '?'})"
                for d in described[:3])
            more = f" and {len(unexpected) - 3} more" if len(unexpected) > 3 else ""
            parts.append(f"unexpected listener{'s' * (len(unexpected) > 1)} {who}{more}"
                         f"{notes[1]}")
        if parts:
            summary = f"On {ctx.hostname}: {'; '.join(parts)}"
        else:
            summary = (f"{len(listeners)} listening port{'s' * (len(listeners) != 1)} on "
                       f"{ctx.hostname}, all expected")
        diagnostics: dict[str, Any] = {
            "unexpected": described, "missing": missing,
            "listening": [self._describe(k, v) for k, v in sorted(listeners.items())],
        }
        if any(sock.pid is None for socks in listeners.values() for sock in socks):
            diagnostics["note"] = ("some sockets show no process: the kernel tells only root "
                                   "(or CAP_SYS_PTRACE) which process owns another user's "
                                   "socket; run the agent as root to see them")
        return Result(status, summary, measurements, diagnostics)
