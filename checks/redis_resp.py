"""A small Redis client for the ``redis`` check: RESP2 over TCP, TLS or a unix socket.

Decision: the check sends six commands (AUTH, CLIENT SETNAME, SELECT, PING, INFO,
CONFIG GET; CLIENT ID and CLIENT LIST for the diagnostics) over one short-lived
connection, and RESP2 is a small documented protocol
(https://redis.io/docs/latest/develop/reference/protocol-spec/). redis-py costs the
agent ~13.5 MiB PSS (it also imports ``cryptography``) for this; this module costs
what ``socket`` and ``ssl`` already cost. No HELLO, no RESP3, no pooling, no retries.

URLs are redis-py's: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://``
(TLS) and ``unix:///path/to/socket?db=N``, with redis-py's TLS query options
(``ssl_cert_reqs=none|optional|required``, ``ssl_ca_certs``, ``ssl_ca_path``,
``ssl_check_hostname``, ``ssl_certfile``, ``ssl_keyfile``) and the same defaults
(verify the chain and the host name). redis-py's connection-pool and retry options
are accepted and ignored (one connection per run); any other option is an error
rather than silently dropped.

Errors follow redis-py's split, which the check maps to statuses: :class:`ConnectError`
(refused, timed out, TLS handshake, AUTH rejected, NOAUTH, the connection dropped) is
"cannot connect"; :class:`ReplyError` is any other error reply.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from patrol.checks import tls_info

DEFAULT_PORT = 6379
_CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL,
              "required": ssl.CERT_REQUIRED}
# redis-py URL options that shape its pool, retries or parser: nothing to do here.
_IGNORED = frozenset({
    "socket_timeout", "socket_connect_timeout", "socket_read_size", "socket_keepalive",
    "retry_on_timeout", "retry_on_error", "max_connections", "health_check_interval",
    "timeout", "protocol", "legacy_responses", "client_name",
})
_TLS = frozenset({"ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_path", "ssl_check_hostname",
                  "ssl_certfile", "ssl_keyfile"})
_AUTH_ARITY = "wrong number of arguments for 'auth' command"


class RedisError(Exception):
    """Anything that went wrong talking to Redis."""


class ConnectError(RedisError):
    """No usable session: refused, timed out, TLS failed, authentication failed."""


class ReplyError(RedisError):
    """The server answered a command with an error reply (``-ERR ...``)."""


@dataclass(frozen=True)
class Target:
    """Where and how to connect, parsed from a URL."""

    host: str = "localhost"
    port: int = DEFAULT_PORT
    path: str | None = None  # a unix socket
    username: str | None = None
    password: str | None = None
    db: int = 0
    tls: bool = False
    cert_reqs: str = "required"
    ca_certs: str | None = None
    ca_path: str | None = None
    check_hostname: bool = True
    certfile: str | None = None
    keyfile: str | None = None

    @property
    def where(self) -> str:
        return self.path or f"{self.host}:{self.port}"


def _flag(name: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"Invalid value for '{name}' in connection URL.")


def parse_url(url: str) -> Target:
    """A :class:`Target` from a redis-py URL; ``ValueError`` (whose text never quotes
    the URL) when it is not one."""
    if not url.lower().startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("Redis URL must specify one of the following schemes "
                         "(redis://, rediss://, unix://)")
    parts = urlsplit(url)
    options = {name: values[0] for name, values in parse_qs(parts.query).items() if values}
    unknown = sorted(set(options) - _IGNORED - _TLS - {"db"})
    if unknown:
        raise ValueError(f"unsupported option(s) in the Redis URL: {', '.join(unknown)}")
    fields: dict[str, Any] = {
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
    }
    if "db" in options:
        try:
            fields["db"] = int(options["db"])
        except ValueError:
            raise ValueError("Invalid value for 'db' in connection URL.") from None
    if parts.scheme.lower() == "unix":
        fields["path"] = unquote(parts.path) or None
        if not fields["path"]:
            raise ValueError("a unix:// Redis URL needs the socket's path")
    else:
        if parts.hostname:
            fields["host"] = unquote(parts.hostname)
        if parts.port is not None:  # raises ValueError for a port out of range
            fields["port"] = parts.port
        db = unquote(parts.path).replace("/", "")
        if db.isdigit() and "db" not in options:  # redis-py ignores a path that is not one
            fields["db"] = int(db)
        fields["tls"] = parts.scheme.lower() == "rediss"
    if "ssl_cert_reqs" in options:
        reqs = options["ssl_cert_reqs"].lower()
        if reqs not in _CERT_REQS:
            raise ValueError(f"Invalid SSL Certificate Requirements Flag: {reqs}")
        fields["cert_reqs"] = reqs
    if "ssl_check_hostname" in options:
        fields["check_hostname"] = _flag("ssl_check_hostname", options["ssl_check_hostname"])
    for key in ("ca_certs", "ca_path", "certfile", "keyfile"):
        if f"ssl_{key}" in options:
            fields[key] = options[f"ssl_{key}"]
    return Target(**fields)


@cache
def _system_store_context(cert_reqs: str, check_hostname: bool) -> ssl.SSLContext:
    """A context on the system CA store, built once per process (loading the store
    costs ~30 ms of CPU)."""
    context = ssl.create_default_context()
    context.check_hostname = check_hostname and cert_reqs == "required"
    context.verify_mode = _CERT_REQS[cert_reqs]
    return context


def tls_context(target: Target) -> ssl.SSLContext:
    """The context redis-py would build for ``target``'s TLS options."""
    if target.cert_reqs == "none" and not target.certfile:
        return tls_info.unverified_context()
    if not (target.ca_certs or target.ca_path or target.certfile):
        return _system_store_context(target.cert_reqs, target.check_hostname)
    # A CA or client certificate file is read on every connect, so a renewed file is
    # picked up without a restart; one file is cheap to load.
    if target.ca_certs or target.ca_path:
        context = ssl.create_default_context(cafile=target.ca_certs, capath=target.ca_path)
    else:
        context = ssl.create_default_context()
    context.check_hostname = target.check_hostname and target.cert_reqs == "required"
    context.verify_mode = _CERT_REQS[target.cert_reqs]
    if target.certfile:
        context.load_cert_chain(target.certfile, target.keyfile)
    return context


def _error_text(where: str, exc: BaseException) -> str:
    """redis-py's wording: ``Error 111 connecting to host:6379. Connection refused.``"""
    if isinstance(exc, OSError) and exc.errno is not None and exc.strerror:
        return f"Error {exc.errno} connecting to {where}. {exc.strerror}."
    if isinstance(exc, ssl.SSLError) and len(exc.args) >= 2:
        return f"Error {exc.args[0]} connecting to {where}. {exc.args[1]}."
    return f"Error connecting to {where}. {exc or type(exc).__name__}."


class Client:
    """One connection to Redis, opened on the first command.

    The methods are the names and return shapes of redis-py's (``ping``, ``info``,
    ``config_get``, ``client_id``, ``client_list``, ``close``) so the check is
    written against either.
    """

    def __init__(self, target: Target, *, socket_connect_timeout: float = 5.0,
                 socket_timeout: float = 5.0, client_name: str | None = None) -> None:
        self.target = target
        self.connect_timeout = socket_connect_timeout
        self.timeout = socket_timeout
        self.client_name = client_name
        self._sock: socket.socket | None = None
        self._file: Any = None

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Client:
        """Like ``redis.Redis.from_url``; ``decode_responses`` is accepted and
        always on (replies are text)."""
        options.pop("decode_responses", None)
        return cls(parse_url(url), **options)

    # -- the connection ----------------------------------------------------------------
    def _connect(self) -> None:
        target = self.target
        try:
            if target.path:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.connect_timeout)
                try:
                    sock.connect(target.path)
                except BaseException:
                    sock.close()
                    raise
            else:
                sock = socket.create_connection((target.host, target.port),
                                                timeout=self.connect_timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                if target.tls:
                    sock = tls_context(target).wrap_socket(sock, server_hostname=target.host)
                sock.settimeout(self.timeout)
            except BaseException:
                sock.close()
                raise
        except TimeoutError:
            raise ConnectError("Timeout connecting to server") from None
        except OSError as exc:  # refused, unreachable, TLS handshake (ssl.SSLError)
            raise ConnectError(_error_text(target.where, exc)) from None
        self._sock, self._file = sock, sock.makefile("rb")
        try:
            self._handshake()
        except BaseException:
            self.close()
            raise

    def _handshake(self) -> None:
        """AUTH (ACL user and password, or the password alone, falling back for a
        server before 6.0), CLIENT SETNAME, SELECT: a failure is "cannot connect"."""
        target = self.target
        if target.password or target.username:
            args = [target.username, target.password or ""] if target.username else [
                target.password or ""]
            try:
                self._call("AUTH", *args)
            except ReplyError as exc:
                if _AUTH_ARITY not in str(exc).lower() or len(args) == 1:
                    raise ConnectError(str(exc)) from None
                try:  # a server before 6.0 takes the password alone
                    self._call("AUTH", args[-1])
                except ReplyError as again:
                    raise ConnectError(str(again)) from None
        try:
            if self.client_name:
                self._call("CLIENT", "SETNAME", self.client_name)
            if target.db:
                self._call("SELECT", str(target.db))
        except ReplyError as exc:
            raise ConnectError(str(exc)) from None

    def close(self) -> None:
        sock, file = self._sock, self._file
        self._sock = self._file = None
        if file is not None:
            file.close()
        if sock is not None:
            sock.close()

    # -- RESP2 -------------------------------------------------------------------------
    def _call(self, *args: str) -> Any:
        if self._sock is None:
            self._connect()
        assert self._sock is not None
        encoded = [arg.encode() for arg in args]
        request = b"*%d\r\n" % len(encoded) + b"".join(
            b"$%d\r\n%s\r\n" % (len(arg), arg) for arg in encoded)
        try:
            self._sock.sendall(request)
            reply = self._read()
        except TimeoutError:
            self.close()
            raise ConnectError(f"Timeout reading from {self.target.where}") from None
        except OSError as exc:
            self.close()
            raise ConnectError(_error_text(self.target.where, exc)) from None
        if isinstance(reply, ReplyError):
            if str(reply).startswith(("NOAUTH", "LOADING")):  # redis-py's connection errors
                raise ConnectError(str(reply))
            raise reply
        return reply

    def _line(self) -> bytes:
        line = self._file.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionResetError(0, "Connection closed by server")
        return bytes(line[:-2])

    def _read(self) -> Any:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode("utf-8", "replace")
        if kind == b"-":
            return ReplyError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self._file.read(size + 2)
            if len(data) != size + 2:
                raise ConnectionResetError(0, "Connection closed by server")
            return data[:-2].decode("utf-8", "replace")
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self._read() for _ in range(count)]
        raise RedisError(f"unexpected reply from Redis: {line[:40]!r}")

    # -- the commands the check sends -------------------------------------------------
    def ping(self) -> bool:
        return bool(self._call("PING") == "PONG")

    def info(self, section: str) -> dict[str, Any]:
        return parse_info(str(self._call("INFO", section)))

    def config_get(self, name: str) -> dict[str, str]:
        flat = self._call("CONFIG", "GET", name) or []
        return dict(zip(flat[::2], flat[1::2], strict=True))

    def client_id(self) -> int:
        return int(self._call("CLIENT", "ID"))

    def client_list(self) -> list[dict[str, str]]:
        return parse_client_list(str(self._call("CLIENT", "LIST")))


def _value(text: str) -> Any:
    """An INFO value as redis-py gives it: int, float, or the text."""
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        return text


def parse_info(text: str) -> dict[str, Any]:
    """``INFO`` text -> ``{field: value}``; numbers as numbers, ``k=v,k=v`` values
    (``db0:keys=1,expires=0``) as dicts, like redis-py."""
    out: dict[str, Any] = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, value = line.split(":", 1)
        if "=" in value:
            pairs = (item.rpartition("=") for item in value.split(",") if item)
            out[key] = {k: _value(v) for k, _, v in pairs}
        else:
            out[key] = _value(value)
    return out


def parse_client_list(text: str) -> list[dict[str, str]]:
    """``CLIENT LIST`` text -> one ``{field: text}`` per client."""
    return [dict(pair.partition("=")[::2] for pair in line.split(" ") if pair)
            for line in text.splitlines() if line]
