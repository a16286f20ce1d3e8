"""tcp: real listening sockets and closed ports on 127.0.0.1; injected failures
only where loopback cannot produce them (DNS)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from patrol.checks.base import Status
from tests.conftest import free_port
from tests.helpers import build, run


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock


def serve_banner(sock: socket.socket, reply: bytes, expect_input: bool) -> threading.Thread:
    """Accept one connection; read a line first if ``expect_input``; send ``reply``."""

    def handle() -> None:
        conn, _ = sock.accept()
        with conn:
            if expect_input:
                conn.recv(1024)
            conn.sendall(reply)
            conn.recv(1024)  # hold the connection until the client closes

    thread = threading.Thread(target=handle, daemon=True)
    thread.start()
    return thread


class Clock:
    def __init__(self, *ticks: float) -> None:
        self.ticks = list(ticks)

    def __call__(self) -> float:
        return self.ticks.pop(0)


def test_listening_port_is_ok_with_connect_time(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    result = run("tcp", host="127.0.0.1", port=port)
    assert result.status is Status.OK
    assert result.measurement("up") == 1.0
    assert 0 <= result.measurement("connect_seconds") < 0.5
    assert result.summary.startswith(f"127.0.0.1:{port} accepted a connection in ")
    assert result.summary.endswith(" on testhost")


def test_closed_port_is_critical_refused() -> None:
    port = free_port()
    result = run("tcp", host="127.0.0.1", port=port)
    assert result.status is Status.CRITICAL
    assert result.summary == f"127.0.0.1:{port} refused the connection on testhost"
    assert result.measurement("up") == 0.0
    assert result.measurement("connect_seconds") is None


@pytest.mark.slow
def test_connect_that_gets_no_answer_times_out() -> None:
    # A listener with backlog 0 that never accepts: once its queue is full, Linux
    # drops further SYNs, so a connect on loopback really hangs until the timeout.
    held: list[socket.socket] = []
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(0)
        port = sock.getsockname()[1]
        try:
            for _ in range(10):
                try:
                    held.append(socket.create_connection(("127.0.0.1", port), timeout=0.2))
                except TimeoutError:
                    break
            else:
                pytest.fail("could not fill the accept queue")
            result = run("tcp", host="127.0.0.1", port=port, timeout="300ms")
        finally:
            for conn in held:
                conn.close()
    assert result.status is Status.CRITICAL
    assert result.summary == f"127.0.0.1:{port} timed out after 0.3s on testhost"


def test_unresolvable_host_is_critical_with_the_resolver_message() -> None:
    def connect(address: tuple[str, int], timeout: float) -> socket.socket:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    result = run("tcp", world={"connect": connect}, host="db.invalid", port=5432)
    assert result.status is Status.CRITICAL
    assert result.summary == (
        "db.invalid:5432 cannot be resolved (Name or service not known) on testhost"
    )


@pytest.mark.parametrize(
    ("seconds", "status", "note"),
    [
        (0.1, Status.OK, ""),
        (0.7, Status.WARNING, " (warning at 500ms)"),
        (2.5, Status.CRITICAL, " (critical at 2.0s)"),
    ],
    ids=["fast", "slow-warning", "very-slow-critical"],
)
def test_connect_time_is_judged_by_default_thresholds(
    listener: socket.socket, seconds: float, status: Status, note: str
) -> None:
    port = listener.getsockname()[1]
    result = run("tcp", world={"clock": Clock(100.0, 100.0 + seconds)},
                 host="127.0.0.1", port=port)
    assert result.measurement("connect_seconds") == pytest.approx(seconds)
    assert result.status is status
    assert result.summary.endswith(f" on testhost{note}")


def test_operator_thresholds_apply_to_connect_time(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    result = run("tcp", world={"clock": Clock(0.0, 0.05)}, host="127.0.0.1", port=port,
                 warning="10ms", critical="40ms")
    assert result.status is Status.CRITICAL
    assert result.summary == (
        f"127.0.0.1:{port} accepted a connection in 50ms on testhost (critical at 40ms)"
    )


def test_expected_banner_is_ok(listener: socket.socket) -> None:
    thread = serve_banner(listener, b"220 mail.example ESMTP ready\r\n", expect_input=False)
    port = listener.getsockname()[1]
    result = run("tcp", host="127.0.0.1", port=port, expect="ESMTP", timeout="2s")
    thread.join(2)
    assert result.status is Status.OK
    assert result.diagnostics["banner"] == "220 mail.example ESMTP ready\r\n"


def test_send_then_expect_answer(listener: socket.socket) -> None:
    thread = serve_banner(listener, b"+PONG\r\n", expect_input=True)
    port = listener.getsockname()[1]
    result = run("tcp", host="127.0.0.1", port=port, send="PING\r\n", expect="PONG")
    thread.join(2)
    assert result.status is Status.OK
    assert result.measurement("up") == 1.0


def test_wrong_banner_is_critical(listener: socket.socket) -> None:
    thread = serve_banner(listener, b"SSH-2.0-OpenSSH_9.2\r\n", expect_input=False)
    port = listener.getsockname()[1]
    # The server keeps the connection open, as sshd does: the check waits for
    # "ESMTP" until its timeout, then reports what it got instead.
    result = run("tcp", host="127.0.0.1", port=port, expect="ESMTP", timeout="300ms")
    thread.join(2)
    assert result.status is Status.CRITICAL
    assert result.summary == (
        f"127.0.0.1:{port} answered 'SSH-2.0-OpenSSH_9.2\\r\\n', not 'ESMTP' on testhost"
    )
    assert result.measurement("up") == 0.0


@pytest.mark.slow
def test_silent_server_fails_expect_within_timeout(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    result = run("tcp", host="127.0.0.1", port=port, expect="ESMTP", timeout="300ms")
    assert result.status is Status.CRITICAL
    assert result.summary == f"127.0.0.1:{port} did not answer 'ESMTP' within 0.3s on testhost"


@pytest.mark.parametrize("port", [0, 65536, -1], ids=["zero", "too-high", "negative"])
def test_port_must_be_in_range(port: int) -> None:
    with pytest.raises(ValidationError, match="port"):
        build("tcp", host="127.0.0.1", port=port)


def test_host_is_required() -> None:
    with pytest.raises(ValidationError, match="host"):
        build("tcp", port=80)
