"""Recent changes: packages, reboot, service restarts and /etc edits in the window."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from patrol.agent.diagnostics.changes import recent_changes, recent_files

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC).timestamp()
HOUR = 3600.0

DPKG_OLD = """\
2026-11-20 09:00:00 upgrade zlib1g:amd64 1:1.2.13-1 1:1.2.13-2
2026-11-21 11:59:59 install too-old:amd64 <none> 1.0
2026-11-21 12:00:00 install curl:amd64 <none> 7.88.1-10
2026-11-21 12:00:00 status unpacked curl:amd64 7.88.1-10
"""
DPKG_NEW = """\
2026-11-22 03:00:00 startup archives unpack
2026-11-22 03:00:01 upgrade openssl:amd64 3.0.11-1 3.0.13-1
2026-11-22 03:00:01 status half-configured openssl:amd64 3.0.13-1
2026-11-22 03:00:02 remove telnet:amd64 0.17-44 <none>
2026-11-22 03:00:02 purge telnet:amd64 0.17-44 <none>
garbage line without a date
2026-13-45 99:00:00 install broken-date:amd64 <none> 1
"""
APT_HISTORY = """\

Start-Date: 2026-11-20  08:00:00
Commandline: apt-get install old
Install: old:amd64 (1.0)
End-Date: 2026-11-20  08:00:01

Start-Date: 2026-11-22  04:10:00
Commandline: apt-get -y upgrade
Upgrade: libssl3:amd64 (3.0.11-1, 3.0.13-1), openssl:amd64 (3.0.11-1, 3.0.13-1)
End-Date: 2026-11-22  04:10:05

Start-Date: 2026-11-22  05:00:00
Commandline: apt-get install nginx
Install: nginx-common:amd64 (1.22.1-9, automatic), nginx:amd64 (1.22.1-9)
Remove: apache2:amd64 (2.4.57-2)
End-Date: 2026-11-22  05:00:09
"""


def _journal_line(when: datetime, unit: str, message_id: str, **extra: str) -> str:
    entry = {"__REALTIME_TIMESTAMP": str(int(when.timestamp() * 1_000_000)), "_PID": "1",
             "UNIT": unit, "MESSAGE_ID": message_id, "MESSAGE": f"{unit} event", **extra}
    return json.dumps(entry)


STARTED, STOPPED = "39f53479d3a045ac8e11786248231fbf", "9d1aaa27d60140bd96365438aad20286"
FAILED, RESTART = "d9b373ed55a64feb8242e02dbe79a49c", "5eb03494b6584870a536b337290809b3"
JOURNAL = "\n".join([
    _journal_line(datetime(2026, 11, 22, 3, 0, tzinfo=UTC), "nginx.service", STOPPED),
    _journal_line(datetime(2026, 11, 22, 3, 0, 1, tzinfo=UTC), "nginx.service", STARTED),
    _journal_line(datetime(2026, 11, 22, 9, 0, tzinfo=UTC), "app.service", FAILED),
    _journal_line(datetime(2026, 11, 22, 9, 0, 5, tzinfo=UTC), "app.service", RESTART),
    _journal_line(datetime(2026, 11, 22, 9, 0, 6, tzinfo=UTC), "app.service", STARTED),
    _journal_line(datetime(2026, 11, 22, 9, 30, tzinfo=UTC), "session-4.scope", STARTED),
    _journal_line(datetime(2026, 11, 22, 9, 31, tzinfo=UTC), "cron.service", "other-id"),
    "not json",
])


class FakeRunner:
    def __init__(self, outputs: dict[str, str | Exception]) -> None:
        self.outputs = outputs
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], timeout: float) -> str:
        self.calls.append(list(argv))
        out = self.outputs[argv[0]]
        if isinstance(out, Exception):
            raise out
        return out


def _world(tmp_path: Path, *, dpkg: bool = True, apt: bool = False,
           commands: Sequence[str] = ("journalctl",), runner: FakeRunner | None = None,
           boot: float = NOW - 30 * 86400) -> dict[str, Any]:
    logs = tmp_path / "log"
    logs.mkdir()
    if dpkg:
        (logs / "dpkg.log.1").write_text(DPKG_OLD)
        (logs / "dpkg.log").write_text(DPKG_NEW)
    if apt:
        (logs / "history.log").write_text(APT_HISTORY)
    journal = tmp_path / "journal"
    (journal / "machine-id").mkdir(parents=True)
    etc = tmp_path / "etc"
    etc.mkdir()
    return {
        "clock": lambda: NOW, "dpkg_logs": (logs / "dpkg.log.1", logs / "dpkg.log"),
        "apt_history": logs / "history.log",
        "which": lambda name: f"/usr/bin/{name}" if name in commands else None,
        "runner": runner or FakeRunner({"journalctl": JOURNAL}), "boot_time": lambda: boot,
        "journal_dirs": (tmp_path / "no-such-dir", journal), "etc_root": etc, "local_tz": UTC,
    }


def test_everything_from_fixtures(tmp_path: Path) -> None:
    world = _world(tmp_path)
    conf = world["etc_root"] / "nginx" / "nginx.conf"
    conf.parent.mkdir()
    conf.write_text("worker_processes 4;\n")
    os.utime(conf, (NOW - 2 * HOUR, NOW - 2 * HOUR))
    runner = world["runner"]
    assert recent_changes(**world) == {
        "window_seconds": 86400.0,
        "since": "2026-11-21T12:00:00+00:00",
        "packages": {
            "source": f"{tmp_path}/log/dpkg.log.1, {tmp_path}/log/dpkg.log",
            "total": 4,
            "changes": [
                {"time": "2026-11-22T03:00:02+00:00", "action": "purge",
                 "package": "telnet:amd64", "from": "0.17-44", "to": None},
                {"time": "2026-11-22T03:00:02+00:00", "action": "remove",
                 "package": "telnet:amd64", "from": "0.17-44", "to": None},
                {"time": "2026-11-22T03:00:01+00:00", "action": "upgrade",
                 "package": "openssl:amd64", "from": "3.0.11-1", "to": "3.0.13-1"},
                {"time": "2026-11-21T12:00:00+00:00", "action": "install",
                 "package": "curl:amd64", "from": None, "to": "7.88.1-10"},
            ],
        },
        "reboot": {"boot_time": "2026-10-23T12:00:00+00:00", "rebooted_in_window": False},
        "services": {
            "source": "journal",
            "units": [
                {"unit": "app.service", "started": 1, "stopped": 0, "failed": 1,
                 "restart scheduled": 1, "last": "2026-11-22T09:00:06+00:00"},
                {"unit": "nginx.service", "started": 1, "stopped": 1, "failed": 0,
                 "restart scheduled": 0, "last": "2026-11-22T03:00:01+00:00"},
            ],
            "events": [
                {"time": "2026-11-22T09:00:06+00:00", "unit": "app.service", "event": "started"},
                {"time": "2026-11-22T09:00:05+00:00", "unit": "app.service",
                 "event": "restart scheduled"},
                {"time": "2026-11-22T09:00:00+00:00", "unit": "app.service", "event": "failed"},
                {"time": "2026-11-22T03:00:01+00:00", "unit": "nginx.service",
                 "event": "started"},
                {"time": "2026-11-22T03:00:00+00:00", "unit": "nginx.service",
                 "event": "stopped"},
            ],
        },
        "etc_files": {
            "root": str(world["etc_root"]),
            "files": [{"path": str(conf), "modified": "2026-11-22T10:00:00+00:00",
                       "size_bytes": 20}],
            "matched": 1, "scanned": 2, "unreadable_dirs": 0, "complete": True,
        },
    }
    assert runner.calls == [["journalctl", "--since", "@1795262400", "--output", "json",
                             "--no-pager", "--quiet", "--lines", "5000", "_PID=1"]]


def test_apt_history_when_there_is_no_dpkg_log(tmp_path: Path) -> None:
    packages = recent_changes(**_world(tmp_path, dpkg=False, apt=True))["packages"]
    assert packages == {
        "source": f"{tmp_path}/log/history.log",
        "total": 5,
        "changes": [
            {"time": "2026-11-22T05:00:00+00:00", "action": "remove", "package": "apache2:amd64",
             "from": "2.4.57-2", "to": None},
            {"time": "2026-11-22T05:00:00+00:00", "action": "install", "package": "nginx:amd64",
             "from": None, "to": "1.22.1-9"},
            {"time": "2026-11-22T05:00:00+00:00", "action": "install",
             "package": "nginx-common:amd64", "from": None, "to": "1.22.1-9"},
            {"time": "2026-11-22T04:10:00+00:00", "action": "upgrade", "package": "openssl:amd64",
             "from": "3.0.11-1", "to": "3.0.13-1"},
            {"time": "2026-11-22T04:10:00+00:00", "action": "upgrade", "package": "libssl3:amd64",
             "from": "3.0.11-1", "to": "3.0.13-1"},
        ],
    }


def test_rpm_database_when_there_are_no_debian_logs(tmp_path: Path) -> None:
    rpm_out = (f"{int(NOW - 2 * HOUR)} openssl-3.0.7-27.el9.x86_64\n"
               f"{int(NOW - 3 * 86400)} bash-5.1.8-6.el9.x86_64\n"
               f"{int(NOW - HOUR)} kernel-5.14.0-362.el9.x86_64\n")
    runner = FakeRunner({"rpm": rpm_out})
    world = _world(tmp_path, dpkg=False, commands=("rpm",), runner=runner)
    changes = recent_changes(**world)
    assert changes["packages"] == {"source": "rpm", "total": 2, "changes": [
        {"time": "2026-11-22T11:00:00+00:00", "action": "install",
         "package": "kernel-5.14.0-362.el9.x86_64", "from": None, "to": None},
        {"time": "2026-11-22T10:00:00+00:00", "action": "install",
         "package": "openssl-3.0.7-27.el9.x86_64", "from": None, "to": None},
    ]}
    assert runner.calls == [["rpm", "-qa", "--queryformat",
                             "%{INSTALLTIME} %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\\n"]]
    assert changes["services"] == {"unavailable": "no journal"}


def test_no_package_source(tmp_path: Path) -> None:
    packages = recent_changes(**_world(tmp_path, dpkg=False, commands=()))["packages"]
    assert packages == {"unavailable": "no dpkg log, apt history or rpm"}


def test_reboot_inside_the_window(tmp_path: Path) -> None:
    reboot = recent_changes(**_world(tmp_path, boot=NOW - 5 * HOUR))["reboot"]
    assert reboot == {"boot_time": "2026-11-22T07:00:00+00:00", "rebooted_in_window": True}


def test_journalctl_present_but_no_journal_files(tmp_path: Path) -> None:
    world = _world(tmp_path)
    (tmp_path / "journal" / "machine-id").rmdir()
    assert recent_changes(**world)["services"] == {"unavailable": "no journal"}
    assert world["runner"].calls == []


def test_a_failing_source_leaves_the_others(tmp_path: Path) -> None:
    failure = subprocess.CalledProcessError(1, ["journalctl"])
    changes = recent_changes(**_world(tmp_path, runner=FakeRunner({"journalctl": failure})))
    assert changes["services"] == {
        "error": "CalledProcessError: Command '['journalctl']' returned non-zero exit status 1."}
    assert changes["packages"]["total"] == 4


def _tree(root: Path) -> None:
    for i, age_hours in enumerate([1, 30, 5, 2]):
        path = root / f"d{i % 2}" / f"f{i}.conf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x" * i)
        os.utime(path, (NOW - age_hours * HOUR, NOW - age_hours * HOUR))


def test_etc_files_newest_first_skipping_symlinks_and_old_files(tmp_path: Path) -> None:
    _tree(tmp_path)
    (tmp_path / "link.conf").symlink_to(tmp_path / "d0" / "f0.conf")
    (tmp_path / "dangling").symlink_to(tmp_path / "missing")
    os.mkfifo(tmp_path / "fifo")
    found = recent_files(tmp_path, NOW - 24 * HOUR)
    assert found == {
        "root": str(tmp_path),
        "files": [
            {"path": f"{tmp_path}/d0/f0.conf", "modified": "2026-11-22T11:00:00+00:00",
             "size_bytes": 0},
            {"path": f"{tmp_path}/d1/f3.conf", "modified": "2026-11-22T10:00:00+00:00",
             "size_bytes": 3},
            {"path": f"{tmp_path}/d0/f2.conf", "modified": "2026-11-22T07:00:00+00:00",
             "size_bytes": 2},
        ],
        "matched": 3, "scanned": 9, "unreadable_dirs": 0, "complete": True,
    }


def test_etc_walk_stops_at_the_entry_cap(tmp_path: Path) -> None:
    _tree(tmp_path)
    found = recent_files(tmp_path, NOW - 24 * HOUR, max_entries=2)
    assert (found["scanned"], found["complete"]) == (2, False)


def test_etc_walk_stops_at_the_time_cap(tmp_path: Path) -> None:
    _tree(tmp_path)
    ticks = iter(range(100))
    found = recent_files(tmp_path, NOW - 24 * HOUR, max_seconds=3.5,
                         monotonic=lambda: float(next(ticks)))
    assert (found["scanned"], found["complete"]) == (3, False)


def test_etc_walk_keeps_only_the_newest(tmp_path: Path) -> None:
    _tree(tmp_path)
    found = recent_files(tmp_path, NOW - 24 * HOUR, limit=1)
    assert [f["path"] for f in found["files"]] == [f"{tmp_path}/d0/f0.conf"]
    assert found["matched"] == 3


def test_real_machine_within_budget() -> None:
    started = time.monotonic()
    changes = recent_changes()
    elapsed = time.monotonic() - started
    assert elapsed < 2.0
    assert set(changes) == {"window_seconds", "since", "packages", "reboot", "services",
                            "etc_files"}
    packages = changes["packages"]
    assert "changes" in packages or "unavailable" in packages
    for row in packages.get("changes", []):
        assert set(row) == {"time", "action", "package", "from", "to"}
        assert row["time"] >= changes["since"]
    assert isinstance(changes["reboot"]["rebooted_in_window"], bool)
    assert "units" in changes["services"] or changes["services"] == {"unavailable": "no journal"}
    etc = changes["etc_files"]
    assert etc["root"] == "/etc" and etc["scanned"] > 0
    modified = [f["modified"] for f in etc["files"]]
    assert modified == sorted(modified, reverse=True)
    json.dumps(changes)
