"""Any Nagios plugin: its exit code is the status, its perfdata the measurements.

The plugin's own verdict is authoritative: Patrol thresholds do not apply (there is
no primary measurement, and ``MEASUREMENTS`` is empty because the names depend on
the plugin's perfdata labels; see :mod:`checks.perfdata` for the naming scheme).

The command is an argv list, never a shell string: a config value can then never
become shell syntax. The plugin runs with stdin from /dev/null, in its own process
group (so a timeout kills the plugin *and* whatever it started), with ``LC_ALL=C``
unless ``env`` says otherwise (perfdata must use ``.`` as the decimal point).

Exit codes 0/1/2/3 are OK/WARNING/CRITICAL/UNKNOWN; any other code (126, 127, a
signal) is UNKNOWN. A timeout or an executable that cannot be started raises
:class:`CheckError` (UNKNOWN: Patrol could not find out).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
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
from patrol.checks.perfdata import measurement_name, parse_output
from patrol.checks.schemas import config_schema

if TYPE_CHECKING:
    from patrol.checks.schemas.nagios import NagiosConfig

DEFAULT_TIMEOUT = 10.0
_TEXT_LIMIT = 4096


def _truncate(text: str, limit: int = _TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more chars]"


class NagiosCheck:
    """Runs one plugin; status from its exit code, measurements from its perfdata."""

    type: ClassVar[str] = "nagios"
    Config: ClassVar[ConfigClass] = config_schema("nagios", "NagiosConfig")
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = ()
    REQUIRES: ClassVar[tuple[str, ...]] = ()
    DIAGNOSTICS: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        config: NagiosConfig,
        popen: Callable[..., subprocess.Popen[bytes]] = subprocess.Popen,
        environ: dict[str, str] | None = None,
    ) -> None:
        self.config = config
        self._popen = popen
        self._environ = environ

    def _env(self) -> dict[str, str]:
        env = dict(os.environ if self._environ is None else self._environ)
        env["LC_ALL"] = "C"
        env.update({key: secret.reveal() for key, secret in self.config.env.items()})
        return env

    def _execute(self) -> tuple[int, str, str]:
        """(exit code, stdout, stderr); kills the whole process group on timeout."""
        argv = self.config.command
        timeout = self.config.timeout or DEFAULT_TIMEOUT
        try:
            proc = self._popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, env=self._env(), cwd=self.config.cwd,
                start_new_session=True,
            )
        except OSError as exc:
            where = f" in {self.config.cwd}" if self.config.cwd else ""
            raise CheckError(
                f"cannot execute {argv[0]}{where}: {exc.strerror or exc}"
            ) from exc
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):  # it may have just exited
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise CheckError(
                f"plugin {Path(argv[0]).name} timed out after {timeout:g}s"
            ) from None
        return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    def run(self, ctx: RunContext) -> Result:
        code, stdout, stderr = self._execute()
        output = parse_output(stdout)
        plugin = Path(self.config.command[0]).name
        if code in (0, 1, 2, 3):
            status = Status(code)
            text = output.summary or f"{plugin} exited {code} ({status.name}) with no output"
        else:
            status = Status.UNKNOWN
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            detail = output.summary or (stderr.strip().splitlines() or [""])[0]
            text = f"{plugin} {how}" + (f": {detail}" if detail else "")
        measurements: list[Measurement] = []
        seen: dict[str, int] = {}
        for datum in output.perfdata:
            if datum.value is None:
                continue
            name = measurement_name(datum)
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                name = f"{name}_{seen[name]}"
            measurements.append(Measurement(name, datum.value))
        diagnostics: dict[str, Any] = {
            "exit_code": code,
            "perfdata": [d.as_dict() for d in output.perfdata],
        }
        if output.long_output.strip():
            diagnostics["long_output"] = _truncate(output.long_output)
        if stderr.strip():
            diagnostics["stderr"] = _truncate(stderr)
        if output.errors:
            diagnostics["perfdata_errors"] = list(output.errors[:20])
        return Result(status, f"{_truncate(text, 500)} on {ctx.hostname}",
                      tuple(measurements), diagnostics)
