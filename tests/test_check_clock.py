"""clock: a real chronyd (own process, loopback only, never touching the system clock)
synchronised to this suite's own SNTP responder, direct SNTP queries, and recorded
timedatectl/ntpq output where those daemons are absent."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from patrol.checks.base import CheckError, Status
from tests.config_problems import config_problems
from tests.conftest import require_command
from tests.helpers import build
from tests.sntp_server import SntpServer


@pytest.fixture
def sntp_server() -> Iterator[Callable[..., SntpServer]]:
    servers: list[SntpServer] = []

    def make(**kwargs) -> SntpServer:
        servers.append(SntpServer(**kwargs))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def _closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def chronyd(tmp_path: Path) -> Iterator[Callable[[int], str]]:
    """``start(ntp_port)`` runs chronyd -x (no clock control) polling 127.0.0.1:port,
    and returns its command socket; stopped by PID afterwards."""
    require_command("chronyd", "chrony")
    require_command("chronyc", "chrony")
    procs: list[subprocess.Popen] = []
    folder = tmp_path / "chrony"
    folder.mkdir(mode=0o700)

    def start(ntp_port: int) -> str:
        sock = folder / "chronyd.sock"
        conf = folder / "chrony.conf"
        conf.write_text(f"server 127.0.0.1 port {ntp_port} iburst minpoll -4 maxpoll -4\n"
                        f"bindcmdaddress {sock}\ncmdport 0\nport 0\n"
                        f"pidfile {folder}/chronyd.pid\ndriftfile {folder}/drift\n")
        log = (folder / "log").open("w")
        procs.append(subprocess.Popen(["chronyd", "-d", "-x", "-u", "root", "-f", str(conf)],
                                      stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 15
        while not sock.exists():
            assert procs[-1].poll() is None, (folder / "log").read_text()
            assert time.monotonic() < deadline, "chronyd made no command socket"
            time.sleep(0.1)
        return str(sock)

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def _until(check, ctx, wanted: Callable, seconds: float = 15.0):
    deadline = time.monotonic() + seconds
    while True:
        result = check.run(ctx)
        if wanted(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.3)


@pytest.mark.slow
def test_real_chrony_synchronised_to_a_loopback_server(chronyd, sntp_server) -> None:
    server = sntp_server()
    sock = chronyd(server.port)
    check, ctx = build("clock", source="chrony", chrony_socket=sock,
                       server="127.0.0.1", port=server.port)
    result = _until(check, ctx, lambda r: r.measurement("synchronised") == 1)
    assert result.status is Status.OK, result.summary
    assert result.summary.startswith(
        "Clock of testhost is synchronised by chrony to 127.0.0.1 (stratum 2), ")
    assert "; 127.0.0.1 finds it " in result.summary
    assert result.measurement("stratum") == 2
    assert result.measurement("offset_seconds") < 0.1
    assert result.measurement("server_offset_seconds") < 0.1
    assert server.requests >= 2  # chronyd's polls and the check's own query


@pytest.mark.slow
def test_real_chrony_without_a_reachable_source_is_critical(chronyd) -> None:
    sock = chronyd(_closed_udp_port())
    check, ctx = build("clock", chrony_socket=sock)
    result = check.run(ctx)
    assert result.status is Status.CRITICAL
    assert result.summary == ("Clock of testhost is not synchronised (chrony: leap status "
                              "Not synchronised)")
    assert result.measurement("synchronised") == 0
    assert result.measurement("offset_seconds") is None


def test_direct_sntp_query_finds_a_clock_two_seconds_off(sntp_server) -> None:
    server = sntp_server(skew=2.0)
    check, ctx = build("clock", source="none", server="127.0.0.1", port=server.port)
    result = check.run(ctx)
    assert result.status is Status.CRITICAL
    assert 1.9 < result.measurement("server_offset_seconds") < 2.1
    assert result.summary.startswith("Clock of testhost 127.0.0.1 finds it 2.0")
    assert result.summary.endswith("s behind (critical at 1.0s)")
    assert result.diagnostics["server"]["reference"] == "PTST"


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"stratum": 0, "reference": b"RATE"}, "kiss-o'-death (RATE)"),
    ({"leap": 3}, "not synchronised itself"),
])
def test_an_untrustworthy_server_answer_is_unknown(sntp_server, kwargs, reason) -> None:
    server = sntp_server(**kwargs)
    check, ctx = build("clock", source="none", server="127.0.0.1", port=server.port)
    with pytest.raises(CheckError, match=re.escape(reason)):
        check.run(ctx)


def test_silent_server_is_unknown_when_it_is_the_only_source() -> None:
    check, ctx = build("clock", source="none", server="127.0.0.1", port=_closed_udp_port(),
                       query_timeout="300ms")
    with pytest.raises(CheckError, match=r"cannot ask 127\.0\.0\.1 for the time from testhost"):
        check.run(ctx)


def _recorded(outputs: dict[str, tuple[int, str]]):
    def run(argv, timeout):
        key = next((k for k in outputs if " ".join(argv).startswith(k)), None)
        if key is None:
            raise FileNotFoundError(argv[0])
        code, out = outputs[key]
        return SimpleNamespace(returncode=code, stdout=out if code == 0 else "",
                               stderr=out if code else "")
    return run


# timedatectl(1) timesync-status, as systemd 252 prints it.
TIMESYNC_STATUS = """       Server: 192.0.2.123 (ntp.example.org)
Poll interval: 34min 8s (min: 32s; max 34min 8s)
         Leap: normal
      Version: 4
      Stratum: 2
    Reference: C0000201
    Precision: 1us (-24)
Root distance: 1.068ms (max: 5s)
       Offset: -350.112ms
        Delay: 12.507ms
       Jitter: 1.234ms
 Packet count: 27
    Frequency: -12.345ppm
"""


def test_timesyncd_from_recorded_output() -> None:
    run = _recorded({"chronyc": (1, "506 Cannot talk to daemon"),
                     "timedatectl show": (0, "yes\n"),
                     "timedatectl timesync-status": (0, TIMESYNC_STATUS)})
    check, ctx = build("clock", world={"run": run, "systemd_running": lambda: True})
    result = check.run(ctx)
    assert result.status is Status.WARNING
    assert result.summary == ("Clock of testhost is synchronised by timesyncd to 192.0.2.123 "
                              "(ntp.example.org) (stratum 2), 350ms ahead (warning at 100ms)")
    assert result.diagnostics["tried"] == ["chrony: chronyc -c: 506 Cannot talk to daemon"]


# ntpq(1) -pn: tally code, remote, refid, st, t, when, poll, reach, delay, offset, jitter.
NTPQ = """     remote           refid      st t when poll reach   delay   offset  jitter
==============================================================================
*192.0.2.10      .GPS.            1 u   33   64  377    1.234    0.456   0.078
+192.0.2.11      192.0.2.5        2 u   12   64  377    2.345    0.123   0.101
"""
NTPQ_UNSYNCED = NTPQ.replace("*192.0.2.10", " 192.0.2.10").replace("+192", " 192")


def test_ntpd_from_recorded_output() -> None:
    check, ctx = build("clock", source="ntpd", world={"run": _recorded({"ntpq": (0, NTPQ)})})
    result = check.run(ctx)
    assert result.status is Status.OK
    assert result.summary == ("Clock of testhost is synchronised by ntpd to 192.0.2.10 "
                              "(stratum 1), 456µs behind")
    check, ctx = build("clock", source="ntpd",
                       world={"run": _recorded({"ntpq": (0, NTPQ_UNSYNCED)})})
    result = check.run(ctx)
    assert result.status is Status.CRITICAL
    assert result.summary == ("Clock of testhost is not synchronised (ntpd: no system peer "
                              "among 2 peers)")


def test_no_time_service_is_unknown_and_says_how_to_get_one() -> None:
    check, ctx = build("clock", world={"run": _recorded({}), "systemd_running": lambda: False})
    with pytest.raises(CheckError) as info:
        check.run(ctx)
    assert str(info.value) == (
        "no time service answered on testhost (chrony: chronyc is not installed; ntpd: ntpq "
        "is not installed); install and start chrony (apt-get install chrony), or set "
        "server: to query an NTP server directly")



def test_an_installed_but_stopped_time_service_is_told_to_start_not_to_install(tmp_path: Path
                                                                               ) -> None:
    """The real chronyc, asking a daemon that does not run (its command socket is absent):
    the how-to says start chrony, since it is installed."""
    require_command("chronyc", "chrony")
    check, ctx = build("clock", source="chrony", chrony_socket=str(tmp_path / "chronyd.sock"))
    with pytest.raises(CheckError) as info:
        check.run(ctx)
    assert "chrony is installed but its daemon did not answer: start it (systemctl start " \
        "chrony), or set server: to query an NTP server directly" in str(info.value)
    assert "apt-get install" not in str(info.value)

def test_source_none_needs_a_server(tmp_path: Path) -> None:
    path, (problem,) = config_problems(
        tmp_path, "checks:\n  - name: time\n    type: clock\n    source: none\n")
    assert problem.startswith(f"{path}:2: check 'time'")
    assert "source: none needs server:" in problem
