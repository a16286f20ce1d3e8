"""Real Patrol processes for fault tests and benchmarks: started, waited for, stopped by PID.

Every process is ``sys.executable -m patrol.cli ...`` run from the repository root,
with stdout and stderr captured to a log file (shown in assertion messages, so a
failure says what the process printed). Processes are only ever signalled through
their own PID (SIGTERM to stop, SIGKILL to crash); nothing here looks processes up
by name. :meth:`PatrolProcess.stop` is safe to call twice and on a dead process, so
fixtures call it unconditionally in teardown.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests

ROOT = Path(__file__).resolve().parent.parent
AGENT_TOKEN = "fault-agent-token-0123456789"
OPERATOR_TOKEN = "fault-operator-token-0123456789"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=0.2).close()
    except OSError:
        return False
    return True


class PatrolProcess:
    """One ``patrol SUBCOMMAND --config FILE`` process with its output in ``log_path``.

    ``argv`` replaces the command line for another process a test drives the same way
    (a helpdesk double); ``subcommand`` then only names it in messages.
    """

    def __init__(self, subcommand: str, config: Path, log_path: Path,
                 env: dict[str, str] | None = None, argv: list[str] | None = None) -> None:
        self.name = subcommand
        self.argv = argv or [sys.executable, "-m", "patrol.cli", subcommand, "--config",
                             str(config)]
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def start(self) -> PatrolProcess:
        """Start (again, appending to the same log); the previous run must have ended."""
        assert not self.alive(), f"pid {self.pid} is still running"
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"--- start {self.starts}: {' '.join(self.argv[1:])}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                         env=self.env, cwd=ROOT, start_new_session=True)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def kill(self) -> None:
        """SIGKILL: a crash; nothing in the process gets to run."""
        if self.alive():
            assert self.proc is not None
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait; SIGKILL if it has not ended after ``timeout`` s.
        Returns the exit code of a graceful stop (None if it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            return self.proc.returncode
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def wait_until(self, predicate: Callable[[], T], timeout: float = 15.0,
                   what: str = "condition", interval: float = 0.05) -> T:
        """Poll ``predicate`` until it returns something truthy; fail with the log
        if the process dies or time runs out. Connection errors count as "not yet"."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            try:
                last = predicate()
                if last:
                    return last
            except (requests.ConnectionError, requests.Timeout):
                pass
            if not self.alive():
                raise AssertionError(f"{self.name} pid {self.pid} exited "
                                     f"({self.proc.returncode if self.proc else '?'}) while "
                                     f"waiting for {what}\n{self.output()[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; "
                                     f"last={last!r}\n{self.output()[-4000:]}")
            time.sleep(interval)


class CollectorProcess(PatrolProcess):
    """``patrol collector`` on 127.0.0.1:``port`` with a SQLite store under ``workdir``.

    ``store`` (a store URL) replaces the SQLite file, e.g. one PostgreSQL database
    shared by several replicas; ``settings`` are more ``collector:`` lines
    (``watchdog_interval: 1s``) and ``extra_yaml`` more top-level blocks (``policy:``,
    ``ticketing:``), written as they are.
    """

    def __init__(self, workdir: Path, port: int | None = None, db: Path | None = None,
                 name: str = "collector", *, store: str | None = None,
                 settings: tuple[str, ...] = (), extra_yaml: str = "") -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.db = db or workdir / f"{name}.db"
        self.store = store or f"sqlite:///{self.db}"
        config = workdir / f"{name}.yaml"
        config.write_text(
            "collector:\n"
            f"  listen: 127.0.0.1:{self.port}\n"
            f"  store: '{self.store}'\n"
            f"  agent_tokens: [{AGENT_TOKEN}]\n"
            f"  operator_tokens: [{OPERATOR_TOKEN}]\n"
            "  max_body_bytes: 16777216\n"
            + "".join(f"  {line}\n" for line in settings) + extra_yaml)
        super().__init__("collector", config, workdir / f"{name}.log")
        self.url = f"http://127.0.0.1:{self.port}"
        self.session = requests.Session()

    def start(self, timeout: float = 20.0) -> CollectorProcess:
        super().start()
        self.wait_until(self.healthy, timeout, "the collector's /healthz")
        return self

    def healthy(self) -> bool:
        try:
            return self.session.get(self.url + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self, timeout: float = 10.0) -> int | None:
        self.session.close()  # keep-alive sockets would outlive the process otherwise
        return super().stop(timeout)

    def kill(self) -> None:
        self.session.close()
        super().kill()

    # -- the HTTP API -------------------------------------------------------------

    def post_events(self, events: list[dict[str, Any]], timeout: float = 30.0
                    ) -> requests.Response:
        return self.session.post(self.url + "/api/v1/events", json={"events": events},
                                 headers=agent_headers(), timeout=timeout)

    def close_wont_fix(self, number: str, text: str) -> None:
        """Close ``number`` with force, as an operator deciding won't-fix while the
        check still fails."""
        closed = self.session.post(f"{self.url}/api/v1/tickets/{number}/close",
                                   json={"force": True, "author": "ops", "text": text},
                                   headers=operator_headers(), timeout=10)
        assert closed.status_code == 200, closed.text

    def tickets(self, **params: Any) -> list[dict[str, Any]]:
        """Every ticket the operator API lists (all statuses), paging through."""
        out: list[dict[str, Any]] = []
        while True:
            response = self.session.get(self.url + "/api/v1/tickets",
                                        params={**params, "limit": 1000,
                                                "offset": len(out)},
                                        headers=operator_headers(), timeout=30)
            response.raise_for_status()
            page = response.json()["tickets"]
            out.extend(page)
            if len(page) < 1000:
                return out


class AgentProcess(PatrolProcess):
    """``patrol agent`` delivering to ``collector_url`` with its outbox in ``state_dir``.

    ``checks_yaml`` is the text of the ``checks:`` list (indented two spaces).
    Heartbeats go every ``heartbeat`` seconds; the default is long so that tests
    see only the events their breaches cause.
    """

    def __init__(self, workdir: Path, collector_url: str, checks_yaml: str,
                 hostname: str = "fault-01", heartbeat: str = "1h") -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.state_dir = workdir / "agent-state"
        config = workdir / "agent.yaml"
        config.write_text(
            "agent:\n"
            f"  listen: 127.0.0.1:{self.port}\n"
            f"  hostname: {hostname}\n"
            f"  state_dir: {self.state_dir}\n"
            "  interval: 1s\n"
            f"  heartbeat_interval: {heartbeat}\n"
            "  collector:\n"
            f"    url: {collector_url}\n"
            f"    token: {AGENT_TOKEN}\n"
            f"checks:\n{checks_yaml}")
        super().__init__("agent", config, workdir / "agent.log")
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> AgentProcess:
        super().start()
        self.wait_until(lambda: port_open(self.port), timeout, "the agent's port")
        return self

    def metrics(self) -> str:
        return requests.get(self.url + "/metrics", timeout=2).text


def agent_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {AGENT_TOKEN}"}


def operator_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def read_outbox(state_dir: Path) -> list[dict[str, Any]]:
    """The agent's undelivered rows, read-only (the agent may be running or dead):
    ``{"kind", "key", "sequence", "payload", "dead"}`` in queue order."""
    import json
    import sqlite3

    path = state_dir / "outbox.db"
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        rows = db.execute("SELECT kind, key, sequence, payload, dead FROM outbox "
                          "ORDER BY kind = 'heartbeat', sequence, id").fetchall()
    finally:
        db.close()
    return [{"kind": k, "key": key, "sequence": s, "payload": json.loads(p), "dead": bool(d)}
            for k, key, s, p, d in rows]


def event_payload(host: str, check: str, sequence: int, *, status: str = "CRITICAL",
                  agent_id: str = "fault-agent", event_id: str | None = None,
                  observed_at: float | None = None, check_type: str = "file",
                  labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A wire event (:class:`patrol.contract.wire.Event` as JSON) as an agent would post it."""
    from datetime import UTC, datetime

    ok = status == "OK"
    return {
        "schema_version": 1,
        "event_id": event_id or f"{agent_id}-{host}-{check}-{sequence:08d}",
        "dedup_key": f"{host}/{check}", "action": "resolve" if ok else "trigger",
        "severity": {"OK": "info", "WARNING": "warning", "CRITICAL": "critical",
                     "UNKNOWN": "error"}[status],
        "status": status, "previous_status": "CRITICAL" if ok else "OK",
        "summary": f"{check} is {status} on {host}", "source": host, "check": check,
        "type": check_type, "labels": labels if labels is not None else {"tier": "standard"},
        "measurements": [{"name": "age_seconds", "value": 42.0, "item": ""}],
        "observed_at": datetime.fromtimestamp(observed_at or time.time(), UTC).isoformat(),
        "agent": {"id": agent_id, "version": "1.0"}, "sequence": sequence,
    }


def start_patrol_up(agent_config: Path, collector_config: Path, log_path: Path
                    ) -> tuple[PatrolProcess, str]:
    """``patrol up`` with these two configs, started; returns it and the operator token
    its banner prints (generated on first start)."""
    import re

    up = PatrolProcess("up", agent_config, log_path)
    up.argv += ["--collector-config", str(collector_config)]
    up.start()
    banner = up.wait_until(lambda: "operator token" in up.output() and up.output(),
                           30, "the banner")
    match = re.search(r"operator token\s+(\S+)", banner)
    assert match, banner
    return up, match.group(1)
