"""The agent's HTTP face: ``/metrics``, ``/api/v1/status``, ``/healthz``.

Stdlib ``ThreadingHTTPServer``: a web framework would cost more memory than the
whole agent's budget allows, and four read-only routes do not need one.

- ``GET /metrics``: Prometheus text 0.0.4, gzip when accepted; OpenMetrics only
  to a scraper that does not accept the text format. Prometheus lists OpenMetrics
  first but always accepts text 0.0.4 too; it gets the text, from the cached
  renderer (~0.4 ms for 21 checks instead of 3-4 ms through prometheus_client's
  generic OpenMetrics encoder). Our families are gauges without exemplars or
  ``_created`` series, so OpenMetrics would carry nothing more; Go exporters
  (node_exporter's promhttp) answer Prometheus in text 0.0.4 by default too.
  Open: it carries numbers, not diagnostics.
- ``GET /api/v1/status[?check=NAME]``: JSON state of every check (or one), with
  diagnostics, which can carry sensitive data (queries, process command lines).
  So it requires ``Authorization: Bearer <agent.token>`` and is refused (403)
  when no token is configured; it is never served unauthenticated.
- ``GET /healthz``: 200 while ``healthy()`` says the scheduler is alive, else 503.
- Other paths 404, other methods 405.

With ``tls_cert``/``tls_key`` the listening socket speaks TLS 1.2+ only. The
handshake runs in the connection's own thread, so one stalled client cannot block
``accept()`` for everybody else.

Requests are logged at DEBUG only (method, path, status); headers, and so the
token, are never logged.

Idle cost: the accept loop blocks in ``select()`` on the listening socket and one
end of a socket pair, with no timeout; :meth:`AgentServer.stop` writes a byte to
the other end. ``socketserver``'s ``serve_forever(poll_interval=0.2)`` woke five
times a second to look at a flag, ~0.08 % of a core on an idle agent.
"""

from __future__ import annotations

import contextlib
import gzip
import hmac
import json
import logging
import selectors
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client.exposition import choose_encoder, generate_latest, gzip_accepted
from prometheus_client.registry import CollectorRegistry

from patrol.agent.exposition import AgentRegistry
from patrol.agent.state import StateTable
from patrol.agent.version import AGENT_VERSION

log = logging.getLogger(__name__)

_UNSET: Any = object()
TEXT_0_0_4 = "text/plain; version=0.0.4; charset=utf-8"  # what AgentRegistry.text() renders
_IDLE_TIMEOUT_SECONDS = 30.0  # keep-alive connections idle longer than this are closed
_NO_TOKEN = (
    "the status API is disabled because it serves diagnostics, which may contain "
    "sensitive data: set agent.token in the agent configuration to enable it"
)


@dataclass(frozen=True, slots=True)
class _Face:
    """Everything a request reads, swapped as one object by :meth:`AgentServer.update`
    so a request never sees half of a reload."""

    registry: CollectorRegistry
    table: StateTable
    token: bytes | None
    agent_info: Mapping[str, Any]
    healthy: Callable[[], bool]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive: Prometheus reuses its connection
    server_version = f"patrol-agent/{AGENT_VERSION}"
    sys_version = ""
    timeout = _IDLE_TIMEOUT_SECONDS
    # Headers and body go out in two writes; with Nagle on, the body waits for the
    # client's delayed ACK (~40 ms on Linux) on a keep-alive connection.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        route = {
            "/metrics": self._metrics,
            "/api/v1/status": self._status,
            "/healthz": self._healthz,
        }.get(url.path)
        if route is None:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such path: {url.path}"})
        else:
            route(self.server.face, parse_qs(url.query))

    def __getattr__(self, name: str) -> Any:
        # http.server dispatches on do_<METHOD>; every method but GET is refused.
        if name.startswith("do_"):
            return self._method_not_allowed
        raise AttributeError(name)

    def _method_not_allowed(self) -> None:
        self._json(
            HTTPStatus.METHOD_NOT_ALLOWED,
            {"error": f"method {self.command} not allowed; only GET"},
            {"Allow": "GET"},
        )

    def _metrics(self, face: _Face, query: dict[str, list[str]]) -> None:
        accept = self.headers.get("Accept", "")
        encoder, content_type = choose_encoder(accept)
        if isinstance(face.registry, AgentRegistry) and (
                encoder is generate_latest or accepts_text(accept)):
            body = face.registry.text()  # what generate_latest gives, cached fast path
            content_type = TEXT_0_0_4
        else:
            body = encoder(face.registry)
        headers = {}
        if gzip_accepted(self.headers.get("Accept-Encoding", "")):
            body = gzip.compress(body, compresslevel=6)
            headers["Content-Encoding"] = "gzip"
        self._send(HTTPStatus.OK, body, content_type, headers)

    def _status(self, face: _Face, query: dict[str, list[str]]) -> None:
        if face.token is None:
            self._json(HTTPStatus.FORBIDDEN, {"error": _NO_TOKEN})
            return
        scheme, _, given = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            self._json(
                HTTPStatus.UNAUTHORIZED,
                {"error": "missing bearer token: send 'Authorization: Bearer <agent.token>'"},
                {"WWW-Authenticate": 'Bearer realm="patrol"'},
            )
            return
        # Header bytes arrive decoded as latin-1: re-encode to compare the raw bytes sent.
        if not hmac.compare_digest(given.strip().encode("latin-1"), face.token):
            self._json(
                HTTPStatus.UNAUTHORIZED,
                {"error": "invalid bearer token"},
                {"WWW-Authenticate": 'Bearer realm="patrol", error="invalid_token"'},
            )
            return
        views = face.table.snapshot()
        if "check" in query:
            wanted = set(query["check"])
            views = [v for v in views if v.info.name in wanted]
            missing = wanted - {v.info.name for v in views}
            if missing:
                self._json(
                    HTTPStatus.NOT_FOUND,
                    {"error": f"no check named {', '.join(map(repr, sorted(missing)))}"},
                )
                return
        self._json(
            HTTPStatus.OK,
            {"agent": dict(face.agent_info), "checks": [v.as_dict() for v in views]},
        )

    def _healthz(self, face: _Face, query: dict[str, list[str]]) -> None:
        try:
            alive = bool(face.healthy())
        except Exception:  # a broken probe means we cannot vouch for the agent
            log.exception("health probe failed")
            alive = False
        checks = len(face.table.snapshot())
        if alive:
            self._json(HTTPStatus.OK, {"status": "ok", "checks": checks})
        else:
            self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"status": "unhealthy", "checks": checks})

    def _json(
        self, status: HTTPStatus, payload: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        # default=str: a diagnostic holding a datetime must not turn the API into a 500.
        body = json.dumps(payload, default=str).encode()
        self._send(status, body, "application/json", headers)

    def _send(
        self, status: HTTPStatus, body: bytes, content_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":  # a HEAD response has headers only
            self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s %s %s", self.client_address[0], self.command, self.path, code)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.client_address[0], *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], face: _Face) -> None:
        self.face = face
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        # Before binding: a failed bind (port in use) calls server_close(), which
        # closes these, so they must exist by then.
        self._wake_r, self._wake_w = socket.socketpair()
        super().__init__(address, _Handler)

    def serve(self) -> None:
        """Accept until :meth:`wake` is called; blocks without a timeout (no polling)."""
        with selectors.DefaultSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                ready = {key.fileobj for key, _ in selector.select()}
                if self._wake_r in ready:
                    return
                # socketserver's one-request step (private; typeshed leaves it out)
                self._handle_request_noblock()  # type: ignore[attr-defined]

    def wake(self) -> None:
        """Make :meth:`serve` return (from any thread)."""
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def server_close(self) -> None:
        super().server_close()
        self._wake_r.close()
        self._wake_w.close()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Hang up idle keep-alive clients, so nothing is served after stop()."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Called inside socketserver's except block. Failed TLS handshakes and
        # dropped clients are routine: DEBUG, not a traceback on stderr.
        log.debug("connection from %s failed", client_address[0], exc_info=sys.exc_info())


def accepts_text(accept: str) -> bool:
    """Whether an ``Accept`` header admits the text format 0.0.4 (``text/plain``
    without a version or with 0.0.4, ``text/*`` or ``*/*``, and q above zero)."""
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        options = {k.strip().lower(): v.strip() for k, _, v in
                   (param.partition("=") for param in params)}
        try:
            if float(options.get("q", "1")) <= 0:
                continue
        except ValueError:
            continue
        media = media.lower()
        if media in ("*/*", "text/*") or (
                media == "text/plain" and options.get("version", "0.0.4") == "0.0.4"):
            return True
    return False


def tls_context(cert: str | Path, key: str | Path) -> ssl.SSLContext:
    """Server context: TLS 1.2 or newer, the certificate chain from ``cert``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


class AgentServer:
    """The agent's HTTP server, serving in a daemon thread.

    ``agent_info`` is the ``agent`` object of the status API (host, version,
    labels, started_at). ``healthy`` is called on each ``/healthz``.
    """

    def __init__(
        self,
        listen: tuple[str, int],
        registry: CollectorRegistry,
        table: StateTable,
        token: str | None,
        agent_info: Mapping[str, Any],
        healthy: Callable[[], bool],
        tls_cert: str | Path | None = None,
        tls_key: str | Path | None = None,
    ) -> None:
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("TLS needs both tls_cert and tls_key, or neither")
        self._listen = listen
        self._face = _Face(registry, table, _token_bytes(token), dict(agent_info), healthy)
        self._tls = tls_context(tls_cert, tls_key) if tls_cert and tls_key else None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); the real port when started with port 0."""
        if self._server is None:
            raise RuntimeError("server not started")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def scheme(self) -> str:
        return "https" if self._tls else "http"

    def start(self) -> None:
        """Bind (errors such as 'address in use' raise here) and serve in a thread."""
        server = _Server(self._listen, self._face)
        if self._tls is not None:
            server.socket = self._tls.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._server = server
        self._thread = threading.Thread(target=server.serve, name="patrol-http", daemon=True)
        self._thread.start()
        log.info("serving %s://%s:%d", self.scheme, *self.address)

    def stop(self) -> None:
        """Stop accepting, hang up open connections, close the socket, join."""
        if self._server is None:
            return
        self._server.wake()
        if self._thread is not None:
            self._thread.join()  # no accept() after this
        self._server.close_connections()
        self._server.server_close()
        self._server = self._thread = None

    def update(
        self,
        *,
        registry: CollectorRegistry = _UNSET,
        table: StateTable = _UNSET,
        token: str | None = _UNSET,
        agent_info: Mapping[str, Any] = _UNSET,
        healthy: Callable[[], bool] = _UNSET,
    ) -> None:
        """After a config reload: swap what requests see. ``token=None`` disables
        the status API; an omitted argument keeps its current value. Listen
        address and TLS files need a restart (stop, new server, start)."""
        changes: dict[str, Any] = {}
        if registry is not _UNSET:
            changes["registry"] = registry
        if table is not _UNSET:
            changes["table"] = table
        if token is not _UNSET:
            changes["token"] = _token_bytes(token)
        if agent_info is not _UNSET:
            changes["agent_info"] = dict(agent_info)
        if healthy is not _UNSET:
            changes["healthy"] = healthy
        self._face = replace(self._face, **changes)
        if self._server is not None:
            self._server.face = self._face


def _token_bytes(token: str | None) -> bytes | None:
    """An empty token counts as none: '' must never unlock the status API."""
    return token.encode() if token else None
