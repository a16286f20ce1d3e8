"""Real targets for the built-in check types, in the shape plugins supply theirs.

A plugin names a function in the ``patrol.check_targets`` entry-point group (see
``checks/base.py``); the built-ins' functions are here, beside the tests, because
Patrol does not ship its test targets. Each takes a :class:`Lab` (the suite's
:class:`~patrol.checks.base.ContractLab`) and returns the check's options.
"""

from __future__ import annotations

import http.server
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

Target = Callable[["Lab"], Mapping[str, Any]]

BUILTIN: dict[str, Target] = {
    "cpu": lambda lab: {"sample": "50ms"},
    "memory": lambda lab: {}, "swap": lambda lab: {}, "load": lambda lab: {},
    "disk": lambda lab: {"path": str(lab.directory)},
    "process": lambda lab: {"pattern": "pytest|python"},
    "systemd": lambda lab: {"unit": "cron.service"},
    "tcp": lambda lab: {"host": "127.0.0.1", "port": lab.tcp_port},
    "http": lambda lab: {"url": lab.http_url, "body_match": "patrol"},
    "tls_cert": lambda lab: {"path": str(lab.certificate)},
    "postgres": lambda lab: {"dsn": lab.postgres_dsn()},
    "mysql": lambda lab: lab.mysql(),
    "redis": lambda lab: {"url": lab.redis_url()},
    "log": lambda lab: {"path": str(lab.directory / "app.log"), "pattern": "ERROR"},
    "file": lambda lab: {"path": str(lab.directory / "app.log")},
    "nagios": lambda lab: {"command": [sys.executable, "-c",
                                       "print('OK - fine | load=0.5;1;2')"]},
    "textfile": lambda lab: {"path": str(lab.directory / "node.prom"),
                             "metric": "backup_age"},
    "zombies": lambda lab: {}, "fd": lambda lab: {}, "kernel": lambda lab: {},
    "updates": lambda lab: {},
    "clock": lambda lab: {"source": "none", "server": "127.0.0.1", "port": lab.sntp_port()},
    "net_interface": lambda lab: {"interfaces": ["lo"]},
    "dns": lambda lab: {"queries": ["localhost"]},
    "disk_health": lambda lab: {},
    "listen": lambda lab: {"loopback": True, "expected": [f"tcp/{lab.tcp_port}"]},
}


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello patrol"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@dataclass(frozen=True)
class Premises:
    """The module-wide part of the lab: files, a listener, a web server, a certificate."""

    directory: Path
    tcp_port: int
    http_url: str
    certificate: Path


@contextmanager
def premises(root: Path) -> Iterator[Premises]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    (root / "app.log").write_text("start\n")
    (root / "node.prom").write_text("# TYPE backup_age gauge\nbackup_age 12\n")
    from tests.certs import issue, make_ca

    cert = issue(make_ca(root), root)
    try:
        yield Premises(root, listener.getsockname()[1],
                       f"http://127.0.0.1:{server.server_address[1]}/", cert.cert_path)
    finally:
        server.shutdown()
        server.server_close()
        listener.close()


@dataclass(frozen=True)
class Lab:
    """A :class:`~patrol.checks.base.ContractLab` for one test: the premises, and the
    servers of ``tests/conftest.py`` asked for only when a target needs them."""

    premises: Premises
    request: pytest.FixtureRequest

    @property
    def directory(self) -> Path:
        return self.premises.directory

    @property
    def tcp_port(self) -> int:
        return self.premises.tcp_port

    @property
    def http_url(self) -> str:
        return self.premises.http_url

    @property
    def certificate(self) -> Path:
        return self.premises.certificate

    def postgres_dsn(self) -> str:
        return str(self.request.getfixturevalue("postgres_dsn"))

    def mysql(self) -> dict[str, Any]:
        server = self.request.getfixturevalue("mysql_server")
        return {k: v for k, v in server.items() if k != "password"}

    def redis_url(self) -> str:
        return str(self.request.getfixturevalue("redis_url"))

    def sntp_port(self) -> int:
        return int(self.request.getfixturevalue("sntp_port"))
