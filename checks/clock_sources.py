"""What the host's time service says: chrony, systemd-timesyncd or ntpd.

Each reader runs the service's own client (argv, no shell) and turns its output
into a :class:`ClockState`. Formats, as the tools document them:

* ``chronyc -c tracking`` (chronyc(1), "-c: CSV"): reference id, name, stratum,
  reference time, *system time offset* (seconds), last offset, RMS offset,
  frequency, residual frequency, skew, root delay, root dispersion, update interval,
  leap status (``Normal``, ``Insert second``, ``Delete second``, ``Not synchronised``).
* ``timedatectl show --property=NTPSynchronized --value`` (yes/no) and
  ``timedatectl timesync-status`` (timedatectl(1): "Server:", "Stratum:",
  "Offset: +1.2ms" lines), ``show-timesync`` having no offset to read.
* ``ntpq -pn`` (ntpq(1)): the peer marked ``*`` (or ``o``, PPS) is the system peer;
  offset in milliseconds in the ninth column; no such peer means not synchronised.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Runner = Callable[[Sequence[str], float], subprocess.CompletedProcess[str]]
_DURATION = re.compile(r"^([+-]?\d+(?:\.\d+)?)(us|µs|ms|s|min)$")
_DURATION_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0}


class NoTimeService(OSError):
    """The service's client is missing or its daemon does not answer."""


@dataclass(frozen=True, slots=True)
class ClockState:
    source: str
    synchronised: bool
    offset: float | None = None  # seconds, signed as the tool reports it
    stratum: int | None = None
    server: str | None = None
    detail: str = ""


def _call(run: Runner, argv: list[str], timeout: float) -> str:
    try:
        done = run(argv, timeout)
    except FileNotFoundError:
        raise NoTimeService(f"{argv[0]} is not installed") from None
    if done.returncode != 0:
        why = (done.stderr or done.stdout or "").strip().splitlines()[:1] or ["no output"]
        raise NoTimeService(f"{' '.join(argv[:2])}: {why[0]}")
    return done.stdout


def parse_chrony_tracking(text: str) -> ClockState:
    fields = text.strip().split(",")
    if len(fields) < 14:
        raise ValueError(f"unexpected chronyc -c tracking output: {text.strip()[:200]!r}")
    leap = fields[13]
    synchronised = leap != "Not synchronised" and fields[0] != "00000000"
    return ClockState("chrony", synchronised, float(fields[4]), int(fields[2]),
                      fields[1] or fields[0], f"leap status {leap}")


def read_chrony(run: Runner, timeout: float, socket_path: str | None = None) -> ClockState:
    host = ["-h", socket_path] if socket_path else []
    return parse_chrony_tracking(_call(run, ["chronyc", *host, "-c", "tracking"], timeout))


def _seconds(text: str) -> float | None:
    match = _DURATION.match(text.strip())
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)] if match else None


def parse_timesync_status(synchronised: str, status: str) -> ClockState:
    values = {}
    for line in status.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            values[key.strip()] = value.strip()
    stratum = values.get("Stratum", "")
    return ClockState("timesyncd", synchronised.strip() == "yes",
                      _seconds(values.get("Offset", "")),
                      int(stratum) if stratum.isdigit() else None,
                      values.get("Server"), f"leap {values.get('Leap', '?')}")


def read_timesyncd(run: Runner, timeout: float) -> ClockState:
    synced = _call(run, ["timedatectl", "show", "--property=NTPSynchronized", "--value"],
                   timeout)
    try:
        status = _call(run, ["timedatectl", "timesync-status"], timeout)
    except NoTimeService:  # timesyncd not running (or systemd < 239): the flag alone
        status = ""
    if not status and synced.strip() != "yes":
        raise NoTimeService("systemd-timesyncd is not running")
    return parse_timesync_status(synced, status)


def parse_ntpq_peers(text: str) -> ClockState:
    peers = [line for line in text.splitlines() if line[:1] in "*o+-#x. " and
             len(line.split()) >= 10 and not line.lstrip().startswith("remote")]
    system = next((p for p in peers if p[:1] in "*o"), None)
    if system is None:
        return ClockState("ntpd", False, None, None, None,
                          f"no system peer among {len(peers)} peers")
    cols = system[1:].split()
    return ClockState("ntpd", True, float(cols[8]) / 1000.0,
                      int(cols[2]) if cols[2].isdigit() else None, cols[0], f"refid {cols[1]}")


def read_ntpd(run: Runner, timeout: float) -> ClockState:
    return parse_ntpq_peers(_call(run, ["ntpq", "-pn"], timeout))
