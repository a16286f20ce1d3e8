"""disk_health: SMART from recorded ``smartctl --json`` reports and RAID from recorded
/proc/mdstat, since this machine has neither real disks with SMART nor md arrays.

The recordings follow the documented formats: smartctl(8) "--json" (JSON format
version 1.0, as smartmontools 7.3 prints it; exit status bits from "RETURN VALUES")
and md(4) / the kernel's Documentation/admin-guide/md.rst for /proc/mdstat.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from patrol.checks.base import CheckError, Status
from tests.helpers import build

SCAN = {"json_format_version": [1, 0], "devices": [
    {"name": "/dev/sda", "info_name": "/dev/sda [SAT]", "type": "sat", "protocol": "ATA"},
    {"name": "/dev/nvme0", "info_name": "/dev/nvme0", "type": "nvme", "protocol": "NVMe"}]}


def ata(passed: bool, reallocated: int, pending: int, temperature: int) -> dict[str, Any]:
    def attr(ident: int, name: str, raw: int) -> dict[str, Any]:
        return {"id": ident, "name": name, "value": 100, "worst": 100, "thresh": 10,
                "when_failed": "", "raw": {"value": raw, "string": str(raw)}}

    return {"json_format_version": [1, 0],
            "smartctl": {"version": [7, 3], "exit_status": 0 if passed else 8},
            "device": {"name": "/dev/sda", "type": "sat", "protocol": "ATA"},
            "model_name": "WDC WD40EFRX-68N32N0", "serial_number": "WD-WCC7K0000000",
            "smart_status": {"passed": passed},
            "ata_smart_attributes": {"revision": 16, "table": [
                attr(1, "Raw_Read_Error_Rate", 0), attr(5, "Reallocated_Sector_Ct", reallocated),
                attr(194, "Temperature_Celsius", temperature),
                attr(197, "Current_Pending_Sector", pending),
                attr(198, "Offline_Uncorrectable", 0)]},
            "temperature": {"current": temperature}}


NVME = {"json_format_version": [1, 0], "smartctl": {"version": [7, 3], "exit_status": 0},
        "device": {"name": "/dev/nvme0", "type": "nvme", "protocol": "NVMe"},
        "model_name": "Samsung SSD 980 PRO 1TB", "smart_status": {"passed": True},
        "nvme_smart_health_information_log": {
            "critical_warning": 0, "temperature": 41, "available_spare": 100,
            "available_spare_threshold": 10, "percentage_used": 3, "media_errors": 0,
            "num_err_log_entries": 0},
        "temperature": {"current": 41}}


def smartctl(reports: dict[str, dict[str, Any]], codes: dict[str, int] | None = None):
    def run(argv, timeout):
        assert argv[:2] == ["smartctl", "--json"]
        key = "--scan" if "--scan" in argv else argv[-1]
        return SimpleNamespace(returncode=(codes or {}).get(key, 0),
                               stdout=json.dumps(reports[key]), stderr="")
    return run


def world(tmp_path: Path, reports=None, codes=None, mdstat: str | None = None) -> dict:
    path = tmp_path / "mdstat"
    if mdstat is not None:
        path.write_text(mdstat)
    return {"run": smartctl(reports or {"--scan": {"devices": []}}, codes),
            "which": lambda c: "/usr/sbin/smartctl" if reports is not None else None,
            "mdstat": path}


def test_healthy_disks(tmp_path: Path) -> None:
    reports = {"--scan": SCAN, "/dev/sda": ata(True, 0, 0, 34), "/dev/nvme0": NVME}
    check, ctx = build("disk_health", world=world(tmp_path, reports))
    result = check.run(ctx)
    assert result.status is Status.OK
    assert result.summary == "2 disks and arrays healthy on testhost: /dev/nvme0, /dev/sda"
    assert result.measurement("wear_ratio", "/dev/nvme0") == 0.03
    assert result.measurement("temperature_celsius", "/dev/sda") == 34
    assert result.diagnostics["devices"]["/dev/sda"]["model"] == "WDC WD40EFRX-68N32N0"


def test_failing_drive_is_critical_and_named(tmp_path: Path) -> None:
    reports = {"--scan": SCAN, "/dev/sda": ata(False, 2000, 8, 40), "/dev/nvme0": NVME}
    check, ctx = build("disk_health", world=world(tmp_path, reports, codes={"/dev/sda": 8}))
    result = check.run(ctx)
    assert result.status is Status.CRITICAL
    assert result.summary == ("/dev/sda (WDC WD40EFRX-68N32N0) fails its SMART health "
                              "self-assessment on testhost")
    assert result.measurement("reallocated_sectors", "/dev/sda") == 2000
    assert result.measurement("pending_sectors", "/dev/sda") == 8


def test_pending_sectors_warn_before_the_drive_gives_up(tmp_path: Path) -> None:
    reports = {"--scan": {"devices": SCAN["devices"][:1]}, "/dev/sda": ata(True, 0, 3, 30)}
    check, ctx = build("disk_health", world=world(tmp_path, reports))
    result = check.run(ctx)
    assert result.status is Status.WARNING
    assert result.summary == "/dev/sda has 3 pending sectors on testhost (warning at 1)"


def test_unreadable_device_is_reported_not_guessed(tmp_path: Path) -> None:
    failed_open = {"smartctl": {"exit_status": 2, "messages": [
        {"string": "Smartctl open device: /dev/sdb failed: Permission denied",
         "severity": "error"}]}}
    reports = {"/dev/sdb": failed_open, "/dev/sda": ata(True, 0, 0, 30)}
    check, ctx = build("disk_health", devices=["/dev/sda", "/dev/sdb"],
                       world=world(tmp_path, reports, codes={"/dev/sdb": 2}))
    result = check.run(ctx)
    assert result.diagnostics["devices"]["/dev/sdb"] == {
        "error": "Smartctl open device: /dev/sdb failed: Permission denied"}
    assert result.status is Status.OK


MDSTAT_DEGRADED = """Personalities : [raid1] [raid6] [raid5] [raid4]
md1 : active raid5 sdc1[3] sdb2[1] sda2[0]
      2093056 blocks super 1.2 level 5, 512k chunk, algorithm 2 [3/2] [UU_]
      [=>...................]  recovery =  8.6% (90368/1046528) finish=0.5min speed=30122K/sec

md0 : active raid1 sdb1[1] sda1[0]
      1046528 blocks super 1.2 [2/2] [UU]

unused devices: <none>
"""
MDSTAT_FAILED = """Personalities : [raid1]
md2 : active raid1 sdd1[1](F) sde1[0]
      976630464 blocks super 1.2 [2/1] [U_]
      bitmap: 2/8 pages [8KB], 65536KB chunk

md127 : inactive sdf[0](S)
      976631512 blocks super 1.2

unused devices: <none>
"""
MDSTAT_SCRUB = """Personalities : [raid1]
md0 : active raid1 sdb1[1] sda1[0]
      1046528 blocks super 1.2 [2/2] [UU]
      [====>................]  check = 22.5% (235520/1046528) finish=1.2min speed=10240K/sec

unused devices: <none>
"""


def test_degraded_array_rebuilding_is_critical(tmp_path: Path) -> None:
    check, ctx = build("disk_health", world=world(tmp_path, mdstat=MDSTAT_DEGRADED))
    result = check.run(ctx)
    assert result.status is Status.CRITICAL
    assert result.summary == ("RAID array md1 (raid5) is degraded on testhost: 2 of 3 devices "
                              "[UU_], recovery at 9%")
    assert result.measurement("raid_sync_ratio", "md1") == pytest.approx(0.086)
    assert result.measurement("raid_missing_devices", "md0") == 0


def test_failed_member_and_inactive_array(tmp_path: Path) -> None:
    check, ctx = build("disk_health", world=world(tmp_path, mdstat=MDSTAT_FAILED))
    result = check.run(ctx)
    assert result.status is Status.CRITICAL
    assert result.measurement("raid_failed_devices", "md2") == 1
    assert result.measurement("raid_active", "md127") == 0
    assert result.diagnostics["devices"]["md2"]["failed"] == ["sdd1"]
    assert "(and 1 more not OK)" in result.summary


def test_a_scrub_on_a_complete_array_is_fine(tmp_path: Path) -> None:
    check, ctx = build("disk_health", world=world(tmp_path, mdstat=MDSTAT_SCRUB))
    result = check.run(ctx)
    assert result.status is Status.OK
    assert result.summary == "1 disk and arrays healthy on testhost: md0; md0 check at 22%"


def test_nothing_to_judge_is_unknown_and_says_what_to_install(tmp_path: Path) -> None:
    check, ctx = build("disk_health", world=world(tmp_path))
    with pytest.raises(CheckError) as info:
        check.run(ctx)
    assert str(info.value) == (
        "nothing to judge disk health by on testhost: smartctl is not installed (apt-get "
        "install smartmontools); no SMART data from any disk and no md arrays in "
        "/proc/mdstat; on virtual disks leave this check out")
