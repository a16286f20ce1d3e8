"""The agent's connection to a collector (agent.collector_http) against a real
HTTP/1.1 server on 127.0.0.1 that can close a kept-alive connection the way a
server whose keep-alive timeout just expired does: after reading the next request,
without answering it, or with a reset."""

from __future__ import annotations

import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from patrol.agent.collector_http import CollectorConnection
from tests.certs import issue, make_ca

TIMEOUT = (2.0, 5.0)
HEADERS = {"Content-Type": "application/json"}


class KeepAliveServer:
    """Answers every POST 202 on a kept-alive connection, except that ``drop_at``
    (1-based request number on its connection) is read and then dropped: closed
    (``reset=False``) or reset (``reset=True``). Counts connections and answers."""

    def __init__(self, *, drop_at: int | None = None, reset: bool = False,
                 tls: ssl.SSLContext | None = None) -> None:
        self.drop_at = drop_at
        self.reset = reset
        self.tls = tls
        self.connections = 0
        self.requests_read = 0
        self.answered: list[bytes] = []
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            conn = self.tls.wrap_socket(raw, server_side=True) if self.tls else raw
        except (OSError, ssl.SSLError):
            raw.close()
            return
        reader = conn.makefile("rb")
        number = 0
        try:
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    if not line:
                        return
                    head += line
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = reader.read(length)
                number += 1
                with self.lock:
                    self.requests_read += 1
                if number == self.drop_at:
                    if self.reset:
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                        struct.pack("ii", 1, 0))
                    return
                with self.lock:
                    self.answered.append(body)
                conn.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n"
                             b"Content-Type: application/json\r\n\r\n{}")
        except OSError:
            return
        finally:
            reader.close()
            conn.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def servers() -> Iterator[list[KeepAliveServer]]:
    started: list[KeepAliveServer] = []
    yield started
    for server in started:
        server.close()


def test_requests_in_a_burst_share_one_connection(servers) -> None:
    server = KeepAliveServer()
    servers.append(server)
    client = CollectorConnection(server.url)
    answers = [client.post("/api/v1/events", b'{"n": %d}' % n, HEADERS, TIMEOUT)
               for n in range(5)]
    assert [a.status for a in answers] == [202] * 5
    assert server.connections == 1
    assert len(server.answered) == 5


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_request_on_a_connection_the_server_just_dropped_is_sent_again(
        servers, reset: bool) -> None:
    """The 1-in-1,000 failure of the issue: the server's keep-alive timer fires as the
    next request goes out. The caller sees one answer, the server one copy."""
    server = KeepAliveServer(drop_at=2, reset=reset)
    servers.append(server)
    client = CollectorConnection(server.url)
    first = client.post("/api/v1/events", b"first", HEADERS, TIMEOUT)
    second = client.post("/api/v1/events", b"second", HEADERS, TIMEOUT)
    assert (first.status, second.status) == (202, 202)
    assert server.answered == [b"first", b"second"]
    assert server.connections == 2


def test_a_fresh_connection_that_fails_is_not_retried(servers) -> None:
    """Only a reused connection may have gone stale: a server that drops a brand-new
    connection is down or broken, and that is the pusher's backoff's business."""
    server = KeepAliveServer(drop_at=1)
    servers.append(server)
    client = CollectorConnection(server.url)
    with pytest.raises(ConnectionError):
        client.post("/api/v1/events", b"x", HEADERS, TIMEOUT)
    assert server.requests_read == 1
    assert server.answered == []


def test_a_connection_idle_past_the_limit_is_replaced_before_use(servers) -> None:
    now = [0.0]
    server = KeepAliveServer()
    servers.append(server)
    client = CollectorConnection(server.url, idle_seconds=4.0, monotonic=lambda: now[0])
    client.post("/api/v1/heartbeats", b"1", HEADERS, TIMEOUT)
    now[0] = 3.9
    client.post("/api/v1/heartbeats", b"2", HEADERS, TIMEOUT)
    assert server.connections == 1
    now[0] = 3.9 + 4.0
    client.post("/api/v1/heartbeats", b"3", HEADERS, TIMEOUT)
    assert server.connections == 2
    assert server.answered == [b"1", b"2", b"3"]


def _tls_server(tmp_path: Path) -> tuple[KeepAliveServer, Path, Path]:
    """An HTTPS server signed by a generated CA; (server, its CA, an unrelated CA)."""
    ca, other = make_ca(tmp_path, "Collector CA"), make_ca(tmp_path, "Unrelated CA")
    cert = issue(ca, tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert.cert_path, cert.key_path)
    return KeepAliveServer(tls=context), ca.cert_path, other.cert_path


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"])
def test_ca_file_is_trusted_whatever_a_ca_bundle_variable_says(
        servers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    """Issue 9: with REQUESTS_CA_BUNDLE set, the agent used to verify the collector
    against that bundle instead of ``collector.ca_file``."""
    server, ca, unrelated = _tls_server(tmp_path)
    servers.append(server)
    monkeypatch.setenv(variable, str(unrelated))
    client = CollectorConnection(server.url, ca_file=ca)
    assert client.post("/api/v1/events", b"{}", HEADERS, TIMEOUT).status == 202
    assert client.post("/api/v1/events", b"{}", HEADERS, TIMEOUT).status == 202
    assert server.connections == 1


def test_a_collector_signed_by_another_ca_is_refused(servers, tmp_path: Path) -> None:
    server, _, unrelated = _tls_server(tmp_path)
    servers.append(server)
    client = CollectorConnection(server.url, ca_file=unrelated)
    with pytest.raises(ssl.SSLCertVerificationError):
        client.post("/api/v1/events", b"{}", HEADERS, TIMEOUT)
    assert server.answered == []
