"""http: real HTTP and HTTPS servers on 127.0.0.1 (http.server in a thread), with
certificates signed by a throw-away CA from tests/certs.py."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import ValidationError

from patrol.checks.base import Status
from tests.certs import CA, ServerCert, issue, make_ca, whole_second
from tests.conftest import free_port
from tests.helpers import build, run

DAY = 86400
SECRET = "Bearer s3cr3t-t0ken"


class Handler(BaseHTTPRequestHandler):
    """Routes for the tests; every request's headers land in ``server.seen``."""

    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in {"Content-Type": "text/plain; charset=utf-8", **headers}.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.seen.append((self.command, self.path, dict(self.headers)))
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/ok":
            self._reply(200, b"status: healthy\n")
        elif url.path == "/fail":
            self._reply(503, b"database down\n")
        elif url.path == "/slow":
            time.sleep(float(query["s"]))
            self._reply(200, b"finally\n")
        elif url.path == "/old":
            self._reply(302, Location=query.get("to", "/ok"))
        elif url.path == "/loop":
            self._reply(302, Location="/loop")
        elif url.path == "/cookie":
            self._reply(200, b"hi\n", Set_Cookie="session=abc123; HttpOnly")
        elif url.path == "/login":
            self._reply(302, Location="/members", Set_Cookie="step=1; Path=/")
        elif url.path == "/members":
            seen = "step=1" in self.headers.get("Cookie", "")
            self._reply(200 if seen else 403, b"welcome\n" if seen else b"who?\n")
        elif url.path == "/gzip":
            import gzip

            plain = b"status: healthy\n" * 100
            if "gzip" in self.headers.get("Accept-Encoding", ""):
                self._reply(200, gzip.compress(plain), Content_Encoding="gzip")
            else:
                self._reply(200, plain)
        else:
            self._reply(404, b"no such page\n")

    do_HEAD = do_GET

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        data = self.rfile.read(length)
        self.server.seen.append((self.command, self.path, dict(self.headers)))
        if self.path == "/see-other":
            self._reply(303, Location="/ok")
        elif self.path == "/temporary":
            self._reply(307, Location="/submit")
        else:
            self._reply(201, b"got " + data)


@contextmanager
def serve(tls: ServerCert | None = None) -> Iterator[tuple[str, Any]]:
    """A threaded server on 127.0.0.1; yields (base URL, server)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.seen = []
    scheme = "http"
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls.cert_path, tls.key_path)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def http_server() -> Iterator[tuple[str, Any]]:
    with serve() as pair:
        yield pair


@pytest.fixture
def base(http_server: tuple[str, Any]) -> str:
    http_server[1].seen.clear()
    return http_server[0]


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CA:
    return make_ca(tmp_path_factory.mktemp("ca"))


class Clock:
    def __init__(self, *ticks: float) -> None:
        self.ticks = list(ticks)

    def __call__(self) -> float:
        return self.ticks.pop(0)


# --- plain HTTP ---------------------------------------------------------------------


def test_healthy_endpoint_is_ok(base: str) -> None:
    result = run("http", url=f"{base}/ok")
    assert result.status is Status.OK
    assert result.summary.startswith(f"{base}/ok returned 200 in ")
    assert result.summary.endswith("ms on testhost")
    assert result.measurement("status_code") == 200
    assert result.measurement("body_bytes") == len(b"status: healthy\n")
    assert result.measurement("up") == 1
    assert 0 < result.measurement("response_seconds") < 1
    assert result.measurement("tls_expiry_seconds") is None
    assert result.diagnostics["status_line"] == "HTTP/1.0 200 OK"
    assert result.diagnostics["body_excerpt"] == "status: healthy\n"
    assert result.diagnostics["redirects"] == []


@pytest.mark.parametrize(
    ("expect", "status", "summary"),
    [
        (None, Status.CRITICAL, "{base}/fail returned 503 (expected 200-399) on testhost"),
        ("2xx", Status.CRITICAL, "{base}/fail returned 503 (expected 2xx) on testhost"),
        ([200, "500-503"], Status.OK, None),
    ],
    ids=["default-range", "class", "listed"],
)
def test_unexpected_status_is_critical(
    base: str, expect: Any, status: Status, summary: str | None
) -> None:
    options = {} if expect is None else {"expect_status": expect}
    result = run("http", url=f"{base}/fail", **options)
    assert result.status is status
    assert result.measurement("status_code") == 503
    if summary:
        assert result.summary == summary.format(base=base)
        assert result.measurement("up") == 0
        assert result.diagnostics["status_line"] == "HTTP/1.0 503 Service Unavailable"
        assert result.diagnostics["body_excerpt"] == "database down\n"


@pytest.mark.parametrize(
    ("ticks", "status", "note"),
    [
        ((10.0, 10.2), Status.OK, "returned 200 in 200ms on testhost"),
        ((10.0, 11.5), Status.WARNING, "returned 200 in 1.5s on testhost (warning at 1.0s)"),
        ((10.0, 16.0), Status.CRITICAL, "returned 200 in 6.0s on testhost (critical at 5.0s)"),
    ],
    ids=["fast", "warning", "critical"],
)
def test_response_time_against_default_thresholds(
    base: str, ticks: tuple[float, float], status: Status, note: str
) -> None:
    result = run("http", world={"clock": Clock(*ticks)}, url=f"{base}/ok")
    assert result.measurement("response_seconds") == pytest.approx(ticks[1] - ticks[0])
    assert result.status is status
    assert result.summary == f"{base}/ok {note}"


@pytest.mark.slow
def test_slow_server_breaches_operator_thresholds(base: str) -> None:
    result = run("http", url=f"{base}/slow?s=0.3", warning="100ms", critical="250ms")
    assert result.status is Status.CRITICAL
    assert result.measurement("response_seconds") >= 0.3
    assert result.summary.endswith("on testhost (critical at 250ms)")


@pytest.mark.slow
def test_read_timeout_is_critical(base: str) -> None:
    result = run("http", url=f"{base}/slow?s=1", timeout="300ms")
    assert result.status is Status.CRITICAL
    assert result.summary == f"{base}/slow?s=1 timed out after 0.3s on testhost"
    assert result.measurement("up") == 0


def test_refused_connection_is_critical() -> None:
    url = f"http://127.0.0.1:{free_port()}/health"
    result = run("http", url=url)
    assert result.status is Status.CRITICAL
    assert result.summary == f"{url} refused the connection on testhost"
    assert result.diagnostics["error"].startswith("ConnectionRefusedError: ")


@pytest.mark.parametrize(
    ("options", "status", "summary"),
    [
        ({"body_match": r"status: (healthy|ok)"}, Status.OK, None),
        ({"body_match": r"status: ok"}, Status.CRITICAL,
         "{base}/ok returned 200 but the body does not match 'status: ok' on testhost"),
        ({"body_not_match": r"error|down"}, Status.OK, None),
        ({"body_not_match": r"heal\w+"}, Status.CRITICAL,
         "{base}/ok returned 200 with 'healthy' in the body on testhost"),
    ],
    ids=["match", "mismatch", "not-match-absent", "not-match-present"],
)
def test_body_content(base: str, options: dict[str, str], status: Status,
                      summary: str | None) -> None:
    result = run("http", url=f"{base}/ok", **options)
    assert result.status is status
    if summary:
        assert result.summary == summary.format(base=base)
        assert result.measurement("up") == 0


def test_redirects_are_followed_and_recorded(base: str) -> None:
    result = run("http", url=f"{base}/old")
    assert result.status is Status.OK
    assert result.measurement("status_code") == 200
    assert result.diagnostics["redirects"] == [
        {"status": 302, "url": f"{base}/old", "location": "/ok"}
    ]
    assert result.diagnostics["final_url"] == f"{base}/ok"


@pytest.mark.parametrize(
    ("expect", "status"), [(None, Status.OK), ([200], Status.CRITICAL)],
    ids=["302-in-default-range", "only-200"],
)
def test_redirect_not_followed(base: str, expect: Any, status: Status) -> None:
    options = {} if expect is None else {"expect_status": expect}
    result = run("http", url=f"{base}/old", follow_redirects=False, **options)
    assert result.measurement("status_code") == 302
    assert result.status is status
    if status is Status.CRITICAL:
        assert result.summary == f"{base}/old returned 302 (expected 200) on testhost"


def test_redirect_loop_is_critical(base: str) -> None:
    result = run("http", url=f"{base}/loop")
    assert result.status is Status.CRITICAL
    assert result.summary == f"{base}/loop redirects too many times on testhost"


def test_secret_header_is_sent_but_never_shown(base: str, http_server: Any) -> None:
    check, ctx = build("http", url=f"{base}/cookie",
                       headers={"Authorization": SECRET, "X-Probe": "patrol"})
    result = check.run(ctx)
    _, _, sent = http_server[1].seen[-1]
    assert sent["Authorization"] == SECRET
    assert sent["X-Probe"] == "patrol"
    assert result.diagnostics["headers"]["Set-Cookie"] == "***"
    assert "abc123" not in repr(result.as_dict())
    assert check.config.model_dump()["headers"] == {"Authorization": "***", "X-Probe": "patrol"}
    assert SECRET not in repr(check.config)


def test_header_secret_from_file(base: str, http_server: Any, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t0ken-from-file\n")
    run("http", url=f"{base}/ok", headers={"X-Api-Token": f"file:{token}"})
    assert http_server[1].seen[-1][2]["X-Api-Token"] == "t0ken-from-file"


def test_head_request(base: str, http_server: Any) -> None:
    result = run("http", url=f"{base}/ok", method="HEAD")
    assert result.status is Status.OK
    assert result.measurement("body_bytes") == 0
    assert http_server[1].seen[-1][0] == "HEAD"


def test_post_sends_body(base: str) -> None:
    result = run("http", url=f"{base}/submit", method="POST", body="ping", body_match="^got ping$")
    assert result.status is Status.OK
    assert result.measurement("status_code") == 201


@pytest.mark.parametrize(("path", "code", "trail"), [
    ("/see-other", 200, [("POST", "/see-other"), ("GET", "/ok")]),
    ("/temporary", 201, [("POST", "/temporary"), ("POST", "/submit")]),
], ids=["303-turns-into-get", "307-keeps-post-and-body"])
def test_post_redirects_as_requests_did(base: str, http_server: Any, path: str, code: int,
                                        trail: list[tuple[str, str]]) -> None:
    result = run("http", url=f"{base}{path}", method="POST", body="ping",
                 headers={"Content-Type": "text/plain"})
    assert result.status is Status.OK, result.summary
    assert result.measurement("status_code") == code
    assert [(m, p) for m, p, _ in http_server[1].seen] == trail
    # A body-less GET carries no header that describes a body.
    assert ("Content-Type" in http_server[1].seen[-1][2]) is (code == 201)
    if code == 201:
        assert result.diagnostics["body_excerpt"] == "got ping"


def test_gzip_body_is_decoded(base: str) -> None:
    result = run("http", url=f"{base}/gzip", body_match="^status: healthy")
    assert result.status is Status.OK, result.summary
    assert result.measurement("body_bytes") == len(b"status: healthy\n") * 100
    assert result.diagnostics["headers"]["Content-Encoding"] == "gzip"


def test_a_cookie_set_on_a_redirect_is_sent_to_the_next_hop(base: str) -> None:
    result = run("http", url=f"{base}/login", expect_status=200)
    assert result.status is Status.OK, result.summary
    assert result.diagnostics["final_url"] == f"{base}/members"


def test_authorization_stays_with_its_origin(base: str, http_server: Any) -> None:
    with serve() as (other, server):
        run("http", url=f"{base}/old?to={other}/ok", headers={"Authorization": SECRET})
        assert "Authorization" not in server.seen[-1][2]
    assert http_server[1].seen[-1][2]["Authorization"] == SECRET
    run("http", url=f"{base}/old?to=/ok", headers={"Authorization": SECRET})
    assert [h.get("Authorization") for _, _, h in http_server[1].seen[-2:]] == [SECRET] * 2


def test_credentials_in_the_url_are_sent_as_basic_auth(base: str, http_server: Any) -> None:
    run("http", url=base.replace("http://", "http://probe:p%40ss@") + "/ok")
    assert http_server[1].seen[-1][2]["Authorization"] == "Basic cHJvYmU6cEBzcw=="


def test_the_environment_proxy_is_used_unless_no_proxy_names_the_host(
    base: str, http_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    def unresolvable(address: Any, *args: Any, **kwargs: Any) -> Any:
        if address[0] == "web.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return socket.create_connection(address, *args, **kwargs)

    for name in ("HTTP_PROXY", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", base)  # the test server answers absolute URIs too
    result = run("http", world={"opener": unresolvable}, url="http://web.invalid/ok")
    assert result.status is Status.OK, result.summary
    assert http_server[1].seen[-1][1] == "http://web.invalid/ok"
    monkeypatch.setenv("no_proxy", "localhost,.invalid")
    result = run("http", world={"opener": unresolvable}, url="http://web.invalid/ok")
    assert result.summary.endswith("cannot be resolved (Name or service not known) on testhost")


def test_body_excerpt_is_at_most_2_kib() -> None:
    from patrol.checks.http import EXCERPT_BYTES

    class Big(Handler):
        def do_GET(self) -> None:
            self._reply(500, "€".encode() * 5000)  # 3 bytes each: 2048 splits one

    server = ThreadingHTTPServer(("127.0.0.1", 0), Big)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = run("http", url=f"http://127.0.0.1:{server.server_address[1]}/")
    finally:
        server.shutdown()
        server.server_close()
    assert result.status is Status.CRITICAL
    assert result.measurement("body_bytes") == 15000
    assert result.diagnostics["body_excerpt"] == "€" * (EXCERPT_BYTES // 3)


# --- HTTPS ----------------------------------------------------------------------------


def test_https_with_ca_file_reports_certificate_expiry(ca: CA, tmp_path: Path) -> None:
    cert = issue(ca, tmp_path, valid_for=timedelta(days=30))
    now = cert.not_after - timedelta(days=30)
    with serve(cert) as (url, _):
        result = run("http", world={"now": lambda: now}, url=f"{url}/ok",
                     ca_file=str(ca.cert_path))
    assert result.status is Status.OK, result.summary
    assert result.measurement("tls_expiry_seconds") == 30 * DAY
    tls = result.diagnostics["tls"]
    assert tls["subject"] == "CN=localhost,O=Patrol Tests"
    assert tls["issuer"] == "CN=Patrol Test CA,O=Patrol Tests"
    assert tls["not_after"] == cert.not_after.isoformat()
    assert tls["names"] == ["localhost", "127.0.0.1"]


def test_https_with_real_clock(ca: CA, tmp_path: Path) -> None:
    cert = issue(ca, tmp_path, valid_for=timedelta(days=30))
    with serve(cert) as (url, _):
        result = run("http", url=f"{url}/ok", ca_file=str(ca.cert_path))
    assert result.status is Status.OK
    assert result.measurement("tls_expiry_seconds") == pytest.approx(30 * DAY, abs=10)


def test_untrusted_certificate_is_critical(ca: CA, tmp_path: Path) -> None:
    cert = issue(ca, tmp_path)
    with serve(cert) as (url, _):
        result = run("http", url=f"{url}/ok")
    assert result.status is Status.CRITICAL
    assert result.summary == (
        f"{url}/ok failed TLS verification (unable to get local issuer certificate) "
        "on testhost"
    )
    # Who presented the rejected certificate, from an unverified second look.
    assert result.diagnostics["tls"]["issuer"] == "CN=Patrol Test CA,O=Patrol Tests"


def test_certificate_for_another_name_is_critical(ca: CA, tmp_path: Path) -> None:
    cert = issue(ca, tmp_path, common_name="other.example", hosts=("other.example",))
    with serve(cert) as (url, _):
        result = run("http", url=f"{url}/ok", ca_file=str(ca.cert_path))
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(f"{url}/ok failed TLS verification (IP address mismatch")


def test_expired_certificate_fails_verification(ca: CA, tmp_path: Path) -> None:
    now = whole_second()
    cert = issue(ca, tmp_path, not_before=now - timedelta(days=30),
                 not_after=now - timedelta(days=1))
    with serve(cert) as (url, _):
        result = run("http", url=f"{url}/ok", ca_file=str(ca.cert_path))
    assert result.status is Status.CRITICAL
    assert result.summary == f"{url}/ok failed TLS verification (certificate has expired) " \
        "on testhost"


@pytest.mark.parametrize(
    ("days", "options", "status", "note"),
    [
        (3, {}, Status.CRITICAL, "TLS certificate expires in 3d on testhost (critical at 7d)"),
        (10, {}, Status.WARNING, "TLS certificate expires in 10d on testhost (warning at 14d)"),
        (30, {"thresholds": {"tls_expiry_seconds": {"warning": "40d", "critical": "35d"}}},
         Status.CRITICAL, "TLS certificate expires in 30d on testhost (critical at 35d)"),
    ],
    ids=["3-days-default", "10-days-default", "30-days-operator-35d"],
)
def test_certificate_expiry_thresholds(
    ca: CA, tmp_path: Path, days: int, options: dict[str, Any], status: Status, note: str
) -> None:
    cert = issue(ca, tmp_path, valid_for=timedelta(days=days))
    now = cert.not_after - timedelta(days=days)
    with serve(cert) as (url, _):
        result = run("http", world={"now": lambda: now}, url=f"{url}/ok",
                     ca_file=str(ca.cert_path), **options)
    assert result.measurement("tls_expiry_seconds") == days * DAY
    assert result.status is status
    assert result.summary == f"{url}/ok {note}"


def test_insecure_accepts_untrusted_certificate(ca: CA, tmp_path: Path) -> None:
    cert = issue(ca, tmp_path, valid_for=timedelta(days=60))
    with serve(cert) as (url, _):
        result = run("http", url=f"{url}/ok", insecure=True)
    assert result.status is Status.OK, result.summary
    assert result.measurement("tls_expiry_seconds") == pytest.approx(60 * DAY, abs=10)


def test_http_redirect_to_https_checks_final_certificate(
    base: str, ca: CA, tmp_path: Path
) -> None:
    cert = issue(ca, tmp_path, valid_for=timedelta(days=3))
    now = cert.not_after - timedelta(days=3)
    with serve(cert) as (url, _):
        result = run("http", world={"now": lambda: now}, url=f"{base}/old?to={url}/ok",
                     ca_file=str(ca.cert_path))
    assert result.diagnostics["final_url"] == f"{url}/ok"
    assert result.measurement("tls_expiry_seconds") == 3 * DAY
    assert result.status is Status.CRITICAL


# --- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": "ftp://host/x"}, "is not an http(s) URL"),
        ({"url": "http://h/", "expect_status": ["20x"]}, "'20x' is not a status"),
        ({"url": "http://h/", "expect_status": "600"}, "not a status range"),
        ({"url": "http://h/", "body_match": "(unclosed"}, "is not a valid regular expression"),
        ({"url": "http://h/", "method": "HEAD", "body_match": "x"}, "HEAD responses have no"),
        ({"url": "http://h/", "ca_file": "/nonexistent/ca.pem"},
         "/nonexistent/ca.pem does not exist; give the path of a PEM CA bundle"),
        ({"url": "http://h/", "method": "PUT"}, "method"),
        ({"url": "http://h/", "headers": {"X-Count": 3}}, "must be strings"),
        # Every check's common options are still checked beside the url's own validator.
        ({"url": "http://h/", "runbook": "wiki/web"}, "'wiki/web' is not a URL"),
    ],
    ids=["scheme", "status-pattern", "status-range", "regex", "head-body", "ca-file",
         "method", "header-type", "runbook"],
)
def test_config_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build("http", **options)


def test_unresolvable_host_is_critical_with_the_resolver_message() -> None:
    # The error socket.create_connection raises for an unknown name, without asking
    # a DNS server.
    import socket

    def unresolvable(address: Any, *args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    result = run("http", world={"opener": unresolvable}, url="http://web.invalid/health")
    assert result.status is Status.CRITICAL
    assert result.summary == (
        "http://web.invalid/health cannot be resolved (Name or service not known) on testhost"
    )


# --- cost: one TLS context per check, a new connection per run ---------------------------


class KeepAliveHandler(Handler):
    """HTTP/1.1: the server would keep a connection open for the next request."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.ports.append(self.client_address[1])
        super().do_GET()


def test_each_run_opens_a_new_connection_and_forgets_cookies() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), KeepAliveHandler)
    server.seen, server.ports = [], []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        check, ctx = build("http", url=f"http://127.0.0.1:{server.server_address[1]}/cookie")
        results = [check.run(ctx) for _ in range(3)]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert [r.status for r in results] == [Status.OK] * 3
    # A kept-alive connection would show one client port and hide the connect time.
    assert len(set(server.ports)) == 3
    # The cookie the first run received is not sent by the next ones.
    assert [("cookie" in {k.lower() for k in headers}) for _, _, headers in server.seen] == [
        False, False, False]


@pytest.mark.parametrize("path", ["/ok", "/old?to=/ok"], ids=["direct", "same-origin-redirect"])
def test_https_certificate_is_read_from_the_request_connection(
    ca: CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    from patrol.checks import tls_info

    built: list[Any] = []
    real = tls_info.client_context
    monkeypatch.setattr(tls_info, "client_context", lambda v: built.append(v) or real(v))

    def no_second_handshake(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a second TLS handshake was made")

    cert = issue(ca, tmp_path, valid_for=timedelta(days=20))
    now = cert.not_after - timedelta(days=20)
    with serve(cert) as (url, server):
        check, ctx = build("http", world={"now": lambda: now,
                                          "peer_chain": no_second_handshake},
                           url=f"{url}{path}", ca_file=str(ca.cert_path))
        results = [check.run(ctx) for _ in range(3)]
    assert [r.status for r in results] == [Status.OK] * 3, results[0].summary
    assert [r.measurement("tls_expiry_seconds") for r in results] == [20 * DAY] * 3
    assert results[0].diagnostics["tls"]["issuer"] == "CN=Patrol Test CA,O=Patrol Tests"
    assert [p for _, p, _ in server.seen][-1] == "/ok"
    assert built == [str(ca.cert_path)]  # the CA file is read once per check, not per run


def test_https_redirect_to_another_origin_reports_the_configured_host(
    ca: CA, tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = issue(ca, tmp_path / "a", valid_for=timedelta(days=5))
    final = issue(ca, tmp_path / "b", valid_for=timedelta(days=50))
    now = first.not_after - timedelta(days=5)
    with serve(first) as (url, _), serve(final) as (other, _):
        result = run("http", world={"now": lambda: now}, url=f"{url}/old?to={other}/ok",
                     ca_file=str(ca.cert_path))
    assert result.diagnostics["final_url"] == f"{other}/ok"
    assert result.measurement("tls_expiry_seconds") == 5 * DAY
    assert result.status is Status.CRITICAL


# --- the full certificate chain (issue 14) --------------------------------------------


def make_intermediate(root: CA, directory: Path, not_after: Any) -> CA:
    """An intermediate CA signed by ``root``, valid until ``not_after``: the piece a
    server sends along with its own certificate, and the one people forget to renew."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Patrol Tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "Patrol Test Intermediate")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(root.cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(whole_second() - timedelta(days=1)).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            root.key.public_key()), False)
        .sign(root.key, hashes.SHA256())
    )
    path = directory / "intermediate.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return CA(path, cert, key, "Patrol Test Intermediate")


def test_an_intermediate_expiring_before_the_leaf_is_reported(ca: CA, tmp_path: Path) -> None:
    now = whole_second()
    intermediate = make_intermediate(ca, tmp_path, now + timedelta(days=5))
    leaf = issue(intermediate, tmp_path, not_after=now + timedelta(days=60))
    with leaf.cert_path.open("ab") as bundle:  # what the server sends: leaf, intermediate
        bundle.write(intermediate.cert_path.read_bytes())
    with serve(leaf) as (url, _):
        result = run("http", world={"now": lambda: now}, url=f"{url}/ok",
                     ca_file=str(ca.cert_path))
    assert result.measurement("tls_expiry_seconds") == 60 * DAY
    assert result.measurement("tls_chain_expiry_seconds") == 5 * DAY
    assert result.measurement("tls_hostname_match") == 1
    assert result.status is Status.CRITICAL
    assert result.summary == (f"{url}/ok TLS chain certificate 'Patrol Test Intermediate' "
                              "expires in 5d on testhost (critical at 7d)")
    chain = result.diagnostics["tls_chain"]
    assert [c["subject"] for c in chain] == ["CN=localhost,O=Patrol Tests",
                                            "CN=Patrol Test Intermediate,O=Patrol Tests"]
    assert chain[1]["seconds_left"] == 5 * DAY


def test_a_healthy_chain_is_ok_and_measured(ca: CA, tmp_path: Path) -> None:
    cert = issue(ca, tmp_path, valid_for=timedelta(days=40), chain=True)
    with serve(cert) as (url, _):
        result = run("http", url=f"{url}/ok", ca_file=str(ca.cert_path))
    assert result.status is Status.OK, result.summary
    assert result.measurement("tls_chain_expiry_seconds") == pytest.approx(40 * DAY, abs=10)
    assert len(result.diagnostics["tls_chain"]) == 2  # the leaf and the CA it was sent with


def test_insecure_still_reports_a_certificate_for_another_host(ca: CA, tmp_path: Path) -> None:
    cert = issue(ca, tmp_path, common_name="other.example",
                 hosts=("other.example", "*.other.example"))
    with serve(cert) as (url, _):
        result = run("http", url=f"{url}/ok", insecure=True)
    assert result.measurement("tls_hostname_match") == 0
    assert result.status is Status.CRITICAL
    assert result.summary == (f"{url}/ok TLS certificate does not name 127.0.0.1 on testhost "
                              "(it names other.example, *.other.example)")


@pytest.mark.parametrize(("names", "host", "match"), [
    (("www.example.org",), "WWW.example.org.", True),
    (("*.example.org",), "api.example.org", True),
    (("*.example.org",), "example.org", False),
    (("*.example.org",), "a.b.example.org", False),
    (("192.0.2.1",), "192.0.2.1", True),
    (("192.0.2.1",), "192.0.2.10", False),
    (("2001:db8::1",), "[2001:db8:0::1]", True),
    (("*.0.2.1",), "192.0.2.1", False),
])
def test_hostname_matching_follows_rfc_6125(names, host, match) -> None:
    from patrol.checks.tls_info import CertInfo, matches_host

    cert = CertInfo("CN=x", "CN=ca", "x", whole_second(), whole_second(), names)
    assert matches_host(cert, host) is match


def test_a_lapsed_intermediate_shows_in_the_failed_requests_chain(ca: CA, tmp_path: Path) -> None:
    """Verification fails while the leaf is valid: the chain in the diagnostics shows
    which certificate lapsed, so nobody renews the wrong one."""
    now = whole_second()
    intermediate = make_intermediate(ca, tmp_path, now - timedelta(hours=1))
    leaf = issue(intermediate, tmp_path, not_after=now + timedelta(days=60))
    with leaf.cert_path.open("ab") as bundle:
        bundle.write(intermediate.cert_path.read_bytes())
    with serve(leaf) as (url, _):
        result = run("http", url=f"{url}/ok", ca_file=str(ca.cert_path))
    assert result.status is Status.CRITICAL
    assert result.summary == f"{url}/ok failed TLS verification (certificate has expired) " \
        "on testhost"
    leaf_seen, intermediate_seen = result.diagnostics["tls_chain"]
    assert leaf_seen["seconds_left"] > 59 * DAY
    assert intermediate_seen["subject"] == "CN=Patrol Test Intermediate,O=Patrol Tests"
    assert intermediate_seen["seconds_left"] < 0
