"""Top processes by CPU and by memory, measured over a short sample.

CPU is the delta of each process's user+system CPU seconds between two snapshots
``sample`` seconds apart (a process's lifetime average would hide the one that
just started spinning). Processes are matched by (pid, start time), so a reused pid
is never credited with its predecessor's CPU time. Two numbers per process:
``cpu_cores`` (cores' worth of CPU, like top's %CPU / 100, may exceed 1 for a
multithreaded process) and ``cpu_ratio`` (share of the whole host, comparable
with the cpu check's ``used_ratio``). ``memory_ratio`` is RSS over physical memory.

Command lines are joined and cut to 300 characters; redaction happens centrally
in :mod:`agent.diagnostics.capture`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psutil

from patrol.agent.diagnostics.host import iso

CMDLINE_CHARS = 300
_ATTRS = ["pid", "name", "username", "cpu_times", "memory_info", "cmdline", "create_time",
          "status"]

Snapshot = Callable[[], list[dict[str, Any]]]
"""Returns one dict per process: pid, name, user, cpu_seconds, rss_bytes, cmdline
(list or None), create_time (epoch s), status (psutil status string)."""


def snapshot(process_iter: Callable[..., Any] = psutil.process_iter) -> list[dict[str, Any]]:
    """Every process visible to us; fields we may not read are None."""
    out: list[dict[str, Any]] = []
    for proc in process_iter(attrs=_ATTRS, ad_value=None):
        info = proc.info
        cpu, mem = info.get("cpu_times"), info.get("memory_info")
        out.append({
            "pid": info["pid"],
            "name": info.get("name") or "",
            "user": info.get("username"),
            "cpu_seconds": (cpu.user + cpu.system) if cpu is not None else None,
            "rss_bytes": mem.rss if mem is not None else None,
            "cmdline": info.get("cmdline"),
            "create_time": info.get("create_time"),
            "status": info.get("status"),
        })
    return out


def _command(proc: dict[str, Any]) -> str:
    text = " ".join(proc.get("cmdline") or []) or f"[{proc['name']}]"
    return text if len(text) <= CMDLINE_CHARS else text[: CMDLINE_CHARS - 1] + "…"


def _row(proc: dict[str, Any], cores: float, host_cpus: int, memory_total: int) -> dict[str, Any]:
    rss = proc.get("rss_bytes")
    created = proc.get("create_time")
    return {
        "pid": proc["pid"],
        "name": proc["name"],
        "user": proc.get("user"),
        "cpu_cores": round(cores, 4),
        "cpu_ratio": round(cores / host_cpus, 4),
        "rss_bytes": rss,
        "memory_ratio": round(rss / memory_total, 4) if rss is not None and memory_total else None,
        "cmdline": _command(proc),
        "started": iso(created) if created else None,
        "state": proc.get("status"),
    }


def top_processes(
    n: int = 10,
    sample: float = 0.2,
    *,
    take: Snapshot = snapshot,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    cpu_count: Callable[[], int | None] = psutil.cpu_count,
    memory_total: Callable[[], int] = lambda: psutil.virtual_memory().total,
) -> dict[str, Any]:
    """``by_cpu`` and ``by_memory`` (``n`` rows each, heaviest first) and ``counts``."""
    t0 = monotonic()
    before = {(p["pid"], p.get("create_time")): p for p in take()}
    sleep(sample)
    t1 = monotonic()
    after = take()
    wall = max(t1 - t0, 1e-6)
    host_cpus = cpu_count() or 1
    total = memory_total()

    busy: list[tuple[float, dict[str, Any]]] = []
    for proc in after:
        prev = before.get((proc["pid"], proc.get("create_time")))
        used = 0.0
        if prev and prev["cpu_seconds"] is not None and proc["cpu_seconds"] is not None:
            used = max(0.0, proc["cpu_seconds"] - prev["cpu_seconds"]) / wall
        busy.append((used, proc))

    by_cpu = sorted(busy, key=lambda b: (-b[0], -(b[1].get("rss_bytes") or 0), b[1]["pid"]))
    by_mem = sorted(busy, key=lambda b: (-(b[1].get("rss_bytes") or 0), -b[0], b[1]["pid"]))
    statuses = [p.get("status") for p in after]
    return {
        "sample_seconds": round(wall, 3),
        "counts": {
            "total": len(after),
            "running": statuses.count(psutil.STATUS_RUNNING),
            "disk_sleep": statuses.count(psutil.STATUS_DISK_SLEEP),
            "zombie": statuses.count(psutil.STATUS_ZOMBIE),
        },
        "by_cpu": [_row(p, used, host_cpus, total) for used, p in by_cpu[:n]],
        "by_memory": [_row(p, used, host_cpus, total) for used, p in by_mem[:n]],
    }
