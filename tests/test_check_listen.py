"""listen: real sockets this test opens on loopback, found with their process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from patrol.checks.base import Status
from tests.config_problems import config_problems
from tests.helpers import build


def _udp_port_below_ephemeral() -> socket.socket:
    """A UDP socket bound on loopback to a port outside the ephemeral range (the check
    ignores ephemeral UDP ports, where client sockets live)."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for port in range(low - 1, 1024, -1):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind(("127.0.0.1", port))
            return sock
        except OSError:
            sock.close()
    raise AssertionError("no free UDP port below the ephemeral range")


@pytest.fixture
def tcp_listener() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def test_a_new_listener_after_the_first_run_is_unexpected_and_named(tcp_listener: int) -> None:
    check, ctx = build("listen", loopback=True)
    first = check.run(ctx)
    assert first.status is Status.OK
    assert first.summary.endswith("listening ports on testhost, all expected")
    assert f"tcp/{tcp_listener}" in [d["listener"] for d in first.diagnostics["listening"]]
    with _udp_port_below_ephemeral() as udp:
        port = udp.getsockname()[1]
        result = check.run(ctx)
    assert result.status is Status.WARNING
    me = psutil.Process(os.getpid()).name()
    assert result.summary == (f"On testhost: unexpected listener udp/{port} ({me}) "
                              "(warning at 1)")
    (found,) = result.diagnostics["unexpected"]
    assert found["processes"] == [{"pid": os.getpid(), "name": me}]
    assert found["addresses"] == ["127.0.0.1"]
    assert result.measurement("unexpected_listeners") == 1


@pytest.mark.slow
def test_a_listener_in_another_process_is_attributed_to_it() -> None:
    code = ("import socket,sys; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(1); "
            "print(s.getsockname()[1], flush=True); sys.stdin.read()")
    check, ctx = build("listen", loopback=True)
    check.run(ctx)
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        result = check.run(ctx)
    finally:
        child.kill()
        child.wait()
    found = next(d for d in result.diagnostics["unexpected"] if d["listener"] == f"tcp/{port}")
    assert [p["pid"] for p in found["processes"]] == [child.pid]


def test_a_missing_expected_port_is_critical(tcp_listener: int) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    check, ctx = build("listen", loopback=True,
                       expected=[f"tcp/{tcp_listener}", f"tcp/{closed}"])
    result = check.run(ctx)
    assert result.status is Status.CRITICAL
    assert result.summary == (f"On testhost: nothing listens on expected tcp/{closed} "
                              "(critical at 1)")
    assert result.diagnostics["missing"] == [f"tcp/{closed}"]


def test_allowed_ranges_and_no_learning(tcp_listener: int) -> None:
    check, ctx = build("listen", loopback=True, learn=False, allowed=["tcp/1-65535",
                                                                     "udp/1-65535"])
    assert check.run(ctx).status is Status.OK
    strict, strict_ctx = build("listen", loopback=True, learn=False, allowed=["udp/1-65535"])
    result = strict.run(strict_ctx)
    assert f"tcp/{tcp_listener}" in [d["listener"] for d in result.diagnostics["unexpected"]]


def test_loopback_only_listeners_are_left_out_by_default(tcp_listener: int) -> None:
    check, ctx = build("listen")
    result = check.run(ctx)
    assert f"tcp/{tcp_listener}" not in [d["listener"] for d in result.diagnostics["listening"]]


def test_port_entries_are_validated_with_file_and_line(tmp_path: Path) -> None:
    path, problems = config_problems(
        tmp_path, "checks:\n  - name: ports\n    type: listen\n"
        "    expected: [tcp/22, tcp/99999]\n    allowed:\n      - udp/abc\n")
    assert problems == [
        f"{path}:4: check 'ports', option 'expected': 'tcp/99999': ports are 1-65535, the "
        "first not above the last; fix the value",
        f"{path}:5: check 'ports', option 'allowed': 'udp/abc' is not a port entry; write it "
        "like tcp/22, udp/123, */9731 or tcp/8000-8099",
    ]


def test_a_socket_without_a_visible_owner_says_how_to_see_it() -> None:
    from patrol.checks.listen import Socket

    sockets = [Socket("tcp", "0.0.0.0", 2222, None)]
    check, ctx = build("listen", learn=False, world={"sockets": lambda: sockets})
    result = check.run(ctx)
    assert result.summary == "On testhost: unexpected listener tcp/2222 (?) (warning at 1)"
    assert "run the agent as root" in result.diagnostics["note"]
