"""systemd units: is the service up, and how often has it been restarted.

One ``systemctl show --property=... -- UNIT...`` call (argv list, never a shell,
with a timeout) reads every unit's state; its ``Key=value`` blocks are parsed by
:func:`parse_show`. Per unit:

* ``active`` is 1 for ``active``/``reloading``, else 0. ``failed`` is CRITICAL;
  ``inactive`` is CRITICAL unless the unit is ``Type=oneshot`` and its last run
  succeeded (a finished job is not a stopped service); ``activating`` is a WARNING,
  except in ``auto-restart`` (a crash loop), which is CRITICAL; a unit that is not
  installed (``LoadState=not-found``) or masked is CRITICAL.
* ``restarts`` is ``NRestarts`` (restarts by ``Restart=`` since the unit was
  started by hand), and ``uptime_seconds`` the time since the main process started.

Without systemd (containers; sd_booted(): ``/run/systemd/system`` is absent),
``systemctl`` can only fail, so the check returns UNKNOWN and says why. Unit names
without a suffix get ``.service``, as systemctl does, so items and ``overrides:``
always see the full name. Globs are not supported: ``show`` does not expand them
for units that are not loaded, which would hide exactly the missing ones.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Sequence
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
from patrol.contract.units import format_duration

if TYPE_CHECKING:
    from patrol.checks.schemas.systemd import SystemdConfig

PROPERTIES = ("Id", "LoadState", "ActiveState", "SubState", "Result", "Type", "NRestarts",
              "ExecMainStartTimestampMonotonic", "ExecMainStatus", "Description")
_SUFFIXES = (".service", ".socket", ".timer", ".mount", ".automount", ".path", ".target",
             ".slice", ".scope", ".swap", ".device")
_TEXT_LIMIT = 4096

Runner = Callable[[Sequence[str], float], subprocess.CompletedProcess[str]]


def run_command(argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (no shell) in the C locale, capturing text output."""
    env = {**os.environ, "LC_ALL": "C", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"}
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                          check=False, env=env, stdin=subprocess.DEVNULL)


def sd_booted() -> bool:
    """True when systemd is PID 1 (the test ``sd_booted(3)`` uses)."""
    return os.path.isdir("/run/systemd/system")


def pid1_name() -> str:
    try:
        with open("/proc/1/comm", encoding="utf-8") as fh:
            return fh.read().strip() or "unknown"
    except OSError:
        return "unknown"


def parse_show(text: str) -> list[dict[str, str]]:
    """``systemctl show`` output: one ``{Key: value}`` dict per unit, in argv order.

    Units are separated by blank lines; values may contain ``=``."""
    units: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                units.append(current)
                current = {}
            continue
        key, sep, value = line.partition("=")
        if sep:
            current[key] = value
    if current:
        units.append(current)
    return units


class SystemdCheck:
    """Each unit active (CRITICAL when failed, stopped or missing); restart count."""

    type: ClassVar[str] = "systemd"
    Config: ClassVar[ConfigClass] = config_schema("systemd", "SystemdConfig")
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = (
        MeasurementSpec("active", "1 when the unit is active (or reloading), else 0",
                        higher_is_worse=False),
        MeasurementSpec("restarts", "automatic restarts (NRestarts)"),
        MeasurementSpec("uptime_seconds", "time since the unit's main process started",
                        higher_is_worse=False),
    )
    REQUIRES: ClassVar[tuple[str, ...]] = ()
    DIAGNOSTICS: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        config: SystemdConfig,
        runner: Runner = run_command,
        booted: Callable[[], bool] = sd_booted,
        pid1: Callable[[], str] = pid1_name,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._runner = runner
        self._booted = booted
        self._pid1 = pid1
        self._monotonic = monotonic

    def _not_booted(self, ctx: RunContext) -> Result:
        names = self.config.unit_names
        which = f"unit {names[0]}" if len(names) == 1 else f"units {', '.join(names)}"
        pid1 = self._pid1()
        return Result(
            Status.UNKNOWN,
            f"systemd is not running on {ctx.hostname} (PID 1 is {pid1}); cannot inspect {which}; "
            "run the agent on a host booted with systemd, not inside a container, or leave "
            "this check out here",
            diagnostics={"pid1": pid1, "sd_booted": False},
        )

    def _show(self) -> list[dict[str, str]]:
        argv = ["systemctl", "show", f"--property={','.join(PROPERTIES)}", "--no-pager", "--",
                *self.config.unit_names]
        try:
            done = self._runner(argv, self.config.command_timeout)
        except subprocess.TimeoutExpired as exc:
            raise CheckError(f"systemctl show did not answer within {exc.timeout:g}s") from exc
        except OSError as exc:
            raise CheckError(f"cannot run systemctl: {exc}") from exc
        units = parse_show(done.stdout or "")
        if done.returncode != 0 and not units:
            detail = (done.stderr or "").strip().splitlines()
            raise CheckError(
                f"systemctl show failed (exit {done.returncode})"
                + (f": {detail[0]}" if detail else "")
            )
        return units

    def run(self, ctx: RunContext) -> Result:
        if not self._booted():
            return self._not_booted(ctx)
        blocks = self._show()
        names = self.config.unit_names
        # Blocks come in argv order; an alias (sshd -> ssh.service) shows its real Id.
        shown = (dict(zip(names, blocks, strict=True)) if len(blocks) == len(names)
                 else {u.get("Id", ""): u for u in blocks})
        measurements: list[Measurement] = []
        verdicts: list[tuple[Status, str, str]] = []  # (status, unit, summary)
        states: dict[str, str] = {}
        for unit in names:
            props = shown.get(unit)
            if props is None:
                raise CheckError(f"systemctl show returned nothing for {unit}")
            found, structural, text = self._judge_unit(ctx, unit, props)
            measurements += found
            judged = Status.worst(structural, *(ctx.judge(m) for m in found))
            verdicts.append((judged, unit, text))
            states[unit] = f"{props.get('ActiveState', '?')} ({props.get('SubState', '?')})"
        status = Status.worst(*(v[0] for v in verdicts))
        worst = next(v for v in verdicts if v[0] is status)
        summary = worst[2]
        bad = [v for v in verdicts if v[0] is not Status.OK]
        if len(bad) > 1:
            summary += f" (and {len(bad) - 1} more unit{'s' * (len(bad) > 2)} not OK)"
        elif len(verdicts) > 1 and status is Status.OK:
            summary = f"all {len(verdicts)} units are active on {ctx.hostname}"
        diagnostics = {"units": states,
                       "not_ok": [unit for s, unit, _ in verdicts if s is not Status.OK]}
        return Result(status, summary, tuple(measurements), diagnostics)

    def _judge_unit(self, ctx: RunContext, unit: str, props: dict[str, str]) -> tuple[
            list[Measurement], Status, str]:
        """Measurements, the structural status, and the summary line for one unit."""
        host = ctx.hostname
        load, active = props.get("LoadState", ""), props.get("ActiveState", "")
        sub, outcome = props.get("SubState", ""), props.get("Result", "")
        is_active = active in ("active", "reloading")
        found = [Measurement("active", 1.0 if is_active else 0.0, unit)]
        restarts = props.get("NRestarts", "")
        if restarts.isdigit():
            found.append(Measurement("restarts", float(restarts), unit))
        started = props.get("ExecMainStartTimestampMonotonic", "0")
        if is_active and started.isdigit() and int(started) > 0:
            uptime = max(0.0, self._monotonic() - int(started) / 1e6)
            found.append(Measurement("uptime_seconds", uptime, unit))
        if load == "not-found":
            return found, Status.CRITICAL, f"{unit} is not installed on {host}"
        if load == "masked":
            return found, Status.CRITICAL, f"{unit} is masked on {host}"
        why = f"; last result: {outcome}" if outcome and outcome != "success" else ""
        if active == "failed":
            return found, Status.CRITICAL, f"{unit} has failed on {host}{why}"
        if active == "inactive":
            if props.get("Type") == "oneshot" and outcome == "success":
                return found, Status.OK, f"{unit} ran successfully on {host} (oneshot, inactive)"
            return found, Status.CRITICAL, f"{unit} is not running on {host} (inactive){why}"
        if active == "activating":
            if sub == "auto-restart":
                return found, Status.CRITICAL, (
                    f"{unit} is restarting after a crash on {host}{why}")
            return found, Status.WARNING, f"{unit} is still starting on {host} ({sub})"
        if not is_active:
            return found, Status.WARNING, f"{unit} is {active} on {host} ({sub})"
        extra = []
        if restarts.isdigit() and int(restarts):
            extra.append(f"restarted {restarts} times")
        uptime_m = next((m.value for m in found if m.name == "uptime_seconds"), None)
        if uptime_m is not None:
            extra.append(f"up {format_duration(uptime_m)}")
        tail = f" ({', '.join(extra)})" if extra else ""
        return found, Status.OK, f"{unit} is active ({sub}) on {host}{tail}"

    def diagnose(self, result: Result) -> dict[str, Any]:
        """``systemctl status`` and the last 30 journal lines of each unit that is not
        OK (at most three), each text cut to its last 4 KiB; each command has a 1 s
        timeout."""
        if not self._booted():
            return {}
        out: dict[str, Any] = {}
        for unit in list(result.diagnostics.get("not_ok", []))[:3]:
            out[unit] = {
                "status": self._text(["systemctl", "status", "--no-pager", "--lines=0",
                                      "--", unit]),
                "journal": self._text(["journalctl", "--no-pager", "-n", "30", "-u", unit]),
            }
        return {"units": out}

    def _text(self, argv: list[str]) -> str:
        try:
            done = self._runner(argv, 1.0)
        except subprocess.TimeoutExpired:
            return f"{argv[0]} did not answer within 1s"
        except OSError as exc:
            return f"cannot run {argv[0]}: {exc}"
        text = (done.stdout or "") + (done.stderr or "")
        # Keep the end: the newest journal lines matter most.
        return text if len(text) <= _TEXT_LIMIT else "…" + text[-_TEXT_LIMIT:]
