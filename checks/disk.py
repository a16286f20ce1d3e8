"""Disk: space and inodes on every real mount, or on the mounts of chosen paths.

Which mounts, by default: ``psutil.disk_partitions(all=False)`` (filesystems backed
by a device), minus fstypes that are read-only images and always "100 % full"
(squashfs snaps, ISO and EROFS images), minus memory-backed ones (tmpfs, overlay: their
"disk" is RAM or another mount), and one mount per device (bind mounts and btrfs
subvolumes share their space: the shortest mount point stands for the device).
``include_fstypes`` replaces that filter with an allow-list (tmpfs can be watched
this way); ``exclude_fstypes`` adds to the default exclusions (so excluding nfs does
not bring the squashfs snaps back) and ``exclude_mounts`` (globs) drops mount
points. ``path:``/``paths:`` name exactly what to watch: each path resolves to the
mount it lives on, with no fstype filter, since the operator asked for it.

Numbers follow ``df``: ``used_ratio`` is used / (used + available to users), so
the root-reserved blocks count as full, which is when ordinary services start failing.
Filesystems without a fixed inode table (btrfs, ZFS report 0 inodes) emit no inode
measurements rather than dividing by zero. ``full_in_seconds`` extrapolates the
growth since the previous run linearly; it is emitted only while the mount grows and
has no default threshold (one interval is a noisy estimate; set one with
``thresholds: {full_in_seconds: {warning: 6h}}`` if you trust your interval).
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import psutil

from patrol.checks import disk_usage
from patrol.checks.base import (
    CheckError,
    ConfigClass,
    Measurement,
    MeasurementSpec,
    Result,
    RunContext,
    Status,
    also_unknown,
)
from patrol.checks.schemas import config_schema
from patrol.checks.thresholds import limit_note
from patrol.contract.units import format_bytes, format_duration

if TYPE_CHECKING:
    from patrol.checks.schemas.disk import DiskConfig

DEFAULT_EXCLUDED_FSTYPES = (
    "squashfs", "iso9660", "udf", "erofs", "cramfs",  # read-only images: always full
    "tmpfs", "devtmpfs", "ramfs", "overlay", "aufs",  # memory or another mount's space
    "proc", "sysfs", "cgroup", "cgroup2", "devpts", "tracefs", "debugfs", "securityfs",
    "pstore", "bpf", "autofs", "mqueue", "hugetlbfs", "fusectl", "configfs", "nsfs",
    "binfmt_misc", "fuse.lxcfs", "fuse.portal", "fuse.gvfsd-fuse", "efivarfs",
)

# The order in which a mount's measurements explain its status in the summary.
_EXPLAIN_ORDER = ("used_ratio", "inodes_used_ratio", "full_in_seconds", "free_bytes",
                  "inodes_free", "total_bytes")


def mount_point(path: str) -> str:
    """The mount point ``path`` lives on (``df PATH``'s "Mounted on")."""
    current = os.path.realpath(path)
    if not os.path.exists(current):
        raise FileNotFoundError(path)
    while not os.path.ismount(current):
        current = os.path.dirname(current)
    return current


class DiskCheck:
    """Space (warning 85 %, critical 95 %) and inodes (same) per mount point."""

    type: ClassVar[str] = "disk"
    Config: ClassVar[ConfigClass] = config_schema("disk", "DiskConfig")
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = (
        MeasurementSpec("used_ratio", "share of space used, as df's Use% (reserve counts as used)",
                        True, 0.85, 0.95, primary=True),
        MeasurementSpec("free_bytes", "space available to unprivileged users",
                        higher_is_worse=False),
        MeasurementSpec("total_bytes", "size of the filesystem"),
        MeasurementSpec("inodes_used_ratio", "share of inodes used (absent without a fixed "
                        "inode table)", True, 0.85, 0.95),
        MeasurementSpec("inodes_free", "inodes left", higher_is_worse=False),
        MeasurementSpec("full_in_seconds", "time until full at the growth rate since the "
                        "previous run (only while growing)", higher_is_worse=False),
    )
    REQUIRES: ClassVar[tuple[str, ...]] = ()
    DIAGNOSTICS: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        config: DiskConfig,
        disk_partitions: Callable[..., list[Any]] = psutil.disk_partitions,
        statvfs: Callable[[str], Any] = os.statvfs,
        mount_of: Callable[[str], str] = mount_point,
        clock: Callable[[], float] = time.monotonic,
        scan_tree: Callable[..., dict[str, Any]] = disk_usage.scan_tree,
        deleted_open_files: Callable[..., dict[str, Any]] = disk_usage.deleted_open_files,
    ) -> None:
        self.config = config
        self._partitions = disk_partitions
        self._statvfs = statvfs
        self._mount_of = mount_of
        self._clock = clock
        self._scan_tree = scan_tree
        self._deleted_open_files = deleted_open_files
        self._previous: dict[str, tuple[float, float]] = {}  # mount -> (time, used bytes)

    def mounts(self) -> list[str]:
        """Mount points to measure, in a stable order (see module docstring)."""
        chosen = self.config.chosen_paths
        if chosen is not None:
            out: list[str] = []
            for path in chosen:
                try:
                    mount = self._mount_of(path)
                except OSError as exc:
                    raise CheckError(f"cannot find the mount of {path}: {exc}") from exc
                if mount not in out:
                    out.append(mount)
            return out
        include = self.config.include_fstypes
        exclude = {*DEFAULT_EXCLUDED_FSTYPES, *(self.config.exclude_fstypes or ())}
        parts = self._partitions(all=include is not None)
        devices: set[str] = set()
        mounts: list[str] = []
        for part in sorted(parts, key=lambda p: (len(p.mountpoint), p.mountpoint)):
            if include is not None and part.fstype not in include:
                continue
            if include is None and part.fstype in exclude:
                continue
            if any(fnmatch.fnmatchcase(part.mountpoint, g) for g in self.config.exclude_mounts):
                continue
            if part.device.startswith("/"):
                if part.device in devices:
                    continue
                devices.add(part.device)
            mounts.append(part.mountpoint)
        return sorted(mounts)

    def _measure(self, mount: str) -> list[Measurement]:
        st = self._statvfs(mount)
        frsize = st.f_frsize or st.f_bsize
        total = float(st.f_blocks * frsize)
        free = float(st.f_bavail * frsize)
        used = float((st.f_blocks - st.f_bfree) * frsize)
        usable = used + free
        out = [
            Measurement("used_ratio", used / usable if usable > 0 else 0.0, mount),
            Measurement("free_bytes", free, mount),
            Measurement("total_bytes", total, mount),
        ]
        if st.f_files > 0:
            out += [
                Measurement("inodes_used_ratio", (st.f_files - st.f_ffree) / st.f_files, mount),
                Measurement("inodes_free", float(st.f_ffree), mount),
            ]
        now = self._clock()
        previous, self._previous[mount] = self._previous.get(mount), (now, used)
        if previous is not None and now > previous[0]:
            rate = (used - previous[1]) / (now - previous[0])
            if rate > 0:
                out.append(Measurement("full_in_seconds", free / rate, mount))
        return out

    def run(self, ctx: RunContext) -> Result:
        mounts = self.mounts()
        if not mounts:
            raise CheckError(
                f"no mounts to check on {ctx.hostname} after the fstype and mount filters"
            )
        measurements: list[Measurement] = []
        per_mount: dict[str, tuple[Status, str]] = {}
        unreadable: dict[str, str] = {}
        for mount in mounts:
            try:
                found = self._measure(mount)
            except OSError as exc:
                why = exc.strerror or str(exc)
                unreadable[mount] = why
                per_mount[mount] = (Status.UNKNOWN,
                                    f"cannot read {mount} on {ctx.hostname}: {why}")
                continue
            measurements += found
            per_mount[mount] = self._explain(ctx, mount, found)
        status = Status.worst(*(s for s, _ in per_mount.values()))
        readable = [m for m in per_mount if m not in unreadable]
        lead = max(readable, default=None, key=lambda m: (per_mount[m][0].rank,
                                                          self._fullness(measurements, m)))
        if unreadable and (lead is None or per_mount[lead][0] is Status.OK):
            summary = per_mount[next(iter(unreadable))][1]
            if len(unreadable) > 1:
                summary += f" (and {len(unreadable) - 1} more unreadable)"
        else:
            # The worst real finding leads even beside an UNKNOWN mount: the title says
            # what is wrong, then what could not be looked at.
            assert lead is not None
            summary = per_mount[lead][1]
            others = [m for m in readable if per_mount[m][0] is not Status.OK and m != lead]
            if others:
                summary += f" (and {len(others)} more mount{'s' * (len(others) > 1)} not OK)"
            elif len(readable) > 1 and per_mount[lead][0] is Status.OK:
                summary += f" (fullest of {len(readable)} mounts)"
            summary = also_unknown(summary, [f"cannot read {m}: {why}"
                                             for m, why in unreadable.items()])
        diagnostics: dict[str, Any] = {
            "breached": [m for m, (s, _) in per_mount.items()
                         if s in (Status.WARNING, Status.CRITICAL)],
        }
        if unreadable:
            diagnostics["unreadable"] = unreadable
        return Result(status, summary, tuple(measurements), diagnostics)

    @staticmethod
    def _fullness(measurements: list[Measurement], mount: str) -> float:
        return next((m.value for m in measurements
                     if m.item == mount and m.name == "used_ratio"), -1.0)

    def _explain(self, ctx: RunContext, mount: str, found: list[Measurement]) -> tuple[
            Status, str]:
        """This mount's status, and a one-line summary that names its worst problem."""
        by_name = {m.name: m.value for m in found}
        judged = {m.name: ctx.judge(m) for m in found}
        status = Status.worst(*judged.values())
        free = format_bytes(by_name["free_bytes"])
        full_in = by_name.get("full_in_seconds")
        growth = f", full in {format_duration(full_in)} at the current rate" if full_in else ""
        reason = next((n for n in _EXPLAIN_ORDER if judged.get(n) is status), "used_ratio")
        if status is Status.OK:
            reason = "used_ratio"
        limit = limit_note(ctx.evaluator.levels(reason, mount), judged.get(reason, Status.OK),
                           by_name.get(reason, 0.0))
        host = ctx.hostname
        if reason == "inodes_used_ratio":
            text = (f"{mount} has {by_name[reason]:.1%} of inodes in use on {host}{limit}; "
                    f"{by_name['inodes_free']:,.0f} inodes free")
        elif reason == "full_in_seconds" and full_in is not None:
            text = (f"{mount} will be full in {format_duration(full_in)} on {host} at the "
                    f"current rate{limit}; {free} free")
        elif reason == "inodes_free":
            text = (f"{mount} has {by_name[reason]:,.0f} inodes free on {host}{limit}")
        elif reason in ("free_bytes", "total_bytes"):
            text = f"{mount} has {free} free on {host}{limit}"
        else:
            text = f"{mount} is {by_name['used_ratio']:.1%} full on {host}{limit}; {free} free"
        if reason != "full_in_seconds":
            text += growth
        return status, text

    def diagnose(self, result: Result) -> dict[str, Any]:
        """Per breached mount (at most three): deleted-but-open files, then the largest
        directories and recently grown files. The walks share ``diagnose_seconds``
        (default 1.5 s, under the agent's 2 s diagnostics budget)."""
        breached = list(result.diagnostics.get("breached", []))[:3]
        if not breached:
            return {}
        share = self.config.diagnose_seconds / len(breached)
        out: dict[str, Any] = {}
        for mount in breached:
            found: dict[str, Any] = {}
            try:
                found["deleted_open_files"] = self._deleted_open_files(
                    mount, top=self.config.top
                )
            except OSError as exc:
                found["deleted_open_files"] = {"error": str(exc)}
            try:
                found.update(self._scan_tree(mount, top=self.config.top, deadline_seconds=share))
            except OSError as exc:
                found["scan_error"] = str(exc)
            out[mount] = found
        return {"mounts": out}
