"""The ``postgres`` check's connection: a libpq DSN opened with pg8000.

Decision: pg8000 (pure Python, maintained, SCRAM through scramp) instead of psycopg
for the agent's check. The check runs three read-only statements per interval; psycopg
with its binary libpq cost the agent 15.7 MiB PSS, pg8000 8.5 (bench/driver_footprint.py).
The collector's store keeps psycopg (connection pooling, COPY, its own needs).

pg8000 takes keyword arguments, not a libpq DSN, so :func:`parse` reads the two DSN
forms libpq reads (``postgresql://`` URLs and ``key=value`` strings) with libpq's
defaults and environment (``PGHOST``, ``PGPORT``, ``PGUSER``, ``PGPASSWORD``,
``PGDATABASE``, ``PGSSLMODE``, ``PGSSLROOTCERT``, ``PGAPPNAME``, ``PGPASSFILE``) and
``~/.pgpass``; an option we do not know is an error ("invalid connection option"),
as in libpq. Not supported (an error, never silently different): several hosts,
GSSAPI/SSPI authentication.

``sslmode`` as libpq: ``disable``; ``allow`` (plain, TLS if the server refuses plain);
``prefer`` (the default: TLS when the server offers it, unverified; else plain);
``require`` (TLS, unverified, unless ``sslrootcert`` is given: then as ``verify-ca``);
``verify-ca``; ``verify-full`` (also the host name). No TLS on a unix socket.

Errors: :class:`ConnectFailed` (refused, timed out, TLS, authentication, the server
refusing the session) is "cannot connect"; :class:`QueryFailed` a statement that failed
or a connection lost mid-way. Texts follow libpq's (``connection to server at "db",
port 5432 failed: ...``) and never contain the password.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import socket
import ssl
import struct
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from patrol.checks import tls_info

DEFAULT_PORT = 5432
SOCKET_DIRS = ("/var/run/postgresql", "/tmp")  # Debian's libpq default, then upstream's
_KV = re.compile(r"\s*(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|(?:[^\s'\\]|\\.)*)")
# Options libpq knows that change nothing for one short read-only session.
_IGNORED = frozenset({
    "connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
    "keepalives_count", "tcp_user_timeout", "target_session_attrs", "sslcompression",
    "gssencmode", "channel_binding", "client_encoding", "sslsni", "ssl_min_protocol_version",
    "ssl_max_protocol_version", "load_balance_hosts", "requirepeer", "krbsrvname", "service",
})
_KNOWN = frozenset({
    "host", "hostaddr", "port", "dbname", "user", "password", "passfile", "sslmode",
    "sslrootcert", "sslcert", "sslkey", "application_name", "fallback_application_name",
    "options",
}) | _IGNORED
_ENV = {"host": "PGHOST", "hostaddr": "PGHOSTADDR", "port": "PGPORT", "user": "PGUSER",
        "password": "PGPASSWORD", "dbname": "PGDATABASE", "sslmode": "PGSSLMODE",
        "sslrootcert": "PGSSLROOTCERT", "application_name": "PGAPPNAME",
        "passfile": "PGPASSFILE", "options": "PGOPTIONS"}
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


class ConnectFailed(Exception):
    """No session: the server refused, timed out, failed TLS or the login."""


class QueryFailed(Exception):
    """A statement failed, or the connection was lost while it ran."""


@dataclass(frozen=True)
class Target:
    """Where and as whom to connect, after defaults, environment and ~/.pgpass."""

    host: str  # a name or address, or a unix-socket directory (starts with "/")
    port: int
    user: str
    database: str
    password: str | None
    sslmode: str
    sslrootcert: str | None
    sslcert: str | None
    sslkey: str | None
    application_name: str | None
    options: str | None
    hostaddr: str | None = None

    @property
    def socket(self) -> str | None:
        return f"{self.host}/.s.PGSQL.{self.port}" if self.host.startswith("/") else None

    @property
    def where(self) -> str:
        """libpq's words for the endpoint, for messages."""
        if self.socket:
            return f'connection to server on socket "{self.socket}"'
        return f'connection to server at "{self.hostaddr or self.host}", port {self.port}'


def _unquote_kv(value: str) -> str:
    if value.startswith("'") and value.endswith("'") and len(value) >= 2:
        value = value[1:-1]
    return re.sub(r"\\(.)", r"\1", value)


def _options(dsn: str) -> dict[str, str]:
    """The options written in ``dsn``, either form; ``ValueError`` in libpq's words."""
    if "://" in dsn.split("=", 1)[0]:
        parts = urlsplit(dsn)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError(f'invalid URI scheme "{parts.scheme}"')
        found: dict[str, str] = {}
        netloc = parts.netloc.rpartition("@")[2]
        if parts.username:
            found["user"] = unquote(parts.username)
        if parts.password:
            found["password"] = unquote(parts.password)
        if "," in netloc:
            raise ValueError("several hosts in one dsn are not supported")
        try:
            if parts.hostname:
                found["host"] = unquote(parts.hostname)
            if parts.port:
                found["port"] = str(parts.port)
        except ValueError:
            raise ValueError(f'invalid port in the dsn\'s host "{netloc}"') from None
        if parts.path.strip("/"):
            found["dbname"] = unquote(parts.path.lstrip("/"))
        found.update(parse_qsl(parts.query, keep_blank_values=True))
    else:
        found = {}
        rest = dsn.strip()
        while rest:
            match = _KV.match(rest)
            if not match:
                word = rest.split()[0]
                raise ValueError(f'missing "=" after "{word}" in connection info string')
            found[match.group(1).lower()] = _unquote_kv(match.group(2))
            rest = rest[match.end():].strip()
    for key in found:
        if key not in _KNOWN:
            raise ValueError(f'invalid connection option "{key}"')
    return found


def _default_host() -> str:
    for directory in SOCKET_DIRS:
        if Path(directory).is_dir():
            return directory
    return "localhost"


def parse(dsn: str, environ: dict[str, str] | None = None) -> Target:
    """A :class:`Target` from a DSN, libpq's environment variables and ~/.pgpass."""
    env = os.environ if environ is None else environ
    given = _options(dsn)
    values = {key: given.get(key) or env.get(var) or None for key, var in _ENV.items()}
    if "," in (values["host"] or ""):
        raise ValueError("several hosts in one dsn are not supported")
    host = values["host"] or values["hostaddr"] or _default_host()
    try:
        port = int(values["port"] or DEFAULT_PORT)
    except ValueError:
        raise ValueError(f'invalid integer value "{values["port"]}" for "port"') from None
    user = values["user"] or getpass.getuser()
    database = values["dbname"] or user
    sslmode = (values["sslmode"] or "prefer").lower()
    if sslmode not in SSLMODES:
        raise ValueError(f'invalid sslmode value: "{sslmode}"')
    password = values["password"] or _pgpass(values["passfile"], host, port, database, user)
    return Target(
        host=host, port=port, user=user, database=database, password=password,
        sslmode=sslmode, sslrootcert=values["sslrootcert"], sslcert=given.get("sslcert"),
        sslkey=given.get("sslkey"),
        application_name=values["application_name"] or given.get("fallback_application_name"),
        options=values["options"], hostaddr=values["hostaddr"] if values["host"] else None,
    )


def _pgpass(passfile: str | None, host: str, port: int, database: str,
            user: str) -> str | None:
    """The password for this endpoint from a libpq password file, if any matches.
    Like libpq, a file others can read is ignored."""
    path = Path(passfile) if passfile else Path.home() / ".pgpass"
    try:
        if path.stat().st_mode & 0o077:
            return None
        lines = path.read_text().splitlines()
    except OSError:
        return None
    wanted = ("localhost" if host.startswith("/") else host, str(port), database, user)
    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        fields = [re.sub(r"\\(.)", r"\1", f) for f in re.split(r"(?<!\\):", line, maxsplit=4)]
        if len(fields) == 5 and all(f in ("*", w) for f, w in zip(fields, wanted, strict=False)):
            return fields[4]
    return None


@cache
def _system_context(check_hostname: bool) -> ssl.SSLContext:
    """On the system CA store, built once per process (loading it costs ~30 ms)."""
    context = ssl.create_default_context()
    context.check_hostname = check_hostname
    return context


def tls_context(target: Target) -> ssl.SSLContext | bool:
    """pg8000's ``ssl_context``: False for no TLS, else a context for the sslmode."""
    verify = target.sslmode in ("verify-ca", "verify-full") or (
        target.sslmode == "require" and target.sslrootcert is not None)
    if target.socket or target.sslmode == "disable":
        return False
    if not verify and not target.sslcert:
        return tls_info.unverified_context()
    full = target.sslmode == "verify-full"
    root = target.sslrootcert or str(Path.home() / ".postgresql" / "root.crt")
    if verify and root == "system" and not target.sslcert:
        return _system_context(full)
    if verify:  # read on every connect, so a renewed file is picked up without a restart
        if root != "system" and not Path(root).is_file():
            raise FileNotFoundError(2, "No such file", root)
        context = ssl.create_default_context(cafile=None if root == "system" else root)
        context.check_hostname = full
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if target.sslcert:
        context.load_cert_chain(target.sslcert, target.sslkey)
    return context


def _describe(exc: BaseException) -> str:
    """A pg8000/OS error as libpq words it."""
    args = exc.args[0] if exc.args else None
    if isinstance(args, dict):  # an ErrorResponse: {"S": "FATAL", "C": "28P01", "M": ...}
        return f"{args.get('S', 'ERROR')}: {args.get('M', '')}".strip()
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, TimeoutError) or isinstance(cause, TimeoutError):
        return "timeout expired"
    if isinstance(exc, OSError) and exc.strerror:
        return str(exc.strerror)
    if isinstance(cause, OSError) and cause.strerror:
        return str(cause.strerror)
    return str(exc) or type(exc).__name__


class Connection:
    """The check's view of a session: ``execute(sql).fetchall()`` and ``close()``,
    the shape psycopg has, so injected test connections look the same."""

    def __init__(self, native: Any, target: Target) -> None:
        self._native = native
        self.target = target

    def execute(self, sql: str) -> _Rows:
        from pg8000.exceptions import Error

        try:
            return _Rows(self._native.run(sql))
        except (Error, OSError) as exc:
            raise QueryFailed(_describe(exc)) from None

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the session is gone either way
            self._native.close()


@dataclass(frozen=True)
class _Rows:
    rows: list[list[Any]]

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.rows]


_SSL_REQUEST = struct.pack("!ii", 8, 80877103)


def _socket(target: Target, context: ssl.SSLContext | bool, timeout: float) -> socket.socket:
    """A connected socket for pg8000 (its ``sock=``), TLS negotiated here: with
    ``prefer`` a server without TLS is spoken to in plain on the same connection, as
    libpq does (pg8000 alone would need a second connection)."""
    sock: socket.socket | None = None
    try:
        if target.socket:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(target.socket)
            return sock
        sock = socket.create_connection((target.hostaddr or target.host, target.port), timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if context is False or context is True:
            return sock
        sock.sendall(_SSL_REQUEST)
        answer = sock.recv(1)
        if answer == b"S":
            return context.wrap_socket(sock, server_hostname=target.host)
        if answer == b"N" and target.sslmode in ("prefer", "allow"):
            return sock
        raise ConnectFailed(
            f"{target.where} failed: server does not support SSL, but SSL was required")
    except OSError as exc:  # refused, unreachable, timed out, TLS handshake
        if sock is not None:
            sock.close()
        raise ConnectFailed(f"{target.where} failed: {_describe(exc)}") from None
    except BaseException:
        if sock is not None:
            sock.close()
        raise


def connect(dsn: str, *, connect_timeout: float = 5.0,
            fallback_application_name: str = "patrol") -> Connection:
    """A session for ``dsn``; :class:`ConnectFailed` when there is none, ``ValueError``
    when the DSN cannot be used (its text never quotes the DSN)."""
    target = parse(dsn)
    if not target.application_name:
        target = replace(target, application_name=fallback_application_name)
    try:
        context = tls_context(target)
    except FileNotFoundError as exc:  # libpq's wording, as for its default root.crt
        raise ConnectFailed(
            f'{target.where} failed: root certificate file "{exc.filename or "?"}" does not '
            "exist; provide it (sslrootcert=), use the system's trusted roots with "
            "sslrootcert=system, or use an sslmode that does not verify") from None
    except (OSError, ValueError) as exc:  # an unreadable certificate or key
        raise ConnectFailed(f"{target.where} failed: {_describe(exc)}") from None
    # allow: plain first, TLS if pg_hba refuses plain; the others: one try (prefer falls
    # back to plain on the same connection, in _socket, as libpq does)
    tries: list[ssl.SSLContext | bool] = (
        [False, tls_info.unverified_context()] if target.sslmode == "allow" else [context])
    import pg8000.native
    from pg8000.exceptions import DatabaseError, Error

    for attempt, ssl_context in enumerate(tries):
        sock = _socket(target, ssl_context, connect_timeout)
        try:
            native = pg8000.native.Connection(
                target.user, host=target.hostaddr or target.host, port=target.port,
                database=target.database, password=target.password, sock=sock,
                ssl_context=False, application_name=target.application_name,
                startup_params={"options": target.options} if target.options else None,
            )
            return Connection(native, target)
        except DatabaseError as exc:
            sock.close()
            code = exc.args[0].get("C") if exc.args and isinstance(exc.args[0], dict) else None
            if attempt < len(tries) - 1 and code == "28000":  # allow: pg_hba wants TLS
                continue
            raise ConnectFailed(f"{target.where} failed: {_describe(exc)}") from None
        except (Error, OSError) as exc:  # authentication we cannot do, a dropped socket
            sock.close()
            raise ConnectFailed(f"{target.where} failed: {_describe(exc)}") from None
        except AttributeError:  # pg8000 1.31 asked for SCRAM without a password
            sock.close()
            if target.password is not None:
                raise
            raise ConnectFailed(f"{target.where} failed: server requesting SCRAM "
                                "authentication, but no password was provided") from None
    raise AssertionError("unreachable: the last attempt returns or raises")
