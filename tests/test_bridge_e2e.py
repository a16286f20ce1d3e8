"""End to end with a real Redmine: a real breach on the agent becomes a Redmine issue
with priority, diagnostics and SLA dates; recovery closes it with a comment after
verification; a new failure within the reopen window reopens the same issue. And a
collector killed between "created in Redmine" and "stored" leaves exactly one issue.

This is the README walkthrough, run by ``patrol up``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port
from tests.test_up import service_port  # noqa: F401 - a fixture used below

pytest.register_assert_rewrite("tests.helpdesk_servers")
from tests.helpdesk_servers import HelpdeskServer  # noqa: E402

pytest_plugins = ["tests.helpdesk_servers"]
pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
FAILPOINTS = ROOT / "tests" / "failpoints"  # a sitecustomize that SIGKILLs after an open


class Up:
    """``patrol up`` as a user runs it, with its banner parsed."""

    def __init__(self, tmp_path: Path, name: str, env: dict[str, str] | None = None) -> None:
        self.log = tmp_path / f"{name}.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "patrol.cli", "up", "--config",
                 str(tmp_path / "agent.yaml"), "--collector-config",
                 str(tmp_path / "collector.yaml")],
                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **(env or {})})
        banner = self.wait(lambda: "operator token" in self.log.read_text() and
                           self.log.read_text(), 30)
        self.token = re.search(r"operator token\s+(\S+)", banner).group(1)
        self.api = re.search(r"web page\s+(\S+)/login", banner).group(1) + "/api/v1/tickets"

    def wait(self, predicate, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                found = predicate()
            except requests.ConnectionError:
                found = None
            if found:
                return found
            if self.proc.poll() is not None:
                return None
            time.sleep(0.1)
        raise AssertionError(f"timed out\n{self.log.read_text()}")

    def tickets(self) -> list[dict]:
        return requests.get(self.api, headers=self.auth, timeout=5).json()["tickets"]

    def ticket(self, number: str) -> dict:
        return requests.get(f"{self.api}/{number}", headers=self.auth, timeout=5).json()

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def configure(tmp_path: Path, port: int, host: str, name: str, entry: str,
              store: str | None = None) -> None:
    """Agent and collector configs; ``entry`` is the YAML of helpdesk ``name``;
    ``store`` a store URL (default: a SQLite file in tmp_path).

    The walkthroughs here run on SQLite; the same helpdesk path on PostgreSQL with real
    processes is in tests/test_scale_replicas.py, tests/test_fleet_redmine.py and
    tests/test_dispatch_replicas.py."""
    store = store or f"sqlite:///{tmp_path}/state/collector.db"
    (tmp_path / "agent.yaml").write_text(f"""
agent:
  listen: 127.0.0.1:{free_port()}
  hostname: {host}
  labels: {{tier: critical, role: db}}
  state_dir: {tmp_path}/state
  interval: 1s
checks:
  - name: orders-db-port
    type: tcp
    host: 127.0.0.1
    port: {port}
    timeout: 1s
""")
    (tmp_path / "collector.yaml").write_text(f"""
collector:
  listen: 127.0.0.1:{free_port()}
  store: '{store}'
  watchdog_interval: 0.5s
policy:
  lifecycle: {{verify_for: 2s, reopen_window: 1h}}
ticketing:
  helpdesks:
{entry}
  routes:
    - helpdesk: {name}
  sync_interval: 1h
""")


def redmine_entry(redmine: HelpdeskServer) -> str:
    return (f"    redmine:\n      type: redmine\n      url: {redmine.url}\n"
            f"      api_key: {redmine.token}\n      project: monitoring")


def redmine_issue(redmine: HelpdeskServer, issue_id: str) -> dict:
    reply = requests.get(f"{redmine.url}/issues/{issue_id}.json",
                         params={"include": "journals"},
                         headers={"X-Redmine-API-Key": redmine.token}, timeout=10)
    reply.raise_for_status()
    return reply.json()["issue"]


def issues_with_subject(redmine: HelpdeskServer, needle: str) -> list[dict]:
    reply = requests.get(f"{redmine.url}/issues.json",
                         params={"project_id": "monitoring", "status_id": "*", "limit": 100,
                                 "subject": f"~{needle}"},
                         headers={"X-Redmine-API-Key": redmine.token}, timeout=10)
    reply.raise_for_status()
    return reply.json()["issues"]


def linked(up: Up, number: str) -> dict | None:
    links = up.ticket(number).get("helpdesks") or []
    return links[0] if links and links[0]["external_id"] else None


def test_breach_recovery_and_reopen_follow_the_redmine_issue(
        tmp_path: Path, redmine_server: HelpdeskServer, service_port) -> None:  # noqa: F811
    port, start_service, stop_service = service_port
    host = f"db-{os.getpid()}-{int(time.time())}"
    configure(tmp_path, port, host, "redmine", redmine_entry(redmine_server))
    up = Up(tmp_path, "up")
    try:
        stop_service()  # the breach
        number = up.wait(lambda: (t := up.tickets()) and t[0]["number"])
        link = up.wait(lambda: linked(up, number))
        issue = redmine_issue(redmine_server, link["external_id"])
        ticket = up.ticket(number)
        assert issue["subject"].startswith(f"[{number}]") and "refused" in issue["subject"]
        assert issue["priority"]["name"] == "Immediate"  # P1: critical on a critical tier
        assert "Problem" in issue["description"] and "Diagnostics" in issue["description"]
        assert issue["due_date"] == time.strftime("%Y-%m-%d",
                                                  time.gmtime(ticket["resolve_by"]))
        assert link["url"] == f"{redmine_server.url}/issues/{link['external_id']}"

        start_service()  # recovery: closed in Redmine only after verification
        up.wait(lambda: up.ticket(number)["status"] == "resolved")
        closed = up.wait(lambda: (i := redmine_issue(redmine_server, link["external_id"]))
                         ["status"]["name"] == "Closed" and i)
        notes = [j.get("notes") or "" for j in closed["journals"]]
        assert any(n.startswith("Patrol verified the recovery") for n in notes)

        stop_service()  # it breaks again within the reopen window: the same issue reopens
        up.wait(lambda: up.ticket(number)["status"] == "in_progress")
        reopened = up.wait(lambda: (i := redmine_issue(redmine_server, link["external_id"]))
                           ["status"]["name"] != "Closed" and i)
        assert any((j.get("notes") or "").startswith("Patrol reopened this ticket")
                   for j in reopened["journals"])
        assert len(up.tickets()) == 1
        assert len(issues_with_subject(redmine_server, host)) == 1
    finally:
        up.stop()


def rt_ticket(rt: HelpdeskServer, ticket_id: str) -> dict:
    reply = requests.get(f"{rt.url}/REST/2.0/ticket/{ticket_id}",
                         headers={"Authorization": f"token {rt.token}"}, timeout=10)
    reply.raise_for_status()
    return reply.json()


def rt_history(rt: HelpdeskServer, ticket_id: str) -> str:
    reply = requests.get(f"{rt.url}/REST/2.0/ticket/{ticket_id}/attachments",
                         params={"fields": "Content", "per_page": 100},
                         headers={"Authorization": f"token {rt.token}"}, timeout=10)
    reply.raise_for_status()
    return "\n".join(str(item.get("Content") or "") for item in reply.json()["items"])


def test_the_same_walkthrough_against_request_tracker(
        tmp_path: Path, rt_server: HelpdeskServer, service_port) -> None:  # noqa: F811
    port, start_service, stop_service = service_port
    host = f"rt-db-{os.getpid()}-{int(time.time())}"
    entry = (f"    rt:\n      type: rt\n      url: {rt_server.url}\n"
             f"      token: {rt_server.token}\n      queue: Monitoring")
    configure(tmp_path, port, host, "rt", entry)
    up = Up(tmp_path, "up-rt")
    try:
        stop_service()
        number = up.wait(lambda: (t := up.tickets()) and t[0]["number"])
        link = up.wait(lambda: linked(up, number))
        ticket = rt_ticket(rt_server, link["external_id"])
        assert ticket["Subject"].startswith(f"[{number}]") and ticket["Priority"] == "90"
        assert ticket["Queue"]["id"] and ticket["Status"] == "new"
        start_service()
        up.wait(lambda: up.ticket(number)["status"] == "resolved")
        up.wait(lambda: rt_ticket(rt_server, link["external_id"])["Status"] == "resolved")
        assert "Patrol verified the recovery" in rt_history(rt_server, link["external_id"])
        stop_service()
        up.wait(lambda: rt_ticket(rt_server, link["external_id"])["Status"] == "open")
        assert "Patrol reopened this ticket" in rt_history(rt_server, link["external_id"])
        assert len(up.tickets()) == 1
    finally:
        up.stop()


def test_a_collector_killed_between_created_and_stored_leaves_one_issue(
        tmp_path: Path, redmine_server: HelpdeskServer, service_port) -> None:  # noqa: F811
    port, _, stop_service = service_port
    host = f"db-crash-{os.getpid()}-{int(time.time())}"
    configure(tmp_path, port, host, "redmine", redmine_entry(redmine_server))
    armed = os.pathsep.join(filter(None, [str(FAILPOINTS), os.environ.get("PYTHONPATH")]))
    crashing = Up(tmp_path, "crash", env={"PYTHONPATH": armed})  # see tests/failpoints/
    try:
        stop_service()
        crashing.wait(lambda: crashing.proc.poll() is not None, 30)
        assert crashing.proc.returncode == -signal.SIGKILL
        assert len(issues_with_subject(redmine_server, host)) == 1  # created, not stored
    finally:
        crashing.stop()
    again = Up(tmp_path, "again")
    try:
        number = again.wait(lambda: (t := again.tickets()) and t[0]["number"])
        link = again.wait(lambda: linked(again, number))
        assert len(issues_with_subject(redmine_server, host)) == 1
        assert issues_with_subject(redmine_server, host)[0]["id"] == int(link["external_id"])
        timeline = [e["text"] for e in again.ticket(number)["timeline"]]
        assert any(t.startswith("found the existing ticket in redmine") for t in timeline)
    finally:
        again.stop()
