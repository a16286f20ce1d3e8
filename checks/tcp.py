"""TCP port: does host:port accept a connection from here, and how fast.

Refused, timed out, unreachable and unresolvable are all CRITICAL: from this
host's point of view the service is broken, whichever layer failed. Optionally the
check sends ``send`` and requires ``expect`` (a substring) in what the server
answers, for banner protocols (SMTP, SSH, Redis ``PING``).

The connect timeout is the check's ``timeout`` (default 5 s); the banner read
shares the same budget, measured from the start of the run.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from patrol.checks.base import ConfigClass, Measurement, MeasurementSpec, Result, RunContext, Status
from patrol.checks.schemas import config_schema
from patrol.checks.thresholds import limit_note
from patrol.contract.units import format_duration

if TYPE_CHECKING:
    from patrol.checks.schemas.tcp import TcpConfig

DEFAULT_TIMEOUT = 5.0
BANNER_LIMIT = 4096  # bytes read at most while waiting for ``expect``


Connect = Callable[[tuple[str, int], float], socket.socket]


def _connect(address: tuple[str, int], timeout: float) -> socket.socket:
    return socket.create_connection(address, timeout=timeout)


def endpoint(host: str, port: int) -> str:
    """``host:port``, with IPv6 literals bracketed."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def seconds_text(seconds: float) -> str:
    """``3s`` / ``0.3s``: how an operator writes a timeout."""
    return f"{seconds:g}s"


def failure_text(exc: OSError, timeout: float) -> str:
    """Why a connection failed, phrased to follow ``host:port``."""
    if isinstance(exc, socket.gaierror):
        return f"cannot be resolved ({exc.strerror or exc})"
    if isinstance(exc, TimeoutError):
        return f"timed out after {seconds_text(timeout)}"
    if isinstance(exc, ConnectionRefusedError):
        return "refused the connection"
    return f"is unreachable ({exc.strerror or exc})"


class TcpCheck:
    """Connect time to a TCP port; warning 500 ms, critical 2 s by default."""

    type: ClassVar[str] = "tcp"
    Config: ClassVar[ConfigClass] = config_schema("tcp", "TcpConfig")
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = (
        MeasurementSpec(
            "connect_seconds", "time to complete the TCP handshake",
            True, 0.5, 2.0, primary=True,
        ),
        MeasurementSpec("up", "1 when the port accepted a connection (and answered as "
                        "expected), 0 otherwise", higher_is_worse=False),
    )
    REQUIRES: ClassVar[tuple[str, ...]] = ()
    DIAGNOSTICS: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        config: TcpConfig,
        connect: Connect = _connect,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._connect = connect
        self._clock = clock

    def run(self, ctx: RunContext) -> Result:
        cfg = self.config
        where = endpoint(cfg.host, cfg.port)
        timeout = cfg.timeout or DEFAULT_TIMEOUT
        started = self._clock()
        try:
            sock = self._connect((cfg.host, cfg.port), timeout)
        except OSError as exc:
            down = Measurement("up", 0.0)
            ctx.judge(down)
            summary = f"{where} {failure_text(exc, timeout)} on {ctx.hostname}"
            return Result(Status.CRITICAL, summary, (down,), {"error": repr(exc)})
        with sock:
            elapsed = max(0.0, self._clock() - started)
            banner, problem = self._converse(sock, timeout - elapsed)
        connect = Measurement("connect_seconds", elapsed)
        up = Measurement("up", 0.0 if problem else 1.0)
        status = Status.worst(ctx.judge(connect), ctx.judge(up))
        diagnostics = {} if banner is None else {"banner": banner.decode("utf-8", "replace")}
        if problem:
            return Result(Status.CRITICAL, f"{where} {problem} on {ctx.hostname}",
                          (connect, up), diagnostics)
        summary = f"{where} accepted a connection in {format_duration(elapsed)} on {ctx.hostname}"
        summary += limit_note(ctx.evaluator.levels("connect_seconds"), status, elapsed)
        return Result(status, summary, (connect, up), diagnostics)

    def _converse(self, sock: socket.socket, budget: float) -> tuple[bytes | None, str | None]:
        """Send ``send``, read until ``expect`` shows up; (what was read, problem)."""
        cfg = self.config
        if cfg.send is None and cfg.expect is None:
            return None, None
        sock.settimeout(max(budget, 0.001))
        wanted = cfg.expect.encode("utf-8") if cfg.expect is not None else b""
        received = b""
        try:
            if cfg.send is not None:
                sock.sendall(cfg.send.encode("utf-8"))
            while wanted and wanted not in received and len(received) < BANNER_LIMIT:
                chunk = sock.recv(BANNER_LIMIT - len(received))
                if not chunk:
                    break
                received += chunk
        except TimeoutError:
            if not received:
                limit = seconds_text(self.config.timeout or DEFAULT_TIMEOUT)
                return received, f"did not answer {cfg.expect!r} within {limit}"
        except OSError as exc:
            return received, f"closed the conversation ({exc.strerror or exc})"
        if wanted in received:
            return (received if wanted else None), None
        excerpt = received[:80].decode("utf-8", "replace")
        return received, f"answered {excerpt!r}, not {cfg.expect!r}"
