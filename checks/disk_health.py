"""Disk health: SMART verdict and the attributes that predict failure, and the state
of Linux software RAID (md) arrays.

SMART comes from ``smartctl --json`` (smartmontools 7+, JSON format version 1): the
devices from ``smartctl --scan --json`` (or ``devices:``), then ``smartctl --json
-H -A -i DEVICE`` each. Per device: the drive's own verdict (``smart_status.passed``),
and the counters that precede most failures (Backblaze's drive statistics and the
smartmontools wiki agree on these): reallocated (ATA 5), pending (197) and offline
uncorrectable (198) sectors, temperature; for NVMe the media errors, wear
(``percentage_used``) and spare capacity. smartctl's exit status is a bit mask
(smartctl(8) "RETURN VALUES"): bits 0-1 mean it could not read the device at all.

RAID comes from ``/proc/mdstat`` (md(4)): per array, whether it is active, how many
members are missing (``[3/2] [UU_]``), failed members (``(F)``), and the progress of
a resync, recovery, reshape or check. A degraded array is CRITICAL: one more disk
and the data is gone. A resync or scrub on a complete array is not a problem.

A host with neither (a VM with virtual disks, a container) is UNKNOWN and says so:
install smartmontools, or leave this check out there.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

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
from patrol.checks.systemd import Runner, run_command
from patrol.checks.thresholds import limit_note

if TYPE_CHECKING:
    from patrol.checks.schemas.disk_health import DiskHealthConfig

MDSTAT = Path("/proc/mdstat")
_ATA_ATTRIBUTES = {5: "reallocated_sectors", 197: "pending_sectors",
                   198: "uncorrectable_sectors"}
_MD_HEAD = re.compile(r"^(md\S*) : (active|inactive)(?: \((read-only|auto-read-only)\))?"
                      r"(?: (\S+))?(.*)$")
_MD_COUNT = re.compile(r"\[(\d+)/(\d+)\] \[([U_]+)\]")
_MD_SYNC = re.compile(r"(resync|recovery|reshape|check|repair)\s*=\s*([\d.]+)%")
_MD_DELAYED = re.compile(r"(resync|recovery|reshape|check)=(DELAYED|PENDING)")


def parse_mdstat(text: str) -> dict[str, dict[str, Any]]:
    """Each md array: active, level, members, failed, expected/working counts, sync."""
    arrays: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for line in text.splitlines():
        head = _MD_HEAD.match(line)
        if head:
            name, state, _ro, level, rest = head.groups()
            members = rest.split()
            if level and "[" in level:  # inactive arrays have no level: a member came first
                members, level = [level, *members], None
            current = arrays[name] = {
                "active": state == "active", "level": level or "?",
                "members": [re.sub(r"\[\d+\].*", "", m) for m in members],
                "failed": [re.sub(r"\[\d+\].*", "", m) for m in members if "(F)" in m],
                "spares": [re.sub(r"\[\d+\].*", "", m) for m in members if "(S)" in m],
                "expected": None, "working": None, "map": "", "sync": None,
            }
            continue
        if current is None:
            continue
        count = _MD_COUNT.search(line)
        if count:
            current.update(expected=int(count.group(1)), working=int(count.group(2)),
                           map=count.group(3))
        sync = _MD_SYNC.search(line)
        if sync:
            current["sync"] = {"action": sync.group(1), "progress": float(sync.group(2)) / 100}
        delayed = _MD_DELAYED.search(line)
        if delayed:
            current["sync"] = {"action": delayed.group(1), "progress": 0.0,
                               "waiting": delayed.group(2)}
    return arrays


def smart_measurements(report: dict[str, Any], item: str) -> list[Measurement]:
    """The measurements one ``smartctl --json -H -A -i`` report holds."""
    out: list[Measurement] = []
    status = report.get("smart_status", {})
    if "passed" in status:
        out.append(Measurement("smart_passed", float(bool(status["passed"])), item))
    for attribute in report.get("ata_smart_attributes", {}).get("table", []):
        name = _ATA_ATTRIBUTES.get(attribute.get("id"))
        if name:
            out.append(Measurement(name, float(attribute.get("raw", {}).get("value", 0)), item))
    nvme = report.get("nvme_smart_health_information_log")
    if nvme:
        out.append(Measurement("media_errors", float(nvme.get("media_errors", 0)), item))
        if "percentage_used" in nvme:
            out.append(Measurement("wear_ratio", nvme["percentage_used"] / 100.0, item))
        if "available_spare" in nvme:
            out.append(Measurement("available_spare_ratio", nvme["available_spare"] / 100.0,
                                   item))
    temperature = report.get("temperature", {}).get("current")
    if temperature is not None:
        out.append(Measurement("temperature_celsius", float(temperature), item))
    return out


class DiskHealthCheck:
    """SMART failing, a degraded or inactive array: critical; any reallocated, pending
    or uncorrectable sector, NVMe media error: warning; wear 80/95 %; 55/65 °C."""

    type: ClassVar[str] = "disk_health"
    Config: ClassVar[ConfigClass] = config_schema("disk_health", "DiskHealthConfig")
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = (
        MeasurementSpec("smart_passed", "1 when the drive's SMART self-assessment passes",
                        False, None, 0, primary=True),
        MeasurementSpec("reallocated_sectors", "sectors remapped to spares (ATA 5)",
                        True, 1, 100),
        MeasurementSpec("pending_sectors", "unreadable sectors waiting to be remapped "
                        "(ATA 197)", True, 1, None),
        MeasurementSpec("uncorrectable_sectors", "sectors the offline scan could not read "
                        "(ATA 198)", True, 1, None),
        MeasurementSpec("media_errors", "unrecovered data integrity errors (NVMe)",
                        True, 1, None),
        MeasurementSpec("wear_ratio", "endurance used, as the NVMe drive estimates it "
                        "(can exceed 1)", True, 0.80, 0.95),
        MeasurementSpec("available_spare_ratio", "spare capacity left (NVMe)",
                        False, 0.20, 0.10),
        MeasurementSpec("temperature_celsius", "drive temperature", True, 55, 65),
        MeasurementSpec("raid_active", "1 when the md array is active", False, None, 0),
        MeasurementSpec("raid_missing_devices", "members an md array lacks ([3/2] -> 1)",
                        True, None, 1),
        MeasurementSpec("raid_failed_devices", "members marked failed (F)", True, None, 1),
        MeasurementSpec("raid_sync_ratio", "progress of a running resync, recovery, "
                        "reshape or check", higher_is_worse=False),
    )
    REQUIRES: ClassVar[tuple[str, ...]] = ()
    DIAGNOSTICS: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        config: DiskHealthConfig,
        run: Runner = run_command,
        which: Callable[[str], str | None] = shutil.which,
        mdstat: Path = MDSTAT,
    ) -> None:
        self.config = config
        self._run = run
        self._which = which
        self._mdstat = mdstat

    def _smartctl(self, argv: list[str]) -> dict[str, Any]:
        done = self._run(["smartctl", "--json", *argv], self.config.timeout or 30.0)
        try:
            report: dict[str, Any] = json.loads(done.stdout or "{}")
        except json.JSONDecodeError as exc:
            raise OSError(f"smartctl printed no JSON ({exc}); smartmontools 7 or later "
                          "is needed") from None
        if done.returncode & 0b11:
            messages = report.get("smartctl", {}).get("messages", [])
            why = "; ".join(m.get("string", "") for m in messages) or f"exit {done.returncode}"
            raise OSError(why)
        return report

    def _devices(self) -> list[str]:
        if self.config.devices:
            return list(self.config.devices)
        scan = self._smartctl(["--scan"])
        return [d["name"] for d in scan.get("devices", []) if d.get("name")]

    def _smart(self, found: dict[str, Any]) -> list[Measurement]:
        out: list[Measurement] = []
        for device in self._devices():
            try:
                report = self._smartctl(["-H", "-A", "-i", device])
            except OSError as exc:
                found[device] = {"error": str(exc)}
                continue
            out += smart_measurements(report, device)
            found[device] = {
                "model": report.get("model_name"), "serial": report.get("serial_number"),
                "protocol": report.get("device", {}).get("protocol"),
                "exit_status": report.get("smartctl", {}).get("exit_status"),
            }
        return out

    def _raid(self, found: dict[str, Any]) -> list[Measurement]:
        try:
            arrays = parse_mdstat(self._mdstat.read_text(encoding="utf-8"))
        except OSError:
            return []  # no md driver loaded: no arrays
        out: list[Measurement] = []
        for name, array in arrays.items():
            out.append(Measurement("raid_active", float(array["active"]), name))
            if array["expected"] is not None:
                out.append(Measurement("raid_missing_devices",
                                       float(array["expected"] - array["working"]), name))
            out.append(Measurement("raid_failed_devices", float(len(array["failed"])), name))
            if array["sync"]:
                out.append(Measurement("raid_sync_ratio", array["sync"]["progress"], name))
            found[name] = array
        return out

    def run(self, ctx: RunContext) -> Result:
        found: dict[str, Any] = {}
        measurements: list[Measurement] = []
        reasons: list[str] = []
        if self.config.smart:
            if self._which("smartctl"):
                try:
                    measurements += self._smart(found)
                except OSError as exc:
                    reasons.append(f"smartctl --scan failed: {exc}")
            else:
                reasons.append("smartctl is not installed (apt-get install smartmontools)")
        if self.config.raid:
            measurements += self._raid(found)
        if not measurements:
            reasons.append("no SMART data from any disk and no md arrays in /proc/mdstat")
            raise CheckError(f"nothing to judge disk health by on {ctx.hostname}: "
                             f"{'; '.join(reasons)}; on virtual disks leave this check out")
        judged = [(ctx.judge(m), m) for m in measurements]
        status = Status.worst(*(s for s, _ in judged))
        devices = sorted({m.item for m in measurements})
        if status is Status.OK:
            syncing = [m for m in measurements if m.name == "raid_sync_ratio"]
            extra = "".join(f"; {m.item} {found[m.item]['sync']['action']} at {m.value:.0%}"
                            for m in syncing)
            summary = (f"{len(devices)} disk{'s' * (len(devices) != 1)} and arrays healthy on "
                       f"{ctx.hostname}: {', '.join(devices)}{extra}")
        else:
            state, worst = max(judged, key=lambda sm: sm[0])
            summary = self._explain(ctx, worst, state, found.get(worst.item, {}))
            others = {m.item for s, m in judged if s is not Status.OK and m.item != worst.item}
            if others:
                summary += f" (and {len(others)} more not OK)"
        if reasons:
            found["not_checked"] = reasons
        return Result(status, summary, tuple(measurements), {"devices": found})

    @staticmethod
    def _explain(ctx: RunContext, m: Measurement, state: Status, info: dict[str, Any]) -> str:
        host, item = ctx.hostname, m.item
        note = limit_note(ctx.evaluator.levels(m.name, item), state, m.value)
        if m.name == "smart_passed":
            model = f" ({info['model']})" if info.get("model") else ""
            return f"{item}{model} fails its SMART health self-assessment on {host}"
        if m.name == "raid_active":
            return f"RAID array {item} is inactive on {host}"
        if m.name in ("raid_missing_devices", "raid_failed_devices"):
            sync = info.get("sync")
            rebuild = (f", {sync['action']} at {sync['progress']:.0%}" if sync else "")
            failed = f", failed: {', '.join(info['failed'])}" if info.get("failed") else ""
            return (f"RAID array {item} ({info.get('level', '?')}) is degraded on {host}: "
                    f"{info.get('working')} of {info.get('expected')} devices "
                    f"[{info.get('map', '')}]{failed}{rebuild}")
        label = m.name.replace("_", " ")
        if m.name.endswith("_ratio"):
            return f"{item} {label} is {m.value:.0%} on {host}{note}"
        if m.name == "temperature_celsius":
            return f"{item} is at {m.value:.0f} °C on {host}{note}"
        return f"{item} has {m.value:,.0f} {label} on {host}{note}"
