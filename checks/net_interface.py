"""Network interfaces: link state, speed, duplex, and error and drop rates.

Which interfaces, by default: every interface backed by hardware, i.e. whose
``/sys/class/net/NAME`` link does not point into ``/devices/virtual/`` (that leaves
out lo, veth, bridges, bonds, tunnels, dummies: their "link" is software, and a
container host has hundreds of veths that come and go). ``interfaces:`` (globs)
names exactly what to watch, virtual or not, since the operator asked for it.
Interfaces that are administratively down (``ip link set X down``) are switched off
on purpose and are not judged unless named in ``interfaces:``.

``link_up`` is 1 when the kernel says the link is usable (``operstate`` ``up``, or
``unknown`` with carrier, as drivers without link detection report). Error and drop
*ratios* are per packet since the previous run, from the kernel's cumulative
counters: a ratio means the same on a 100 Mbit and a 100 Gbit link, where a
per-second rate does not. The first run, and a run after a counter reset, emit no
ratios rather than guess.
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import psutil

from patrol.checks.base import (
    CheckError,
    ConfigClass,
    Measurement,
    MeasurementSpec,
    Result,
    RunContext,
    Status,
)
from patrol.checks.schemas import config_schema
from patrol.checks.thresholds import limit_note
from patrol.checks.worst_item import worst_item
from patrol.contract.units import format_ratio

if TYPE_CHECKING:
    from patrol.checks.schemas.net_interface import NetInterfaceConfig

SYS_CLASS_NET = Path("/sys/class/net")
_IFF_UP = 0x1


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):  # e.g. EINVAL for carrier of a down link
        return None


def link_state(root: Path, name: str) -> dict[str, Any]:
    """What sysfs says about one interface: virtual or not, admin up, operstate,
    carrier, speed (Mb/s, None when unknown) and duplex."""
    folder = root / name
    flags = _read(folder / "flags")
    speed = _read(folder / "speed")
    return {
        "virtual": "/devices/virtual/" in os.path.realpath(folder),
        "admin_up": bool(int(flags, 16) & _IFF_UP) if flags else False,
        "operstate": _read(folder / "operstate") or "unknown",
        "carrier": _read(folder / "carrier") == "1",
        "speed_mbps": int(speed) if speed and speed.lstrip("-").isdigit() and int(speed) > 0
        else None,
        "duplex": _read(folder / "duplex"),
    }


class NetInterfaceCheck:
    """Link down: critical; error ratio warning 0.1 %, critical 1 %; drop ratio warning
    1 %, critical 5 %; half duplex: warning."""

    type: ClassVar[str] = "net_interface"
    Config: ClassVar[ConfigClass] = config_schema("net_interface", "NetInterfaceConfig")
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = (
        MeasurementSpec("link_up", "1 when the link is usable, 0 when down",
                        False, None, 0, primary=True),
        MeasurementSpec("speed_bytes_per_second", "negotiated link speed (absent when the "
                        "driver does not report one)", higher_is_worse=False),
        MeasurementSpec("full_duplex", "1 full duplex, 0 half duplex (absent when unknown)",
                        False, 0, None),
        MeasurementSpec("error_ratio", "receive and transmit errors per packet since the "
                        "previous run", True, 0.001, 0.01),
        MeasurementSpec("drop_ratio", "receive and transmit drops per packet since the "
                        "previous run", True, 0.01, 0.05),
        MeasurementSpec("errors", "errors since the previous run"),
        MeasurementSpec("drops", "drops since the previous run"),
    )
    REQUIRES: ClassVar[tuple[str, ...]] = ()
    DIAGNOSTICS: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        config: NetInterfaceConfig,
        sys_class_net: Path = SYS_CLASS_NET,
        counters: Callable[..., dict[str, Any]] = psutil.net_io_counters,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._root = sys_class_net
        self._counters = counters
        self._clock = clock
        self._previous: dict[str, tuple[float, float, float]] = {}  # packets, errs, drops

    def _selected(self) -> dict[str, dict[str, Any]]:
        try:
            names = sorted(p.name for p in self._root.iterdir())
        except OSError as exc:
            raise CheckError(f"cannot list {self._root}: {exc.strerror}; the check needs "
                             "Linux sysfs mounted at /sys") from exc
        chosen = self.config.interfaces
        out = {}
        for name in names:
            if any(fnmatch.fnmatchcase(name, g) for g in self.config.exclude):
                continue
            if chosen is not None and not any(fnmatch.fnmatchcase(name, g) for g in chosen):
                continue
            state = link_state(self._root, name)
            if chosen is None and (state["virtual"] or not state["admin_up"]):
                continue
            out[name] = state
        return out

    def _deltas(self, name: str, nic: Any) -> tuple[float, float, float] | None:
        now = (float(nic.packets_recv + nic.packets_sent), float(nic.errin + nic.errout),
               float(nic.dropin + nic.dropout))
        previous, self._previous[name] = self._previous.get(name), now
        if previous is None:
            return None
        deltas = tuple(a - b for a, b in zip(now, previous, strict=True))
        return None if min(deltas) < 0 else (deltas[0], deltas[1], deltas[2])

    def _measure(self, name: str, state: dict[str, Any], nic: Any) -> list[Measurement]:
        up = state["operstate"] == "up" or (state["operstate"] == "unknown"
                                            and state["admin_up"] and state["carrier"])
        out = [Measurement("link_up", 1.0 if up else 0.0, name)]
        if state["speed_mbps"]:
            out.append(Measurement("speed_bytes_per_second", state["speed_mbps"] * 125_000.0,
                                   name))
        if state["duplex"] in ("full", "half"):
            out.append(Measurement("full_duplex", float(state["duplex"] == "full"), name))
        deltas = self._deltas(name, nic) if nic is not None else None
        if deltas is not None:
            packets, errors, drops = deltas
            seen = packets + errors + drops  # errored frames may not count as packets
            out += [Measurement("errors", errors, name), Measurement("drops", drops, name)]
            if seen > 0:
                out += [Measurement("error_ratio", errors / seen, name),
                        Measurement("drop_ratio", drops / seen, name)]
        return out

    def run(self, ctx: RunContext) -> Result:
        selected = self._selected()
        if not selected:
            which = "matching interfaces:" if self.config.interfaces else "hardware interfaces"
            raise CheckError(f"no {which} on {ctx.hostname}; list virtual ones explicitly "
                             "with interfaces: [\"br0\", \"bond*\"]")
        counters = self._counters(pernic=True)
        measurements: list[Measurement] = []
        per: dict[str, tuple[Status, str]] = {}
        for name, state in selected.items():
            found = self._measure(name, state, counters.get(name))
            measurements += found
            per[name] = self._explain(ctx, name, state, found)
        status, summary = worst_item(per, "interface", "interfaces")
        if status is Status.OK and len(per) > 1:
            summary = f"{len(per)} interfaces up on {ctx.hostname}: {', '.join(per)}"
        return Result(status, summary, tuple(measurements), {"interfaces": selected})

    @staticmethod
    def _explain(ctx: RunContext, name: str, state: dict[str, Any],
                 found: list[Measurement]) -> tuple[Status, str]:
        judged = {m.name: (ctx.judge(m), m.value) for m in found}
        status = Status.worst(*(s for s, _ in judged.values()))
        host = ctx.hostname
        speed = f" at {state['speed_mbps']:,} Mb/s" if state["speed_mbps"] else ""
        if status is Status.OK:
            return status, f"{name} is up{speed} on {host}"
        reason = next(n for n in ("link_up", "error_ratio", "drop_ratio", "full_duplex")
                      if n in judged and judged[n][0] is status)
        value = judged[reason][1]
        note = limit_note(ctx.evaluator.levels(reason, name), status, value)
        if reason == "link_up":
            return status, f"{name} is down on {host} (operstate {state['operstate']})"
        if reason == "full_duplex":
            return status, f"{name} runs half duplex{speed} on {host}{note}"
        what = "errors" if reason == "error_ratio" else "drops"
        return status, (f"{name} has {format_ratio(value)} {what} per packet on {host}{note}; "
                        f"{judged[what][1]:,.0f} since the previous run")
