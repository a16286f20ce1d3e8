"""The Prometheus ecosystem around Patrol, against real processes: a real Prometheus
discovers two real agents through the collector's HTTP service discovery and scrapes
them; the alerting rules pass promtool and load into that Prometheus; the Grafana
dashboard names only series that the real agent and collector export."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import require_command
from tests.helpdesk_double_process import HelpdeskDouble
from tests.procs import (
    OPERATOR_TOKEN,
    AgentProcess,
    CollectorProcess,
    PatrolProcess,
    free_port,
)

pytestmark = pytest.mark.slow

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
RULES = DEPLOY / "prometheus" / "patrol-rules.yml"
RULES_TEST = DEPLOY / "prometheus" / "patrol-rules.test.yml"
DASHBOARD = DEPLOY / "grafana" / "patrol-dashboard.json"
FAILING_CHECK = ("  - name: backup-dump\n    type: file\n    path: /nonexistent/backup.dump\n"
                 "    critical: 1h\n")
SERIES = re.compile(r"\b(patrol_[a-z_]+|up)\b(?!\s*\()")


@dataclass
class Fleet:
    collector: CollectorProcess
    agents: dict[str, AgentProcess]
    prometheus: PatrolProcess
    prometheus_url: str

    def query(self, promql: str) -> list[dict]:
        answer = requests.get(self.prometheus_url + "/api/v1/query", params={"query": promql},
                              timeout=5).json()
        assert answer["status"] == "success", answer
        return answer["data"]["result"]


def _agent(workdir: Path, collector: CollectorProcess, host: str, role: str) -> AgentProcess:
    agent = AgentProcess(workdir / host, collector.url, FAILING_CHECK, hostname=host,
                         heartbeat="1s")
    config = Path(agent.argv[-1])
    config.write_text(config.read_text().replace(
        f"  hostname: {host}\n", f"  hostname: {host}\n  labels: {{role: {role}}}\n"))
    return agent


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    prometheus_bin = require_command("prometheus", "prometheus")
    work = tmp_path_factory.mktemp("prometheus-fleet")
    double = HelpdeskDouble(work / "helpdesk").start()
    # The helpdesk answers 503 for now, so the dispatch backlog has rows to export.
    double.admin(fail={"count": 100000, "status": 503})
    collector = CollectorProcess(
        work / "collector", settings=("watchdog_interval: 1s",),
        extra_yaml=("ticketing:\n  helpdesks:\n" + double.webhook_yaml("desk", "c1")
                    + "  routes:\n    - helpdesk: desk\n  dispatch_interval: 0.5s\n"))
    agents = {"db-01": _agent(work, collector, "db-01", "db"),
              "web-01": _agent(work, collector, "web-01", "web")}
    token = work / "operator-token"
    token.write_text(OPERATOR_TOKEN)
    port = free_port()
    config = work / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{RULES}']\n"
        "scrape_configs:\n"
        "  - job_name: patrol-agents\n"
        "    http_sd_configs:\n"
        f"      - url: {collector.url}/api/v1/sd/prometheus\n"
        "        refresh_interval: 1s\n"
        # type: Bearer spelled out: Debian's Prometheus 2.42 sends the bare token
        # without it on http_sd requests.
        f"        authorization: {{type: Bearer, credentials_file: '{token}'}}\n"
        "  - job_name: patrol-collector\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{collector.port}']}}]\n")
    prometheus = PatrolProcess("prometheus", config, work / "prometheus.log", argv=[
        prometheus_bin, f"--config.file={config}", f"--storage.tsdb.path={work / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}"])
    started: list[PatrolProcess] = [double]
    try:
        for process in (collector, *agents.values()):
            process.start()
            started.append(process)
        prometheus.start()
        started.append(prometheus)
        url = f"http://127.0.0.1:{port}"
        prometheus.wait_until(lambda: requests.get(url + "/-/ready", timeout=1).ok, 30,
                              "Prometheus to be ready")
        yield Fleet(collector, agents, prometheus, url)
    finally:
        for process in reversed(started):
            process.stop()


def test_prometheus_discovers_and_scrapes_both_agents_through_the_collector(
        fleet: Fleet) -> None:
    def both_up() -> list[dict]:
        found = fleet.query('up{job="patrol-agents"} == 1')
        return found if len(found) == 2 else []

    series = fleet.prometheus.wait_until(both_up, 60, "both agents discovered and up")
    by_host = {s["metric"]["patrol_host"]: s["metric"] for s in series}
    assert set(by_host) == {"db-01", "web-01"}
    assert by_host["db-01"]["role"] == "db" and by_host["web-01"]["role"] == "web"
    assert by_host["db-01"]["instance"] == f"127.0.0.1:{fleet.agents['db-01'].port}"
    # The agents' own series arrive with the discovered labels.
    failing = fleet.prometheus.wait_until(
        lambda: fleet.query('patrol_check_status{check="backup-dump"} == 2'), 30,
        "the failing check's status in Prometheus")
    assert {s["metric"]["patrol_host"] for s in failing} == {"db-01", "web-01"}


def test_alerting_rules_pass_promtool_and_load_into_prometheus(fleet: Fleet) -> None:
    promtool = require_command("promtool", "prometheus")
    checked = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0 and "SUCCESS: 8 rules found" in checked.stdout, checked
    tested = subprocess.run([promtool, "test", "rules", str(RULES_TEST)], capture_output=True,
                            text=True, timeout=60, cwd=RULES_TEST.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    groups = requests.get(fleet.prometheus_url + "/api/v1/rules", timeout=5).json()
    loaded = {rule["name"]: rule for group in groups["data"]["groups"]
              for rule in group["rules"]}
    assert {"PatrolAgentDown", "PatrolAgentOutboxBacklog", "PatrolCheckUnknown",
            "PatrolHostsSilent", "PatrolDispatchBacklog", "PatrolDispatchFailures",
            "PatrolWatchdogErrors", "PatrolWatchdogStalled"} == set(loaded)
    assert all(rule["health"] != "err" for rule in loaded.values())


def _exported(fleet: Fleet) -> set[str]:
    """Every series name the real agent and collector expose, once a ticket was tried on
    the (failing) helpdesk, so the dispatch series have samples, and the watchdog ran."""
    def collector_text() -> str:
        text = requests.get(fleet.collector.url + "/metrics", timeout=5).text
        ready = all(f"{name}{{" in text for name in (
            "patrol_collector_dispatch_attempts_total", "patrol_collector_dispatch_backlog",
            "patrol_collector_dispatch_oldest_age_seconds",
            "patrol_collector_watchdog_last_success_timestamp_seconds"))
        return text if ready else ""

    texts = [fleet.collector.wait_until(collector_text, 30, "dispatch and watchdog metrics"),
             fleet.agents["db-01"].metrics()]
    return {sample.name for text in texts
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_dashboard_and_rules_name_only_series_patrol_exports(fleet: Fleet) -> None:
    exported = _exported(fleet) | {"up"}
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 10 and all(p["targets"] for p in panels)
    used = {name for panel in panels for target in panel["targets"]
            for name in SERIES.findall(target["expr"])}
    assert used - exported == set()
    # Every family of both ends is on the dashboard, except the lease counters (per
    # replica trivia) and the soft status and values (per-check detail).
    assert {"patrol_collector_open_tickets", "patrol_outbox_oldest_age_seconds",
            "patrol_check_status", "patrol_collector_dispatch_attempts_total"} <= used
    rule_names = set(SERIES.findall(RULES.read_text().split("groups:", 1)[1]))
    assert rule_names and rule_names - exported == set()
