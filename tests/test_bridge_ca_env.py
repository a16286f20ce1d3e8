"""Issue 9: the helpdesk client trusts the adapter's ``ca_file`` even when
REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE point at another bundle (requests lets those
override a session's ``verify``). A real HTTPS server on 127.0.0.1 signed by a
generated CA."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from patrol.ticketing_bridge.http import HttpClient
from patrol.ticketing_bridge.protocol import TemporaryError
from tests.certs import CA, issue, make_ca


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[tuple[str, CA, CA]]:
    """(base URL, the CA that signed the server, an unrelated CA)."""
    ca, unrelated = make_ca(tmp_path, "Helpdesk CA"), make_ca(tmp_path, "Unrelated CA")
    cert = issue(ca, tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert.cert_path, cert.key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", ca, unrelated
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_ca_file_wins_over_a_ca_bundle_in_the_environment(
        desk, monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    url, ca, unrelated = desk
    monkeypatch.setenv(variable, str(unrelated.cert_path))
    client = HttpClient(url, ca_file=str(ca.cert_path), name="desk")
    assert client.json("GET", "/ping") == {"ok": True}


def test_a_helpdesk_signed_by_another_ca_is_refused(desk) -> None:
    url, _, unrelated = desk
    client = HttpClient(url, ca_file=str(unrelated.cert_path), name="desk")
    with pytest.raises(TemporaryError, match="cannot connect"):
        client.json("GET", "/ping")
