"""What changed on the host recently: the first question after "what broke?".

Four sources, each answered independently so one failing source leaves the others:

* ``packages``: installs, upgrades and removals from dpkg's log (current and the
  first rotation), else apt's history log, else the RPM database (``rpm`` run with
  an argv list and a queryformat of epoch seconds, because ``rpm -qa --last`` prints
  locale-dependent dates). Newest first, at most ``max_packages``.
* ``reboot``: the boot time and whether it falls inside the window.
* ``services``: unit starts, stops, failures and scheduled restarts logged by
  systemd (PID 1) in the journal; ``{"unavailable": "no journal"}`` when there is
  no journalctl or no journal files (containers, non-systemd hosts).
* ``etc_files``: files under /etc modified in the window, newest first, from a walk
  capped in entries and time (``complete`` says whether it finished); symlinks are
  not followed and unreadable directories are counted and skipped.

Log timestamps are local time unless ``local_tz`` is given (tests pass UTC).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import psutil

from patrol.agent.diagnostics.host import iso

Runner = Callable[[Sequence[str], float], str]
"""Runs an argv list with a timeout in seconds and returns stdout; raises on failure."""

DPKG_ACTIONS = frozenset({"install", "upgrade", "remove", "purge"})
_APT_ACTIONS = {"Install": "install", "Upgrade": "upgrade", "Downgrade": "downgrade",
                "Remove": "remove", "Purge": "purge", "Reinstall": "reinstall"}
_APT_ENTRY = re.compile(r"([^\s,()]+) \(([^)]*)\)")
_RPM_FORMAT = "%{INSTALLTIME} %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\\n"
# systemd catalog message ids (sd-messages.h) for what happened to a unit.
_UNIT_EVENTS = {
    "39f53479d3a045ac8e11786248231fbf": "started",
    "9d1aaa27d60140bd96365438aad20286": "stopped",
    "d9b373ed55a64feb8242e02dbe79a49c": "failed",
    "5eb03494b6584870a536b337290809b3": "restart scheduled",
}


def run_command(argv: Sequence[str], timeout: float) -> str:
    """The default :data:`Runner`: no shell, stdout as text, non-zero exit raises."""
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                          check=True)
    return done.stdout


def _epoch(text: str, fmt: str, tz: tzinfo | None) -> float:
    moment = datetime.strptime(text, fmt)
    return (moment.replace(tzinfo=tz) if tz else moment).timestamp()


def _lines(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        yield from handle


def _none(version: str) -> str | None:
    return None if version == "<none>" else version


def dpkg_changes(paths: Iterable[Path], since: float, tz: tzinfo | None) -> list[dict[str, Any]]:
    """Package actions from dpkg logs, oldest file first, as (time, seq)-ordered rows."""
    rows: list[tuple[float, int, dict[str, Any]]] = []
    for path in paths:
        for line in _lines(path):
            parts = line.split()
            if len(parts) < 6 or parts[2] not in DPKG_ACTIONS:
                continue
            try:
                when = _epoch(f"{parts[0]} {parts[1]}", "%Y-%m-%d %H:%M:%S", tz)
            except ValueError:
                continue
            if when >= since:
                rows.append((when, len(rows), {
                    "time": iso(when), "action": parts[2], "package": parts[3],
                    "from": _none(parts[4]), "to": _none(parts[5])}))
    return _newest_first(rows)


def apt_changes(path: Path, since: float, tz: tzinfo | None) -> list[dict[str, Any]]:
    """Package actions from apt's history.log (blocks opened by ``Start-Date:``)."""
    rows: list[tuple[float, int, dict[str, Any]]] = []
    when: float | None = None
    for line in _lines(path):
        key, _, value = line.partition(": ")
        if key == "Start-Date":
            try:
                when = _epoch(" ".join(value.split()), "%Y-%m-%d %H:%M:%S", tz)
            except ValueError:
                when = None
        elif key in _APT_ACTIONS and when is not None and when >= since:
            action = _APT_ACTIONS[key]
            for package, detail in _APT_ENTRY.findall(value):
                old, new = _apt_versions(action, detail)
                rows.append((when, len(rows), {"time": iso(when), "action": action,
                                               "package": package, "from": old, "to": new}))
    return _newest_first(rows)


def _apt_versions(action: str, detail: str) -> tuple[str | None, str | None]:
    """(from, to) out of apt's "(old, new)", "(new, automatic)" or "(old)"."""
    versions: list[str | None] = [v.strip() for v in detail.split(",")
                                  if v.strip() and v.strip() != "automatic"]
    versions += [None, None]
    if action in ("install", "reinstall"):
        return None, versions[0]
    if action in ("remove", "purge"):
        return versions[0], None
    return versions[0], versions[1]


def rpm_changes(runner: Runner, since: float, timeout: float) -> list[dict[str, Any]]:
    """Packages installed or upgraded in the window, from the RPM database."""
    rows: list[tuple[float, int, dict[str, Any]]] = []
    for line in runner(["rpm", "-qa", "--queryformat", _RPM_FORMAT], timeout).splitlines():
        stamp, _, package = line.strip().partition(" ")
        if stamp.isdigit() and int(stamp) >= since:
            rows.append((float(stamp), len(rows), {"time": iso(float(stamp)), "action": "install",
                                                   "package": package, "from": None,
                                                   "to": None}))
    return _newest_first(rows)


def _newest_first(rows: list[tuple[float, int, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [row for _, _, row in sorted(rows, key=lambda r: (r[0], r[1]), reverse=True)]


def service_events(runner: Runner, since: float, timeout: float,
                   limit: int = 20) -> dict[str, Any]:
    """Per-unit counts of what systemd did to services since ``since``, plus the
    latest ``limit`` events, newest first."""
    argv = ["journalctl", "--since", f"@{int(since)}", "--output", "json", "--no-pager",
            "--quiet", "--lines", "5000", "_PID=1"]
    events: list[dict[str, Any]] = []
    for line in runner(argv, timeout).splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        unit = entry.get("UNIT")
        event = _UNIT_EVENTS.get(entry.get("MESSAGE_ID", ""))
        if not isinstance(unit, str) or not unit.endswith(".service") or event is None:
            continue
        when = int(entry.get("__REALTIME_TIMESTAMP", "0")) / 1e6
        events.append({"time": iso(when), "epoch": when, "unit": unit, "event": event})
    events.sort(key=lambda e: e["epoch"], reverse=True)
    units: dict[str, dict[str, Any]] = {}
    for seen in reversed(events):
        row = units.setdefault(seen["unit"], {"unit": seen["unit"], "started": 0,
                                              "stopped": 0, "failed": 0,
                                              "restart scheduled": 0})
        row[seen["event"]] += 1
        row["last"] = seen["time"]
    for seen in events:
        del seen["epoch"]
    ordered = sorted(units.values(), key=lambda u: (u["last"], u["unit"]), reverse=True)
    return {"source": "journal", "units": ordered, "events": events[:limit]}


def recent_files(root: str | Path, since: float, *, limit: int = 50, max_entries: int = 20000,
                 max_seconds: float = 0.5,
                 monotonic: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Regular files under ``root`` with mtime >= ``since``, newest first."""
    deadline = monotonic() + max_seconds
    stack, found = [str(root)], []
    scanned = unreadable = 0
    complete = True
    while stack and complete:
        try:
            listing = os.scandir(stack.pop())
        except OSError:
            unreadable += 1
            continue
        with listing:
            for entry in listing:
                if scanned >= max_entries or monotonic() > deadline:
                    complete = False
                    break
                scanned += 1
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                        continue
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    stat = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.st_mtime >= since:
                    found.append((stat.st_mtime, entry.path, stat.st_size))
    found.sort(key=lambda f: (-f[0], f[1]))
    files = [{"path": path, "modified": iso(mtime), "size_bytes": size}
             for mtime, path, size in found[:limit]]
    return {"root": str(root), "files": files, "matched": len(found), "scanned": scanned,
            "unreadable_dirs": unreadable, "complete": complete}


def _guard(section: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return section()
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def recent_changes(
    window: float = 86400.0,
    *,
    clock: Callable[[], float] = time.time,
    dpkg_logs: Sequence[str | Path] = ("/var/log/dpkg.log.1", "/var/log/dpkg.log"),
    apt_history: str | Path = "/var/log/apt/history.log",
    which: Callable[[str], str | None] = shutil.which,
    runner: Runner = run_command,
    command_timeout: float = 1.0,
    boot_time: Callable[[], float] = psutil.boot_time,
    journal_dirs: Sequence[str | Path] = ("/run/log/journal", "/var/log/journal"),
    etc_root: str | Path = "/etc",
    etc_max_seconds: float = 0.5,
    monotonic: Callable[[], float] = time.monotonic,
    local_tz: tzinfo | None = None,
    max_packages: int = 100,
) -> dict[str, Any]:
    """Changes in the last ``window`` seconds (see the module docstring for shape)."""
    since = clock() - window

    def packages() -> dict[str, Any]:
        logs = [Path(p) for p in dpkg_logs if Path(p).is_file()]
        if logs:
            source, rows = ", ".join(map(str, logs)), dpkg_changes(logs, since, local_tz)
        elif Path(apt_history).is_file():
            source, rows = str(apt_history), apt_changes(Path(apt_history), since, local_tz)
        elif which("rpm"):
            source, rows = "rpm", rpm_changes(runner, since, command_timeout)
        else:
            return {"unavailable": "no dpkg log, apt history or rpm"}
        return {"source": source, "total": len(rows), "changes": rows[:max_packages]}

    def reboot() -> dict[str, Any]:
        boot = float(boot_time())
        return {"boot_time": iso(boot), "rebooted_in_window": boot >= since}

    def services() -> dict[str, Any]:
        if not which("journalctl") or not any(_has_entries(Path(d)) for d in journal_dirs):
            return {"unavailable": "no journal"}
        return service_events(runner, since, command_timeout)

    return {
        "window_seconds": window,
        "since": iso(since),
        "packages": _guard(packages),
        "reboot": _guard(reboot),
        "services": _guard(services),
        "etc_files": _guard(lambda: recent_files(etc_root, since, max_seconds=etc_max_seconds,
                                                 monotonic=monotonic)),
    }


def _has_entries(directory: Path) -> bool:
    try:
        return any(directory.iterdir())
    except OSError:
        return False
