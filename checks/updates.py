"""Updates: pending package updates, security updates among them, reboot pending.

Read-only by default: apt is asked to *simulate* an upgrade (``apt-get -s upgrade``,
which needs no root and takes no lock with ``Debug::NoLocking``) and dnf to list
updates from its cache (``dnf --cacheonly check-update``), so the answer is as fresh
as the package lists the host already has. ``refresh: true`` runs ``apt-get update``
/ ``dnf makecache`` first (root, network to the mirrors). ``lists_age_seconds`` says
how old apt's lists are, because "no updates" from month-old lists means nothing.

An update is a security update when apt would take it from a ``*-security`` suite or
a ``*Security`` archive (Debian-Security, Ubuntu's jammy-security), or when dnf's
updateinfo lists it as a security advisory. ``/run/reboot-required`` (written by
Debian and Ubuntu packages such as the kernel and libc) sets ``reboot_required``.

``broken_packages`` (apt hosts) counts packages dpkg left half-done: unpacked but not
configured, half-installed, half-configured, awaiting triggers, or flagged
"reinstallation required" (``dpkg-query``'s ``db:Status-Abbrev``). It reads the
package database as it is now, where a log pattern over dpkg.log would fire on every
normal install (each one passes through those states for a moment).

This costs seconds of CPU (apt resolves the whole dependency graph): run it hourly
or daily (``interval: 1h`` or a ``schedule:``), not every 30 s.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import time
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
from patrol.contract.units import format_duration

if TYPE_CHECKING:
    from patrol.checks.schemas.updates import UpdatesConfig

APT_LISTS = Path("/var/lib/apt/lists")
REBOOT_REQUIRED = Path("/run/reboot-required")
_APT_INST = re.compile(r"^Inst (\S+) (?:\[([^\]]*)\] )?\((\S+) (.*?) \[[^\]]+\]\)")
_DNF_LINE = re.compile(r"^(\S+)\.(\S+)\s+(\S+)\s+(\S+)\s*$")
_DNF_ADVISORY = re.compile(r"^\S+\s+\S*Sec\.?\s+(\S+)$")
# dpkg's package states short of "installed" (and not "not installed"/"config-files"):
# H half-installed, U unpacked, F half-configured, W triggers-awaited, t triggers-pending.
_HALF_DONE = {"H": "half-installed", "U": "unpacked", "F": "half-configured",
              "W": "triggers-awaited", "t": "triggers-pending"}


def parse_apt_simulation(text: str) -> list[dict[str, Any]]:
    """``apt-get -s upgrade`` "Inst" lines -> package, versions, origins, security."""
    out = []
    for line in text.splitlines():
        match = _APT_INST.match(line)
        if not match:
            continue
        name, old, new, origins = match.groups()
        suites = [o.strip() for o in origins.split(", ")]
        security = any(s.split("/")[-1].endswith("-security") or
                       "security" in s.split(":")[0].lower() for s in suites)
        out.append({"package": name, "from": old or "", "to": new,
                    "origin": ", ".join(suites), "security": security})
    return out


def parse_dnf_check_update(text: str) -> list[dict[str, Any]]:
    """``dnf check-update`` lines ``name.arch  version  repo`` (headers and the
    "Obsoleting Packages" section, whose lines are indented, are skipped)."""
    out = []
    for line in text.splitlines():
        if line.startswith("Obsoleting"):
            break
        match = _DNF_LINE.match(line)
        if match:
            name, arch, version, repo = match.groups()
            out.append({"package": name, "arch": arch, "to": version, "origin": repo,
                        "security": False})
    return out


def parse_dnf_security(text: str) -> set[str]:
    """Package names from ``dnf updateinfo list --security`` lines
    ``ADVISORY  Severity/Sec.  name-version-release.arch``."""
    names = set()
    for line in text.splitlines():
        match = _DNF_ADVISORY.match(line.strip())
        if match:
            nevra = match.group(1).rsplit(".", 1)[0]
            names.add(nevra.rsplit("-", 2)[0])
    return names


def parse_dpkg_states(text: str) -> list[dict[str, str]]:
    """Packages not in a finished state, from lines of ``${db:Status-Abbrev}\t${Package}``
    (three letters: wanted, state, error flag ``R`` = reinstallation required)."""
    broken = []
    for line in text.splitlines():
        abbrev, _, package = line.partition("\t")
        if len(abbrev) < 2 or not package:
            continue
        state = _HALF_DONE.get(abbrev[1])
        if abbrev[2:3] == "R":
            state = f"{state or 'installed'}, reinstallation required"
        if state:
            broken.append({"package": package.strip(), "state": state})
    return broken


def newest_mtime(folder: Path) -> float | None:
    times = [p.stat().st_mtime for p in folder.glob("*Release")] if folder.is_dir() else []
    return max(times) if times else None


class UpdatesCheck:
    """Security updates pending: warning from one; reboot pending: warning; apt lists
    older than 7 days: warning."""

    type: ClassVar[str] = "updates"
    Config: ClassVar[ConfigClass] = config_schema("updates", "UpdatesConfig")
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = (
        MeasurementSpec("security_updates", "pending updates from security archives",
                        True, 1, None, primary=True),
        MeasurementSpec("pending_updates", "pending package updates of any kind"),
        MeasurementSpec("reboot_required", "1 when /run/reboot-required exists", True, 1, None),
        MeasurementSpec("lists_age_seconds", "age of the newest apt Release file (apt only)",
                        True, 7 * 86400, None),
        MeasurementSpec("broken_packages", "packages dpkg left half-done (apt only)",
                        True, 1, None),
    )
    REQUIRES: ClassVar[tuple[str, ...]] = ()
    DIAGNOSTICS: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        config: UpdatesConfig,
        run: Runner = run_command,
        which: Callable[[str], str | None] = shutil.which,
        apt_lists: Path = APT_LISTS,
        reboot_flag: Path = REBOOT_REQUIRED,
        clock: Callable[[], float] = time.time,
        dpkg_admindir: Path | None = None,
    ) -> None:
        self.config = config
        self._run = run
        self._which = which
        self._apt_lists = apt_lists
        self._reboot_flag = reboot_flag
        self._clock = clock
        self._dpkg_admindir = dpkg_admindir  # tests point dpkg-query at a recorded database

    def _manager(self, hostname: str) -> str:
        if self.config.manager != "auto":
            if not self._which("apt-get" if self.config.manager == "apt" else "dnf"):
                raise CheckError(f"manager: {self.config.manager} is set but its command is "
                                 f"not installed on {hostname}")
            return self.config.manager
        for manager, command in (("apt", "apt-get"), ("dnf", "dnf")):
            if self._which(command):
                return manager
        raise CheckError(f"neither apt-get nor dnf is installed on {hostname}; the updates "
                         "check reads apt (Debian, Ubuntu) or dnf (Fedora, RHEL) only: leave "
                         "it out of this host's profile")

    def _call(self, argv: list[str], ok: tuple[int, ...] = (0,)) -> str:
        timeout = self.config.timeout or 120.0
        done = self._run(argv, timeout)
        if done.returncode not in ok:
            why = (done.stderr or done.stdout or "").strip().splitlines()[-1:] or ["no output"]
            raise CheckError(f"{' '.join(argv[:3])} failed (exit {done.returncode}): {why[0]}")
        return done.stdout

    def _apt(self) -> list[dict[str, Any]]:
        if self.config.refresh:
            self._call(["apt-get", "update", "-qq"])
        return parse_apt_simulation(self._call(
            ["apt-get", "-s", "-o", "Debug::NoLocking=true", "upgrade"]))

    def _broken(self) -> list[dict[str, str]]:
        where = [f"--admindir={self._dpkg_admindir}"] if self._dpkg_admindir else []
        return parse_dpkg_states(self._call(
            ["dpkg-query", *where, "-W", "-f", "${db:Status-Abbrev}\t${Package}\n"]))

    def _dnf(self) -> list[dict[str, Any]]:
        cache = [] if self.config.refresh else ["--cacheonly"]
        if self.config.refresh:
            self._call(["dnf", "-q", "makecache"])
        packages = parse_dnf_check_update(
            self._call(["dnf", "-q", *cache, "check-update"], ok=(0, 100)))
        security = parse_dnf_security(
            self._call(["dnf", "-q", *cache, "updateinfo", "list", "--security", "--updates"]))
        return [{**p, "security": p["package"] in security} for p in packages]

    def run(self, ctx: RunContext) -> Result:
        manager = self._manager(ctx.hostname)
        if manager == "apt" and not self.config.refresh and newest_mtime(self._apt_lists) is None:
            # Container images ship apt without lists: "0 updates" would be a false OK.
            raise CheckError(f"apt has no package lists on {ctx.hostname} ({self._apt_lists} "
                             "holds no Release files), so it knows of no update; run apt-get "
                             "update (apt-daily.timer does daily), or set refresh: true")
        packages = self._apt() if manager == "apt" else self._dnf()
        security = [p for p in packages if p["security"]]
        measurements = [Measurement("security_updates", float(len(security))),
                        Measurement("pending_updates", float(len(packages))),
                        Measurement("reboot_required", float(self._reboot_flag.exists()))]
        listed = newest_mtime(self._apt_lists) if manager == "apt" else None
        if listed is not None:
            measurements.append(Measurement("lists_age_seconds",
                                            max(0.0, self._clock() - listed)))
        broken = self._broken() if manager == "apt" else []
        if manager == "apt":
            measurements.append(Measurement("broken_packages", float(len(broken))))
        judged = {m.name: ctx.judge(m) for m in measurements}
        status = Status.worst(*judged.values())
        limit = limit_note(ctx.evaluator.levels("security_updates"),
                           judged["security_updates"], len(security))
        summary = (f"{len(security)} security update{'s' * (len(security) != 1)} pending on "
                   f"{ctx.hostname}{limit}; {len(packages)} update"
                   f"{'s' * (len(packages) != 1)} in all ({manager})")
        if judged["reboot_required"] is not Status.OK:
            summary += "; a reboot is required"
        age_status = judged.get("lists_age_seconds", Status.OK)
        if age_status is not Status.OK:
            age = next(m.value for m in measurements if m.name == "lists_age_seconds")
            note = limit_note(ctx.evaluator.levels("lists_age_seconds"), age_status, age)
            summary += f"; package lists are {format_duration(age)} old{note}"
        if judged.get("broken_packages", Status.OK) is not Status.OK:
            names = ", ".join(f"{b['package']} ({b['state']})" for b in broken[:3])
            summary += f"; {len(broken)} package{'s' * (len(broken) != 1)} left half-done: {names}"
        ranked = sorted(packages, key=lambda p: (not p["security"], p["package"]))
        diagnostics: dict[str, Any] = {"manager": manager,
                                       "packages": ranked[: self.config.top]}
        if broken:
            diagnostics["half_done_packages"] = broken[: self.config.top]
        if self._reboot_flag.exists():
            pkgs = self._reboot_flag.with_name(self._reboot_flag.name + ".pkgs")
            with contextlib.suppress(OSError):
                diagnostics["reboot_required_by"] = pkgs.read_text().split()[:50]
        return Result(status, summary, tuple(measurements), diagnostics)
