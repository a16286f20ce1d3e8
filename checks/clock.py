"""Clock: is the time service synchronised, how far off is the clock, and (optionally)
what a reference NTP server says directly.

Two separate problems: a clock that is *off* (TLS, Kerberos, log correlation and
distributed databases break at different sizes of offset), and a clock that is *not
synchronised* (no reachable source: fine today, drifting tomorrow). The second is
CRITICAL on its own, whatever the offset reads, because the offset of an
unsynchronised daemon is stale.

The time service is read through its own client (:mod:`checks.clock_sources`):
``source: auto`` tries chrony, then systemd-timesyncd (only where systemd runs),
then ntpd, and uses the first that answers. ``server:`` adds a direct SNTP query
(:mod:`checks.sntp`) to a server you trust, which also catches a daemon that is
"synchronised" to a wrong source; with ``source: none`` only that query runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from patrol.checks import clock_sources, sntp
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
from patrol.checks.systemd import run_command
from patrol.checks.thresholds import limit_note

if TYPE_CHECKING:
    from patrol.checks.schemas.clock import ClockConfig


def format_offset(seconds: float) -> str:
    """``1.25ms behind``, ``830µs ahead``, ``2.50s behind``. Every source here signs
    the offset as reference minus local (chrony's "slow", ntpq's and SNTP's offset),
    so a positive offset is a clock that is behind."""
    size = abs(seconds)
    if size >= 1:
        text = f"{size:.2f}s"
    elif size >= 1e-3:
        text = f"{size * 1e3:.3g}ms"
    else:
        text = f"{size * 1e6:.3g}µs"
    return f"{text} {'behind' if seconds > 0 else 'ahead'}"


class ClockCheck:
    """Not synchronised: critical; offset warning 100 ms, critical 1 s (both for the
    daemon's offset and the direct query)."""

    type: ClassVar[str] = "clock"
    Config: ClassVar[ConfigClass] = config_schema("clock", "ClockConfig")
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = (
        MeasurementSpec("offset_seconds", "the time service's estimate of how far the "
                        "system clock is off (absolute)", True, 0.1, 1.0, primary=True),
        MeasurementSpec("synchronised", "1 when the time service is synchronised to a "
                        "source, 0 when not", False, None, 0),
        MeasurementSpec("stratum", "distance from a reference clock (1 = attached to one)"),
        MeasurementSpec("server_offset_seconds", "offset from the configured NTP server by a "
                        "direct SNTP query (absolute)", True, 0.1, 1.0),
        MeasurementSpec("server_delay_seconds", "round-trip delay of that query"),
    )
    REQUIRES: ClassVar[tuple[str, ...]] = ()
    DIAGNOSTICS: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        config: ClockConfig,
        run: clock_sources.Runner = run_command,
        systemd_running: Callable[[], bool] = lambda: os.path.isdir("/run/systemd/system"),
        query: Callable[..., sntp.SntpAnswer] = sntp.query,
    ) -> None:
        self.config = config
        self._run = run
        self._systemd_running = systemd_running
        self._query = query

    def _service(self) -> tuple[clock_sources.ClockState | None, list[str]]:
        timeout = self.config.timeout or 10.0
        readers: dict[str, Callable[[], clock_sources.ClockState]] = {
            "chrony": lambda: clock_sources.read_chrony(self._run, timeout,
                                                        self.config.chrony_socket),
            "timesyncd": lambda: clock_sources.read_timesyncd(self._run, timeout),
            "ntpd": lambda: clock_sources.read_ntpd(self._run, timeout),
        }
        if self.config.source == "none":
            return None, []
        names = [self.config.source] if self.config.source != "auto" else [
            n for n in readers if n != "timesyncd" or self._systemd_running()]
        tried: list[str] = []
        for name in names:
            try:
                return readers[name](), tried
            except (OSError, ValueError) as exc:
                tried.append(f"{name}: {exc}")
        return None, tried

    def run(self, ctx: RunContext) -> Result:
        state, tried = self._service()
        host = ctx.hostname
        if state is None and not self.config.server:
            raise CheckError(f"no time service answered on {host} ({'; '.join(tried)}); "
                             f"{_remedy(tried)}, or set server: to query an NTP server directly")
        measurements: list[Measurement] = []
        diagnostics: dict[str, Any] = {"tried": tried} if tried else {}
        parts: list[str] = []
        if state is not None:
            diagnostics["service"] = {"source": state.source, "synchronised": state.synchronised,
                                      "offset_seconds": state.offset, "stratum": state.stratum,
                                      "server": state.server, "detail": state.detail}
            measurements.append(Measurement("synchronised", float(state.synchronised)))
            if state.offset is not None and state.synchronised:
                measurements.append(Measurement("offset_seconds", abs(state.offset)))
            if state.stratum is not None and state.synchronised:
                measurements.append(Measurement("stratum", float(state.stratum)))
        answer = None
        if self.config.server:
            try:
                answer = self._query(self.config.server, self.config.port,
                                     self.config.query_timeout)
            except OSError as exc:
                if state is None:
                    raise CheckError(f"cannot ask {self.config.server} for the time from "
                                     f"{host}: {exc}") from exc
                diagnostics["server_error"] = str(exc)
                parts.append(f"{self.config.server} did not answer ({exc})")
            else:
                measurements += [Measurement("server_offset_seconds", abs(answer.offset)),
                                 Measurement("server_delay_seconds", answer.delay)]
                diagnostics["server"] = {"offset_seconds": answer.offset,
                                         "delay_seconds": answer.delay,
                                         "stratum": answer.stratum,
                                         "reference": answer.reference}
        judged = {m.name: ctx.judge(m) for m in measurements}
        status = Status.worst(*judged.values())
        if diagnostics.get("server_error"):
            status = Status.worst(status, Status.WARNING)
        if state is not None:
            if not state.synchronised:
                head = (f"Clock of {host} is not synchronised ({state.source}: "
                        f"{state.detail})")
            else:
                note = limit_note(ctx.evaluator.levels("offset_seconds"),
                                  judged.get("offset_seconds", Status.OK), abs(state.offset or 0))
                offset = (f", {format_offset(state.offset)}{note}"
                          if state.offset is not None else "")
                stratum = f" (stratum {state.stratum})" if state.stratum is not None else ""
                head = (f"Clock of {host} is synchronised by {state.source} to "
                        f"{state.server or '?'}{stratum}{offset}")
        else:
            head = f"Clock of {host}"
        if answer is not None:
            note = limit_note(ctx.evaluator.levels("server_offset_seconds"),
                              judged["server_offset_seconds"], abs(answer.offset))
            parts.append(f"{self.config.server} finds it {format_offset(answer.offset)}{note}")
        summary = head + (f"; {'; '.join(parts)}" if state is not None and parts else
                          f" {'; '.join(parts)}" if parts else "")
        return Result(status, summary, tuple(measurements), diagnostics)


# The daemon each source's command asks, as Debian names its unit.
_DAEMONS = {"chrony": "chrony", "timesyncd": "systemd-timesyncd", "ntpd": "ntpsec"}


def _remedy(tried: list[str]) -> str:
    """What to do when no source answered: start the time service that is installed but
    silent (its command ran and could not reach the daemon), else install chrony."""
    for attempt in tried:
        source = attempt.partition(":")[0]
        if "is not installed" not in attempt and source in _DAEMONS:
            return (f"{source} is installed but its daemon did not answer: start it "
                    f"(systemctl start {_DAEMONS[source]})")
    return "install and start chrony (apt-get install chrony)"
