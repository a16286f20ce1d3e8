"""MariaDB/MySQL connections: ``Threads_connected`` against ``max_connections``.

The server refuses ordinary clients at ``max_connections`` (it keeps one extra slot for
a SUPER/CONNECTION ADMIN user, which is the operator's way in, not capacity), so the
ratio's denominator is ``max_connections`` as set. ``Threads_connected`` includes the
check's own connection: it does occupy a slot. ``Aborted_connects`` is a counter since
start-up, so it goes to the diagnostics rather than being thresholded.

``tls:`` (``disabled | preferred | required``) says whether the connection is
encrypted. The default depends on where the server is: ``disabled`` for a unix
socket or a loopback host (``localhost``, ``127.0.0.0/8``, ``::1``), where the
bytes never leave the machine and anyone who could read them is root already, so
TLS would protect nothing and cost a handshake on every run; ``preferred`` for
any other host, PyMySQL's and the MySQL client's own default (encrypt when the
server offers TLS, plain text when it does not), so a password does not cross the
network in clear where the server can do better. ``required`` refuses a server
without TLS (CRITICAL, "cannot connect"). Like the MySQL client's
``--ssl-mode=PREFERRED/REQUIRED``, neither mode verifies the server certificate.

Decision (cost): PyMySQL builds its "preferred" context with
``ssl.create_default_context()`` on EVERY connect, loading the whole system CA
store (~30 ms of CPU per run) for a context that then verifies nothing. The
check instead hands PyMySQL one unverified context built without a CA store
(:func:`checks.tls_info.unverified_context`, built once per process): ``required``
passes it as ``ssl=`` (public API); ``preferred`` connects through a
``Connection`` subclass whose ``_create_ssl_ctx`` returns it. Should a future
PyMySQL stop calling that method, connections still work and only pay the old
cost again.

Decision (memory): PyMySQL is imported through :mod:`checks.pymysql_lean`, which
keeps ``cryptography`` (~7.6 MiB PSS) out until a server asks for RSA-based
authentication (``sha256_password``, or ``caching_sha2_password``'s full
authentication without TLS); then it is loaded and the connect is made again. Where
it is not installed that is UNKNOWN, saying so; likewise PyNaCl for ``ed25519``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

from patrol.checks import pymysql_lean, tls_info
from patrol.checks.base import (
    CheckError,
    ConfigClass,
    Measurement,
    MeasurementSpec,
    Result,
    RunContext,
    Status,
)
from patrol.checks.dsn import one_line, redact, tally
from patrol.checks.schemas import config_schema
from patrol.checks.thresholds import limit_text
from patrol.contract.units import format_number, format_ratio

if TYPE_CHECKING:
    from patrol.checks.schemas.mysql import MysqlConfig

INFO_TEXT_LIMIT = 500
DIAGNOSE_ROWS = 20
_STATUS_VARS = ("Threads_connected", "Threads_running", "Max_used_connections",
                "Aborted_connects")
_PROCESSLIST = """
SELECT ID, USER, HOST, DB, COMMAND, TIME, STATE, INFO
  FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()
"""


def is_loopback(host: Any) -> bool:
    """``localhost`` or a loopback address literal; names are not resolved (no DNS
    lookups while a config is validated)."""
    if not isinstance(host, str):
        return False
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@cache
def _preferred_connection() -> type:
    """PyMySQL's ``Connection`` with the cached context for "preferred" mode."""
    import pymysql.connections

    class Connection(pymysql.connections.Connection):
        def _create_ssl_ctx(self, sslp: Any) -> Any:
            if not sslp:  # preferred mode asks for a context with no options
                return tls_info.unverified_context()
            # A private PyMySQL hook (the only way to give "preferred" mode a context),
            # so types-PyMySQL does not declare it.
            return super()._create_ssl_ctx(sslp)  # type: ignore[misc]

    return Connection


class MysqlCheck:
    """Connections used vs ``max_connections`` (warning 80 %, critical 90 %)."""

    type: ClassVar[str] = "mysql"
    Config: ClassVar[ConfigClass] = config_schema("mysql", "MysqlConfig")
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = (
        MeasurementSpec(
            "used_ratio", "Threads_connected / max_connections", True, 0.80, 0.90, primary=True,
        ),
        MeasurementSpec("threads_connected", "open client connections, this check's included"),
        MeasurementSpec("threads_running", "connections executing a statement right now"),
        MeasurementSpec("max_connections", "the max_connections setting"),
        MeasurementSpec("max_used_connections", "highest Threads_connected since start-up"),
    )
    REQUIRES: ClassVar[tuple[str, ...]] = ("pymysql",)
    DIAGNOSTICS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: MysqlConfig, connect: Callable[..., Any] | None = None) -> None:
        """``connect(**kwargs)`` returns a PyMySQL-like connection (``cursor()``,
        ``get_server_info()``, ``close()``); default PyMySQL's ``Connection`` (for
        ``tls: preferred``, a subclass that reuses one TLS context)."""
        self.config = config
        self._connect = connect

    @property
    def _where(self) -> str:
        return self.config.unix_socket or f"{self.config.host}:{self.config.port}"

    def _secret(self) -> str | None:
        return self.config.password.reveal() if self.config.password else None

    def _open(self) -> Any:
        connect = self._connect
        if connect is None:
            pymysql_lean.load()
            import pymysql

            tls = self.config.tls
            connect = _preferred_connection() if tls == "preferred" else pymysql.connect
        timeout = max(1, round(self.config.connect_timeout))
        options = dict(
            host=self.config.host, port=self.config.port, user=self.config.user,
            password=self._secret() or "", unix_socket=self.config.unix_socket,
            connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout,
            program_name="patrol", **self._tls_options(),
        )
        try:
            return connect(**options)
        except RuntimeError as exc:  # PyMySQL: an auth plugin needs an optional module
            if pymysql_lean.needs_rsa(exc) and pymysql_lean.enable_rsa():
                return connect(**options)  # the server asked for RSA: now we have it
            raise CheckError(_missing_module(exc, self.config.user)) from None

    def _tls_options(self) -> dict[str, Any]:
        """PyMySQL's TLS keywords for ``tls:`` (preferred: none, its own default mode)."""
        if self.config.tls == "disabled":
            return {"ssl_disabled": True}
        if self.config.tls == "required":
            return {"ssl": tls_info.unverified_context()}
        return {}

    def run(self, ctx: RunContext) -> Result:
        pymysql_lean.load()
        import pymysql

        try:
            conn = self._open()
        except pymysql.OperationalError as exc:  # refused, timed out, access denied
            message = redact(_message(exc), self._secret())
            return Result(
                Status.CRITICAL,
                f"cannot connect to MariaDB/MySQL at {self._where} on {ctx.hostname}: "
                f"{one_line(message)}",
                diagnostics={"error": message[:4096], "endpoint": self._where},
            )
        try:
            flavour = "MariaDB" if "mariadb" in conn.get_server_info().lower() else "MySQL"
            with conn.cursor() as cur:
                cur.execute(
                    "SHOW GLOBAL STATUS WHERE Variable_name IN %s", (_STATUS_VARS,)
                )
                found = {name: int(value) for name, value in cur.fetchall()}
                cur.execute("SELECT @@GLOBAL.max_connections")
                max_conn = int(cur.fetchone()[0])
        except pymysql.Error as exc:
            raise CheckError(
                f"cannot read server status: {one_line(redact(_message(exc), self._secret()))}"
            ) from None  # the cause would repeat the unredacted text
        finally:
            conn.close()
        return self._evaluate(ctx, flavour, max_conn, found)

    def _evaluate(
        self, ctx: RunContext, flavour: str, max_conn: int, found: dict[str, int],
    ) -> Result:
        connected = found.get("Threads_connected", 0)
        running = found.get("Threads_running", 0)
        ratio = connected / max(1, max_conn)
        measurements = (
            Measurement("used_ratio", ratio),
            Measurement("threads_connected", float(connected)),
            Measurement("threads_running", float(running)),
            Measurement("max_connections", float(max_conn)),
            Measurement("max_used_connections", float(found.get("Max_used_connections", 0))),
        )
        judged = [(m, ctx.judge(m)) for m in measurements]
        summary = (
            f"{flavour} connections {connected}/{max_conn} ({format_ratio(ratio)}) "
            f"on {ctx.hostname}"
        )
        levels = ctx.evaluator.levels
        note = limit_text(levels("used_ratio"), judged[0][1], ratio)
        summary += f" ({note})" if note else ""
        summary += f"; {running} running"
        for m, status in judged[1:]:
            note = limit_text(levels(m.name, m.item), status, m.value)
            if note:
                summary += f"; {m.name} {format_number(m.value)} ({note})"
        return Result(
            Status.worst(*(s for _, s in judged)), summary, measurements,
            diagnostics={"aborted_connects": found.get("Aborted_connects", 0)},
        )

    def diagnose(self, result: Result) -> dict[str, Any]:
        """The processlist (own connection excluded) counted by user, client host,
        database and command/state, and the longest-running non-Sleep statements.
        A database error (it may be why we are here) is returned as ``{"error": ...}``."""
        pymysql_lean.load()
        import pymysql

        try:
            conn = self._open()
            try:
                with conn.cursor() as cur:
                    cur.execute(_PROCESSLIST)
                    rows = cur.fetchall()
            finally:
                conn.close()
        except pymysql.Error as exc:  # the breach may be "cannot connect": say so, redacted
            return {"error": one_line(redact(_message(exc), self._secret()), 4096)}
        except CheckError as exc:  # a missing optional module
            return {"error": str(exc)}
        threads = [
            {
                "id": int(pid), "user": user or "", "host": _client(host or ""), "db": db,
                "command": command or "", "time_seconds": int(seconds or 0),
                "state": state or "", "info": _text(info)[:INFO_TEXT_LIMIT],
            }
            for pid, user, host, db, command, seconds, state, info in rows
        ]
        busy = [t for t in threads if t["command"] not in ("Sleep", "Daemon", "Binlog Dump")]
        busy.sort(key=lambda t: t["time_seconds"], reverse=True)
        return {
            "threads": len(threads),
            "by_user": tally(t["user"] for t in threads),
            "by_host": tally(t["host"] for t in threads),
            "by_db": tally(t["db"] or "(none)" for t in threads),
            "by_command": tally(
                f"{t['command']}: {t['state']}" if t["state"] else t["command"] for t in threads
            ),
            "longest_queries": busy[:DIAGNOSE_ROWS],
        }


def _message(exc: Exception) -> str:
    """PyMySQL errors are ``(code, text)`` tuples; show the text, code last."""
    if len(exc.args) == 2 and isinstance(exc.args[1], str):
        return f"{exc.args[1]} (error {exc.args[0]})"
    return str(exc) or type(exc).__name__


def _missing_module(exc: RuntimeError, user: str) -> str:
    """UNKNOWN text for PyMySQL's "package is required for <auth plugin>" errors."""
    if pymysql_lean.needs_rsa(exc):
        return (f"the server asks RSA-based authentication of user '{user}' "
                "(sha256_password, or caching_sha2_password without TLS), which needs the "
                "Python module 'cryptography', not installed: pip install cryptography, "
                "or connect with tls: required")
    if "pynacl" in str(exc).lower():
        return (f"the server authenticates user '{user}' with ed25519, which needs the "
                "Python module 'nacl', not installed: pip install pynacl")
    return f"cannot connect: {one_line(str(exc))}"


def _client(host: str) -> str:
    """``10.0.0.5:51234`` -> ``10.0.0.5``; ``localhost`` (a socket) stays."""
    name, colon, port = host.rpartition(":")
    return name if colon and port.isdigit() and name else host


def _text(info: Any) -> str:
    if isinstance(info, bytes):
        return info.decode("utf-8", "replace")
    return info or ""
