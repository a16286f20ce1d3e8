"""The database checks against a server that accepts the connection and never answers:
CRITICAL "cannot connect", in each driver's words, within the configured timeout."""

from __future__ import annotations

import socket

import pytest

from patrol.checks.base import Status
from tests.helpers import build

SECRET = "Sup3r-S3cret-to-4d2e"


@pytest.mark.parametrize(
    ("check_type", "options", "ending"),
    [
        ("postgres", lambda port: {"dsn": f"postgresql://patrol:{SECRET}@127.0.0.1:{port}/x"},
         'PostgreSQL at 127.0.0.1:{port} on testhost: connection to server at "127.0.0.1", '
         "port {port} failed: timeout expired"),
        ("redis", lambda port: {"url": f"redis://:{SECRET}@127.0.0.1:{port}/0"},
         "Redis at 127.0.0.1:{port} on testhost: Timeout reading from 127.0.0.1:{port}"),
        ("mysql", lambda port: {"host": "127.0.0.1", "port": port, "password": SECRET},
         "MariaDB/MySQL at 127.0.0.1:{port} on testhost: Lost connection to MySQL server "
         "during query (timed out) (error 2013)"),
    ],
    ids=["postgres", "redis", "mysql"],
)
def test_silent_server_is_a_critical_timeout(check_type: str, options, ending: str) -> None:
    with socket.socket() as silent:  # accepts (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        check, ctx = build(check_type, connect_timeout="1s", **options(port))
        result = check.run(ctx)
    assert result.status is Status.CRITICAL
    assert result.summary == f"cannot connect to {ending.format(port=port)}"
    assert SECRET not in result.summary
