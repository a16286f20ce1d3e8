"""One secret planted in every check type's options never reaches a sink.

Each check type gets its own secret (so a leak names the type), written where a user
would write it: a token in a URL query, a DSN password, ``--password`` in an argv,
``password=`` in a pattern, or the runbook link for types with no free-text option.
The fast test runs every type through ``patrol check`` (table and ``--json``); the
slow one runs a real agent delivering to a real collector that forwards to the
helpdesk double, and sweeps the agent log, ``/metrics``, the status API, the outbox,
the collector's store, the ticket API, the web pages and the helpdesk's journal.
"""

from __future__ import annotations

import io
import json
import sqlite3
import sys
from pathlib import Path

import pytest
import requests

from patrol.agent import oneshot
from patrol.agent.config import load_config
from patrol.checks import registry
from tests.helpdesk_double_process import HelpdeskDouble
from tests.procs import OPERATOR_TOKEN, AgentProcess, CollectorProcess, operator_headers

_PRINT_ARGV = "import sys; print('CRITICAL - ran ' + ' '.join(sys.argv[1:])); sys.exit(2)"


def secret_of(check_type: str) -> str:
    return f"Pl4nted{check_type.replace('_', '')}Secret"


def _runbook(check_type: str) -> dict[str, object]:
    return {"runbook": f"https://wiki.example/run?token={secret_of(check_type)}"}


def plant(check_type: str) -> dict[str, object]:
    """The check entry for ``check_type`` with its secret planted (it fails on purpose
    where it can, so the secret travels the breach path: summary, diagnostics, ticket)."""
    s = secret_of(check_type)
    missing = "/nonexistent/patrol"
    options: dict[str, dict[str, object]] = {
        "disk": {"path": f"{missing}/mnt?token={s}"},
        "process": {"pattern": f"no-such-daemon --password {s}"},
        "tcp": {"host": "127.0.0.1", "port": 9, "send": f"AUTH password={s}\n"},
        "http": {"url": f"http://127.0.0.1:9/health?token={s}&page=1"},
        "tls_cert": {"path": f"{missing}/cert.pem?token={s}"},
        "postgres": {"dsn": f"postgresql://app:{s}@127.0.0.1:9/orders"},
        "mysql": {"host": "127.0.0.1", "port": 9, "user": "app", "password": s},
        "redis": {"url": f"redis://:{s}@127.0.0.1:9/0"},
        "log": {"path": f"{missing}/app.log?token={s}", "pattern": "ERROR"},
        "file": {"path": f"{missing}/file?api_key={s}"},
        "nagios": {"command": [sys.executable, "-c", _PRINT_ARGV, "--password", s,
                               f"DB_PASSWORD={s}"]},
        "textfile": {"path": f"{missing}/node.prom?sig={s}", "metric": "backup_age"},
        "fd": {"processes": [f"worker --token {s}"]},
        "kernel": {"ignore": [f"password={s}"]},
        "disk_health": {"devices": [f"/dev/patrol-missing?token={s}"]},
        "systemd": {"unit": "patrol-missing.service", **_runbook(check_type)},
        "dns": {"queries": ["localhost"], **_runbook(check_type)},
    }
    entry: dict[str, object] = {"name": f"sweep-{check_type}", "type": check_type}
    entry.update(options.get(check_type) or _runbook(check_type))
    return entry


def checks_yaml(types: list[str]) -> str:
    return "".join(f"  - {json.dumps(plant(t))}\n" for t in types)


def assert_clean(where: str, text: str, types: list[str]) -> None:
    leaked = [t for t in types if secret_of(t) in text]
    assert not leaked, f"{where} leaks the secret of {leaked}"


def test_every_check_type_has_a_planted_secret() -> None:
    """A new check type gets a plant (a default one: its runbook) automatically."""
    for check_type in registry.BUILTINS:
        assert secret_of(check_type) in json.dumps(plant(check_type))


def test_patrol_check_table_and_json_show_no_planted_secret(tmp_path: Path) -> None:
    types = list(registry.BUILTINS)
    config_path = tmp_path / "agent.yaml"
    config_path.write_text("agent:\n  hostname: sweep-01\n  timeout: 5s\n"
                           f"  state_dir: {tmp_path / 'state'}\n"
                           f"checks:\n{checks_yaml(types)}")
    config = load_config(config_path)
    out, err = io.StringIO(), io.StringIO()
    oneshot.main(config, None, True, out=out, err=err)
    document = json.loads(out.getvalue())
    assert {c["type"] for c in document["checks"]} == set(types)
    assert_clean("patrol check --json", out.getvalue() + err.getvalue(), types)
    table, err = io.StringIO(), io.StringIO()
    oneshot.main(config, None, False, out=table, err=err)
    assert_clean("patrol check", table.getvalue() + err.getvalue(), types)
    # The masks are there, so the check did see its secret and it was redacted.
    http = next(c for c in document["checks"] if c["type"] == "http")
    assert "?token=***&page=1" in http["summary"]
    nagios = next(c for c in document["checks"] if c["type"] == "nagios")
    assert "--password ***" in nagios["summary"]


@pytest.mark.slow
def test_no_sink_of_agent_collector_or_helpdesk_holds_a_planted_secret(tmp_path: Path) -> None:
    types = list(registry.BUILTINS)
    desk = HelpdeskDouble(tmp_path / "desk").start()
    collector = CollectorProcess(
        tmp_path / "collector", settings=("watchdog_interval: 1s",),
        extra_yaml=("ticketing:\n  routes: [{helpdesk: desk}]\n  helpdesks:\n"
                    + desk.webhook_yaml("desk", "r1")))
    agent = None
    try:
        collector.start()
        agent = AgentProcess(tmp_path / "agent", collector.url, checks_yaml(types),
                             hostname="sweep-01")
        agent_yaml = tmp_path / "agent" / "agent.yaml"
        agent_yaml.write_text(agent_yaml.read_text().replace(
            "agent:\n", "agent:\n  token: status-token-123\n  timeout: 5s\n", 1))
        agent.start()
        wanted = {"sweep-http", "sweep-nagios", "sweep-postgres", "sweep-redis"}
        tickets = collector.wait_until(
            lambda: (found := collector.tickets(host="sweep-01"))
            and wanted <= {t["check"] for t in found} and found, 60.0,
            "tickets for the failing checks")
        desk.wait_until(lambda: len(desk.entries()) >= len(wanted), 60.0,
                        "the helpdesk to receive the tickets")
        sinks: dict[str, str] = {
            "/metrics": agent.metrics(),
            "status API": requests.get(agent.url + "/api/v1/status", timeout=5, headers={
                "Authorization": "Bearer status-token-123"}).text,
            "ticket API": json.dumps(tickets),
            "helpdesk requests": desk.journal.read_text(),
        }
        web = requests.Session()
        web.headers["Authorization"] = f"Bearer {OPERATOR_TOKEN}"
        sinks["web ticket list"] = web.get(collector.url + "/tickets", timeout=10).text
        sinks["web fleet"] = web.get(collector.url + "/", timeout=10).text
        for ticket in tickets:
            number = ticket["number"]
            sinks[f"web {number}"] = web.get(f"{collector.url}/tickets/{number}",
                                             timeout=10).text
            sinks[f"API {number}"] = requests.get(
                f"{collector.url}/api/v1/tickets/{number}", headers=operator_headers(),
                timeout=10).text
        outbox = agent.state_dir / "outbox.db"
        sinks["outbox"] = _dump_sqlite(outbox) if outbox.exists() else ""
        sinks["collector store"] = _dump_sqlite(collector.db)
    finally:
        if agent is not None:
            agent.stop()
        collector.stop()
        desk.stop()
    sinks["agent log"] = agent.output()
    sinks["collector log"] = collector.output()
    assert "?token=***" in sinks["ticket API"]
    for where, text in sinks.items():
        assert_clean(where, text, types)


def _dump_sqlite(path: Path) -> str:
    """Every cell of every table, as text (the store's and the outbox's raw bytes)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(repr(row) for t in tables
                         for row in db.execute(f'SELECT * FROM "{t}"'))
    finally:
        db.close()
