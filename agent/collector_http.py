"""One kept-alive HTTP(S) connection from an agent to one collector.

Why the standard library and not ``requests``: the pusher sends a few small JSON
POSTs to one origin, which ``http.client`` does in a few lines, and ``requests``
(with urllib3, charset_normalizer, idna, certifi) adds 4.2-4.5 MiB PSS and ~35 ms
of imports on top of the agent's own to every agent that has a collector (this
module and the pusher: 0.4 MiB; measured per import, bench/README.md). It also
keeps TLS trust explicit: ``collector.ca_file`` is the only bundle trusted when
set, whatever ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` say (``requests`` let
those override a session's ``verify``), and the system's trust store otherwise.

Connection manners:

- the connection is reused between requests (one TCP/TLS set-up per burst, not per
  POST);
- it is closed by this side before it has been idle for ``idle_seconds``, which the
  agent keeps below the collector's keep-alive timeout, so the server rarely closes
  a connection this side is about to write on;
- when it happens anyway (the server closed a kept-alive connection just as the
  request went out: ``BrokenPipeError``, ``ConnectionResetError``, an empty answer),
  the request is sent once more on a fresh connection. That is safe for the pusher's
  POSTs: the collector is idempotent on ``event_id`` and a heartbeat replaces the
  previous one. A failure on a fresh connection is the caller's to handle.
"""

from __future__ import annotations

import http.client
import select
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

# What a kept-alive connection the server has closed looks like to the client that
# writes on it or waits for its answer.
STALE_CONNECTION_ERRORS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError,
                           http.client.RemoteDisconnected, ssl.SSLEOFError)


@dataclass(frozen=True)
class Answer:
    """A collector's answer: status, headers (names lower-cased) and body text."""

    status: int
    headers: Mapping[str, str]
    text: str


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Trust ``ca_file`` alone when given, else the system's store. Built once per
    collector: loading a CA bundle costs milliseconds of CPU per connection."""
    if ca_file is not None:
        return ssl.create_default_context(cafile=str(ca_file))
    return ssl.create_default_context()


class CollectorConnection:
    """Requests (POSTs; a GET for check sets) to one collector origin over one reused
    connection. Not thread-safe: each delivery lane (and the check-set puller) owns its
    own."""

    def __init__(self, base_url: str, *, ca_file: Path | None = None,
                 idle_seconds: float = 4.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{base_url!r} is not an http(s) base URL")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self.idle_seconds = idle_seconds
        self.connections_opened = 0  # for tests and curiosity: reuse is visible here
        self.stale_retries = 0
        self._context = tls_context(ca_file) if parts.scheme == "https" else None
        self._monotonic = monotonic
        self._conn: http.client.HTTPConnection | None = None
        self._last_used = 0.0

    def post(self, path: str, body: bytes, headers: Mapping[str, str],
             timeout: tuple[float, float]) -> Answer:
        """POST ``body``; raises ``OSError`` or ``http.client.HTTPException`` when no
        answer came (connection refused, TLS failure, timeout, reset twice)."""
        return self.request("POST", path, body, headers, timeout)

    def get(self, path: str, headers: Mapping[str, str],
            timeout: tuple[float, float]) -> Answer:
        """GET ``path`` (check sets); fails as :meth:`post` does."""
        return self.request("GET", path, None, headers, timeout)

    def request(self, method: str, path: str, body: bytes | None,
                headers: Mapping[str, str], timeout: tuple[float, float]) -> Answer:
        reused = self._conn is not None and not self._expired()
        if not reused:
            self.close()
        try:
            return self._exchange(method, path, body, headers, timeout)
        except STALE_CONNECTION_ERRORS:
            self.close()
            if not reused:
                raise
            self.stale_retries += 1
            return self._exchange(method, path, body, headers, timeout)
        except BaseException:
            self.close()
            raise

    def _expired(self) -> bool:
        """Idle too long, or the server has already said goodbye: an idle kept-alive
        connection has nothing to read unless the server closed it (EOF pending)."""
        if self._monotonic() - self._last_used >= self.idle_seconds:
            return True
        sock = self._conn.sock if self._conn is not None else None
        if sock is None:
            return True
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable)

    def _exchange(self, method: str, path: str, body: bytes | None,
                  headers: Mapping[str, str], timeout: tuple[float, float]) -> Answer:
        conn = self._connection(timeout)
        conn.request(method, self.prefix + path, body=body, headers=dict(headers))
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        answer = Answer(response.status, {k.lower(): v for k, v in response.getheaders()},
                        text)
        if response.will_close:
            self.close()
        else:
            self._last_used = self._monotonic()
        return answer

    def _connection(self, timeout: tuple[float, float]) -> http.client.HTTPConnection:
        connect, read = timeout
        if self._conn is None:
            if self._context is not None:
                conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                    self.host, self.port, timeout=connect, context=self._context)
            else:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=connect)
            conn.connect()  # under the connect timeout, TLS handshake included
            self.connections_opened += 1
            self._conn = conn
        assert self._conn.sock is not None
        self._conn.sock.settimeout(read)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
