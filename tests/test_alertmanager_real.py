"""A real Alertmanager (Debian's prometheus-alertmanager) delivers its webhook to the
collector: a Prometheus alert opens a ticket, its resolution starts verification."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from patrol.collector.config import CollectorConfig, CollectorSettings
from patrol.collector.service import CollectorService
from tests.conftest import free_port, require_command

pytestmark = pytest.mark.slow
AGENT_TOKEN = "alertmanager-token-0123456789"
OPERATOR_TOKEN = "operator-token-0123456789ab"


@pytest.fixture(params=["sqlite", "postgres"])
def collector(request: pytest.FixtureRequest, tmp_path: Path):
    store = (f"sqlite:///{tmp_path}/collector.db" if request.param == "sqlite"
             else request.getfixturevalue("pg_schema_url"))
    settings = CollectorSettings(listen=f"127.0.0.1:{free_port()}", store=store,
                                 agent_tokens=[AGENT_TOKEN], operator_tokens=[OPERATOR_TOKEN])
    service = CollectorService(CollectorConfig(settings, "test"))
    service.start()
    yield service
    service.stop()


@pytest.fixture
def alertmanager(tmp_path: Path, collector: CollectorService):
    binary = require_command("prometheus-alertmanager", "prometheus-alertmanager")
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(f"""
route:
  receiver: patrol
  group_by: [alertname, instance]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: patrol
    webhook_configs:
      - url: {collector.url}/api/v1/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {AGENT_TOKEN}
""")
    log = open(tmp_path / "alertmanager.log", "w")  # noqa: SIM115 - closed in teardown
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.path={tmp_path}/am-data",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/-/ready", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail((tmp_path / "alertmanager.log").read_text())
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    log.close()


def wait_ticket(collector: CollectorService, predicate, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tickets = collector.store.list_tickets(host="web-05")
        if tickets and predicate(tickets[0]):
            return tickets[0]
        time.sleep(0.1)
    raise AssertionError(f"no matching ticket; have {collector.store.list_tickets()}")


def test_a_prometheus_alert_through_real_alertmanager_opens_and_recovers_a_ticket(
        collector: CollectorService, alertmanager: str) -> None:
    alert = {"labels": {"alertname": "NodeFilesystemAlmostFull", "instance": "web-05:9100",
                        "mountpoint": "/var", "severity": "critical", "tier": "critical"},
             "annotations": {"summary": "/var on web-05 is 97% full",
                             "runbook_url": "https://wiki.example.com/runbooks/disk"},
             "startsAt": datetime.now(UTC).isoformat()}
    posted = requests.post(f"{alertmanager}/api/v2/alerts", json=[alert], timeout=5)
    assert posted.status_code == 200, posted.text
    ticket = wait_ticket(collector, lambda t: True)
    assert ticket.check == "NodeFilesystemAlmostFull" and ticket.check_type == "prometheus"
    assert ticket.title == "/var on web-05 is 97% full"
    assert ticket.priority == "P1" and ticket.severity == "critical"
    assert ticket.runbook == "https://wiki.example.com/runbooks/disk"
    assert ticket.diagnostics["alertmanager"]["labels"]["mountpoint"] == "/var"

    resolved = {**alert, "endsAt": datetime.now(UTC).isoformat()}
    assert requests.post(f"{alertmanager}/api/v2/alerts", json=[resolved],
                         timeout=5).status_code == 200
    recovering = wait_ticket(collector, lambda t: t.recovered_at is not None)
    assert recovering.number == ticket.number and recovering.status.is_open
    assert len(collector.store.list_tickets()) == 1
