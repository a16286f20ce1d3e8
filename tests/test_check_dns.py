"""dns: a real dnsmasq on loopback (own process, own port, own config), the system
resolver via /etc/hosts, and the wire client's truncation fallback to TCP."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from patrol.checks.base import CheckError, Status
from tests.config_problems import config_problems
from tests.conftest import free_port, require_command
from tests.helpers import build

LONG_TXT = "x" * 200


@pytest.fixture(scope="module")
def dnsmasq(tmp_path_factory) -> Iterator[int]:
    """dnsmasq answering for patrol.test on 127.0.0.1:PORT (UDP and TCP), nothing else."""
    binary = require_command("dnsmasq", "dnsmasq-base")
    folder = tmp_path_factory.mktemp("dnsmasq")
    port = free_port()
    conf = folder / "dnsmasq.conf"
    conf.write_text("\n".join([
        f"port={port}", "listen-address=127.0.0.1", "bind-interfaces", "no-resolv",
        "no-hosts", "user=root", f"pid-file={folder}/dnsmasq.pid", "local=/patrol.test/",
        "host-record=web.patrol.test,192.0.2.10",
        "host-record=db.patrol.test,192.0.2.20,2001:db8::20",
        "cname=www.patrol.test,web.patrol.test",
        "mx-host=patrol.test,mail.patrol.test,10",
        'txt-record=patrol.test,"v=spf1 -all"',
        *[f'txt-record=big.patrol.test,"{i}{LONG_TXT}"' for i in range(6)],
    ]) + "\n")
    proc = subprocess.Popen([binary, "--keep-in-foreground", f"--conf-file={conf}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "dnsmasq did not start"
            time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(timeout=10)


@pytest.mark.slow
def test_records_resolve_with_expected_answers(dnsmasq: int) -> None:
    check, ctx = build("dns", server="127.0.0.1", port=dnsmasq, queries=[
        {"name": "web.patrol.test", "expect": ["192.0.2.10"]},
        {"name": "db.patrol.test", "type": "AAAA", "expect": ["2001:DB8::20"]},
        {"name": "www.patrol.test", "expect": ["192.0.2.10"]},
        {"name": "patrol.test", "type": "mx", "expect": ["10 mail.patrol.test."]},
        {"name": "patrol.test", "type": "TXT", "expect": ["v=spf1 -all"]},
    ])
    result = check.run(ctx)
    assert result.status is Status.OK, result.summary
    assert result.summary.startswith("5 DNS queries answered on testhost; slowest ")
    assert result.diagnostics["queries"]["www.patrol.test/A"]["cname_chain"] == [
        "web.patrol.test"]
    assert result.measurement("expected_match", "patrol.test/MX") == 1
    assert result.measurement("latency_seconds", "web.patrol.test/A") < 0.5


@pytest.mark.slow
def test_a_wrong_answer_and_a_missing_name_are_critical(dnsmasq: int) -> None:
    check, ctx = build("dns", server="127.0.0.1", port=dnsmasq,
                       queries=[{"name": "web.patrol.test", "expect": ["192.0.2.99"]}])
    result = check.run(ctx)
    assert result.status is Status.CRITICAL
    assert result.summary == ("web.patrol.test/A resolves to 192.0.2.10 on testhost via "
                              "127.0.0.1, expected 192.0.2.99")
    check, ctx = build("dns", server="127.0.0.1", port=dnsmasq,
                       queries=["nothing.patrol.test", "web.patrol.test"])
    result = check.run(ctx)
    assert result.status is Status.CRITICAL
    assert result.summary == ("nothing.patrol.test/A does not resolve on testhost via "
                              "127.0.0.1: NXDOMAIN, no A record")
    assert result.measurement("resolved", "web.patrol.test/A") == 1


@pytest.mark.slow
def test_a_truncated_udp_answer_is_fetched_again_over_tcp(dnsmasq: int) -> None:
    from patrol.checks import dns_wire

    answer = dns_wire.resolve("127.0.0.1", "big.patrol.test", "TXT", port=dnsmasq)
    assert sorted(answer.answers) == [f"{i}{LONG_TXT}" for i in range(6)]


def test_a_silent_server_is_critical_with_the_reason() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as quiet:
        quiet.bind(("127.0.0.1", 0))  # bound, never answers
        check, ctx = build("dns", server="127.0.0.1", port=quiet.getsockname()[1],
                           query_timeout="200ms", queries=["web.patrol.test"])
        result = check.run(ctx)
    assert result.status is Status.CRITICAL
    assert result.summary.startswith("web.patrol.test/A does not resolve on testhost via "
                                     "127.0.0.1: no answer from 127.0.0.1:")


def test_system_resolver_reads_etc_hosts() -> None:
    check, ctx = build("dns", queries=[{"name": "localhost", "expect": ["127.0.0.1"]}])
    result = check.run(ctx)
    assert result.status is Status.OK
    assert result.summary.startswith("localhost/A resolves to 127.0.0.1 in ")
    assert result.summary.endswith("on testhost via the system resolver")


def test_other_types_without_a_nameserver_are_unknown_and_say_what_to_set() -> None:
    check, ctx = build("dns", queries=[{"name": "example.org", "type": "MX"}],
                       world={"nameserver": lambda: None})
    with pytest.raises(CheckError, match=r"example\.org/MX needs a DNS server"):
        check.run(ctx)


def test_bad_names_and_types_are_config_errors_with_file_and_line(tmp_path: Path) -> None:
    path, (problem,) = config_problems(
        tmp_path, "checks:\n  - name: names\n    type: dns\n    queries:\n"
        "      - name: ok.example\n        type: MXX\n")
    assert problem.startswith(f"{path}:6: check 'names', option 'queries")
    assert "'mx'" in problem.lower() and "(got 'MXX')" in problem
