"""The agent's HTTP face over real sockets: routes, the token, health, TLS, load."""

from __future__ import annotations

import gzip
import http.client
import logging
import re
import socket
import ssl
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from patrol.agent.exposition import build_registry
from patrol.agent.server import AgentServer, accepts_text, tls_context
from patrol.agent.state import CheckInfo, StateTable
from patrol.checks.base import Measurement, Result, Status
from patrol.checks.config import Sustain
from tests.certs import issue, make_ca

TOKEN = "s3cret-token-value"
AGENT = {"host": "db-01", "version": "9.9", "labels": {"env": "prod"}, "started_at": 1.5}
pytestmark = pytest.mark.slow


def make_table(checks: int = 0, measurements: int = 5) -> StateTable:
    table = StateTable([CheckInfo("root-disk", "disk", runbook="https://wiki/disk"),
                        CheckInfo("cpu", "cpu")]
                       + [CheckInfo(f"extra-{i}", "disk") for i in range(checks)])
    table.record(
        "root-disk",
        Result(Status.CRITICAL, "/var is 96.0% full on db-01 (critical at 95%)",
               (Measurement("used_ratio", 0.96, "/var"),), {"df": "/dev/sda1 96%"}),
        Sustain(), 1_700_000_000.0, 0.02,
    )
    table.attach_diagnostics("root-disk", {"largest_directories": [["/var/log", 123456]]})
    for i in range(checks):
        table.record(f"extra-{i}", Result(Status.OK, "fine", tuple(
            Measurement(f"m{j}_ratio", j / 10, f"/mnt/{j}") for j in range(measurements))),
            Sustain(), 1_700_000_000.0, 0.01)
    return table


@dataclass
class Running:
    server: AgentServer
    table: StateTable
    health: dict[str, bool] = field(default_factory=lambda: {"alive": True})

    @property
    def url(self) -> str:
        host, port = self.server.address
        return f"{self.server.scheme}://{host}:{port}"


@pytest.fixture(scope="module")
def server() -> Iterator[AgentServer]:
    """One server for the module; ``running`` gives each test a fresh table and
    configuration through update()."""
    table = make_table()
    server = AgentServer(("127.0.0.1", 0), build_registry(table), table, TOKEN, AGENT,
                         lambda: True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def running(server: AgentServer) -> Running:
    table = make_table()
    health = {"alive": True}
    server.update(registry=build_registry(table, {"host": "db-01"}), table=table, token=TOKEN,
                  agent_info=AGENT, healthy=lambda: health["alive"])
    return Running(server, table, health)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_binds_an_ephemeral_port_on_loopback(running: Running) -> None:
    host, port = running.server.address
    assert host == "127.0.0.1" and port > 0


def test_metrics_are_served_as_prometheus_text(running: Running) -> None:
    response = requests.get(running.url + "/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert response.headers["Content-Encoding"] == "gzip"  # requests asks for it
    for line in (
        'patrol_check_status{check="root-disk",type="disk"} 2.0',
        (
            'patrol_check_value{check="root-disk",item="/var",measurement="used_ratio",'
            'type="disk"} 0.96'
        ),
        'patrol_check_duration_seconds{check="root-disk",type="disk"} 0.02',
        'patrol_check_last_run_timestamp_seconds{check="root-disk",type="disk"} 1.7e+09',
        'patrol_check_status{check="cpu",type="cpu"} 0.0',
    ):
        assert line in response.text.splitlines()
    assert "patrol_agent_info{" in response.text
    assert "process_resident_memory_bytes" in response.text


def test_metrics_uncompressed_and_openmetrics_on_request(running: Running) -> None:
    response = requests.get(running.url + "/metrics", timeout=5, headers={
        "Accept": "application/openmetrics-text; version=1.0.0", "Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert "Content-Encoding" not in response.headers
    assert response.text.endswith("# EOF\n")


PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                     "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


def test_prometheus_gets_the_cached_text_format(running: Running) -> None:
    """Prometheus lists OpenMetrics first but accepts text 0.0.4: it gets the text
    from the cached renderer, the same bytes a plain scrape gets."""
    plain = requests.get(running.url + "/metrics", timeout=5,
                         headers={"Accept-Encoding": "identity"})
    scrape = requests.get(running.url + "/metrics", timeout=5, headers={
        "Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"})
    assert scrape.status_code == 200
    assert scrape.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert scrape.headers["Content-Encoding"] == "gzip"
    assert "# EOF" not in scrape.text

    def patrol_lines(text: str) -> list[str]:  # process_* may tick between two scrapes
        return [line for line in text.splitlines() if "patrol_" in line]

    assert patrol_lines(scrape.text) == patrol_lines(plain.text)
    assert 'patrol_check_status{check="root-disk",type="disk"} 2.0' in scrape.text


@pytest.mark.parametrize(
    ("accept", "text"),
    [
        (PROMETHEUS_ACCEPT, True),
        ("text/plain", True),
        ("text/plain; version=0.0.4", True),
        ("*/*", True),
        ("application/json, text/*;q=0.2", True),
        ("application/openmetrics-text; version=1.0.0", False),
        ("application/openmetrics-text, text/plain;q=0", False),
        ("text/plain;version=1.0.0", False),
        ("application/openmetrics-text, text/plain;q=oops", False),
        ("", False),
    ],
    ids=["prometheus", "text", "text-0.0.4", "anything", "text-wildcard", "openmetrics-only",
         "text-refused", "text-1.0.0-only", "bad-q", "empty"],
)
def test_accepts_text(accept: str, text: bool) -> None:
    assert accepts_text(accept) is text


@pytest.mark.parametrize(
    ("headers", "challenge"),
    [
        ({}, 'Bearer realm="patrol"'),
        ({"Authorization": "Bearer"}, 'Bearer realm="patrol"'),
        ({"Authorization": f"Basic {TOKEN}"}, 'Bearer realm="patrol"'),
        (bearer("wrong"), 'Bearer realm="patrol", error="invalid_token"'),
        (bearer(TOKEN + "x"), 'Bearer realm="patrol", error="invalid_token"'),
        (bearer("ünïcode"), 'Bearer realm="patrol", error="invalid_token"'),
    ],
    ids=["no-header", "no-token", "basic-scheme", "wrong", "longer", "non-ascii"],
)
def test_status_api_refuses_without_the_right_token(
    running: Running, headers: dict[str, str], challenge: str
) -> None:
    headers = {k: v.encode() for k, v in headers.items()}  # type: ignore[misc]
    response = requests.get(running.url + "/api/v1/status", headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == challenge
    assert "bearer token" in response.json()["error"]
    assert "largest_directories" not in response.text


def test_status_api_with_the_token_returns_state_and_diagnostics(running: Running) -> None:
    response = requests.get(running.url + "/api/v1/status", headers=bearer(TOKEN), timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["agent"] == AGENT
    disk, cpu = body["checks"]
    assert disk["summary"] == "/var is 96.0% full on db-01 (critical at 95%)"
    assert disk["status"] == "CRITICAL" and disk["runbook"] == "https://wiki/disk"
    assert disk["diagnostics"] == {"largest_directories": [["/var/log", 123456]]}
    assert disk["check_diagnostics"] == {"df": "/dev/sda1 96%"}
    assert disk["measurements"] == [{"name": "used_ratio", "value": 0.96, "item": "/var"}]
    assert cpu["summary"] == "not run yet"


def test_status_api_filters_one_check(running: Running) -> None:
    response = requests.get(running.url + "/api/v1/status?check=cpu", headers=bearer(TOKEN),
                            timeout=5)
    assert [c["name"] for c in response.json()["checks"]] == ["cpu"]


def test_status_api_unknown_check_is_404(running: Running) -> None:
    response = requests.get(running.url + "/api/v1/status?check=nope", headers=bearer(TOKEN),
                            timeout=5)
    assert (response.status_code, response.json()) == (404, {"error": "no check named 'nope'"})


@pytest.mark.parametrize("token", [None, ""], ids=["none", "empty"])
def test_status_api_is_refused_when_no_token_is_configured(running: Running,
                                                           token: str | None) -> None:
    running.server.update(token=token)
    for headers in ({}, bearer(""), bearer("anything")):
        response = requests.get(running.url + "/api/v1/status", headers=headers, timeout=5)
        assert response.status_code == 403
        assert "set agent.token" in response.json()["error"]
    assert requests.get(running.url + "/metrics", timeout=5).status_code == 200


def test_update_swaps_the_token_and_agent_info(running: Running) -> None:
    url = running.url + "/api/v1/status"
    running.server.update(token="new-token", agent_info={"host": "db-02"})
    assert requests.get(url, headers=bearer(TOKEN), timeout=5).status_code == 401
    response = requests.get(url, headers=bearer("new-token"), timeout=5)
    assert (response.status_code, response.json()["agent"]) == (200, {"host": "db-02"})
    running.server.update(token=None)
    assert requests.get(url, headers=bearer("new-token"), timeout=5).status_code == 403


def test_update_swaps_table_and_registry(running: Running) -> None:
    table = StateTable([CheckInfo("only-one", "tcp")])
    running.server.update(table=table, registry=build_registry(table, process=False))
    checks = requests.get(running.url + "/api/v1/status", headers=bearer(TOKEN),
                          timeout=5).json()["checks"]
    assert [c["name"] for c in checks] == ["only-one"]
    metrics = requests.get(running.url + "/metrics", timeout=5).text
    assert 'check="only-one"' in metrics and "root-disk" not in metrics


def test_healthz_follows_the_scheduler(running: Running) -> None:
    response = requests.get(running.url + "/healthz", timeout=5)
    assert (response.status_code, response.json()) == (200, {"status": "ok", "checks": 2})
    running.health["alive"] = False
    response = requests.get(running.url + "/healthz", timeout=5)
    assert (response.status_code, response.json()) == (503, {"status": "unhealthy", "checks": 2})


def test_healthz_is_503_when_the_probe_raises(running: Running) -> None:
    running.server.update(healthy=lambda: 1 / 0)
    assert requests.get(running.url + "/healthz", timeout=5).status_code == 503


@pytest.mark.parametrize("path", ["/", "/metrics/", "/api/v1/statuses", "/../etc/passwd"])
def test_unknown_paths_are_404(running: Running, path: str) -> None:
    assert requests.get(running.url + path, timeout=5).status_code == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
def test_other_methods_are_405(running: Running, method: str) -> None:
    response = requests.request(method, running.url + "/metrics", timeout=5)
    assert (response.status_code, response.headers["Allow"]) == (405, "GET")


def test_requests_are_not_logged_noisily_and_never_with_the_token(
    running: Running, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger="patrol.agent.server")
    requests.get(running.url + "/api/v1/status", headers=bearer(TOKEN), timeout=5)
    requests.get(running.url + "/api/v1/status", headers=bearer("guess"), timeout=5)
    assert "GET /api/v1/status 200" in caplog.text  # logged, at DEBUG
    assert TOKEN not in caplog.text and "guess" not in caplog.text
    assert capfd.readouterr().err == ""


def test_concurrent_scrapes_all_succeed(running: Running) -> None:
    def scrape(_: int) -> tuple[int, bool]:
        with requests.Session() as session:
            results = []
            for _ in range(10):
                response = session.get(running.url + "/metrics", timeout=10)
                results.append((response.status_code, "patrol_agent_info" in response.text))
            return results

    with ThreadPoolExecutor(5) as pool:
        outcomes = [r for batch in pool.map(scrape, range(5)) for r in batch]
    assert outcomes == [(200, True)] * 50


def test_keepalive_gzip_scrapes_of_20_checks_stay_complete(running: Running) -> None:
    """Scraped like Prometheus does: one keep-alive connection, gzip accepted. Every
    response is complete (timings are the benchmark's job: bench/agent_bench.py)."""
    table = make_table(checks=20)
    running.server.update(table=table, registry=build_registry(table, {"host": "db-01"}))
    connection = http.client.HTTPConnection(*running.server.address, timeout=5)
    timings = []
    for _ in range(101):
        start = time.perf_counter()
        connection.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
        response = connection.getresponse()
        body = gzip.decompress(response.read())
        timings.append(time.perf_counter() - start)
        assert response.status == 200
    connection.close()
    assert body.count(b"patrol_check_value{") == 101


def test_stop_closes_the_port_and_idle_connections() -> None:
    table = make_table()
    server = AgentServer(("127.0.0.1", 0), build_registry(table, process=False), table,
                         TOKEN, AGENT, lambda: True)
    server.start()
    host, port = server.address
    with requests.Session() as session:
        assert session.get(f"http://{host}:{port}/healthz", timeout=5).status_code == 200
        server.stop()
        with pytest.raises(requests.ConnectionError):
            session.get(f"http://{host}:{port}/healthz", timeout=5)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, port), timeout=2).close()


def _switches(native_id: int) -> int:
    status = Path(f"/proc/self/task/{native_id}/status").read_text()
    return int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.M).group(1))


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_idle_server_never_wakes_up_and_stops_at_once() -> None:
    table = make_table()
    server = AgentServer(("127.0.0.1", 0), build_registry(table, process=False), table,
                         TOKEN, AGENT, lambda: True)
    server.start()
    try:
        thread = server._thread
        assert thread is not None
        time.sleep(0.1)  # let it reach select()
        before = _switches(thread.native_id)
        time.sleep(0.6)  # a 0.2 s poll would wake up three times
        assert _switches(thread.native_id) == before
    finally:
        started = time.perf_counter()
        server.stop()
    assert time.perf_counter() - started < 0.5
    assert not thread.is_alive()


def test_tls_needs_both_cert_and_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="both tls_cert and tls_key"):
        AgentServer(("127.0.0.1", 0), build_registry(StateTable(), process=False),
                    StateTable(), TOKEN, AGENT, lambda: True, tls_cert=str(tmp_path / "c.pem"))


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("tls")
    ca = make_ca(directory)
    cert = issue(ca, directory)
    return {"ca": ca.cert_path, "cert": cert.cert_path, "key": cert.key_path}


@pytest.fixture(scope="module")
def tls_running(certs: dict[str, Path]) -> Iterator[Running]:
    table = make_table()
    server = AgentServer(("127.0.0.1", 0), build_registry(table), table, TOKEN, AGENT,
                         lambda: True, tls_cert=str(certs["cert"]), tls_key=str(certs["key"]))
    server.start()
    yield Running(server, table)
    server.stop()


def test_tls_serves_https_verified_by_the_ca(tls_running: Running,
                                             certs: dict[str, Path]) -> None:
    assert tls_running.url.startswith("https://127.0.0.1:")
    response = requests.get(tls_running.url + "/api/v1/status", headers=bearer(TOKEN),
                            verify=str(certs["ca"]), timeout=5)
    assert response.status_code == 200
    assert response.json()["checks"][0]["name"] == "root-disk"
    metrics = requests.get(tls_running.url + "/metrics", verify=str(certs["ca"]), timeout=5)
    assert "patrol_check_status{" in metrics.text


def test_tls_port_rejects_plain_http_and_unknown_cas(tls_running: Running,
                                                    certs: dict[str, Path]) -> None:
    host, port = tls_running.server.address
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{host}:{port}/metrics", timeout=5)
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(tls_running.url + "/metrics", timeout=5)  # system CAs only
    # the server survives both and keeps serving
    assert requests.get(tls_running.url + "/healthz", verify=str(certs["ca"]), timeout=5).ok


def test_a_stalled_tls_client_does_not_block_others(tls_running: Running,
                                                    certs: dict[str, Path]) -> None:
    host, port = tls_running.server.address
    with socket.create_connection((host, port), timeout=5):  # connects, never says hello
        response = requests.get(tls_running.url + "/healthz", verify=str(certs["ca"]),
                                timeout=5)
    assert response.status_code == 200


def test_tls_context_requires_tls_1_2(certs: dict[str, Path]) -> None:
    context = tls_context(str(certs["cert"]), str(certs["key"]))
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2


def test_a_non_ascii_token_matches_its_utf8_bytes(running: Running) -> None:
    running.server.update(token="pässwört")
    url = running.url + "/api/v1/status"
    assert requests.get(url, headers={"Authorization": "Bearer pässwört".encode()},
                        timeout=5).status_code == 200
    assert requests.get(url, headers={"Authorization": "Bearer pässwört".encode("latin-1")},
                        timeout=5).status_code == 401
