"""``patrol collector`` re-reads its config on SIGHUP (issue 9, item 7): new tokens and
maintenance windows take effect without a restart; a config with problems is logged
with FILE:LINE and the running one stays in force. A real process, both stores."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpdesk_double_process import HelpdeskDouble
from tests.procs import AGENT_TOKEN, OPERATOR_TOKEN, CollectorProcess, event_payload

NEW_AGENT_TOKEN = "reloaded-agent-token-0123456789"


def _config(collector: CollectorProcess, agent_token: str, window_host: str,
            helpdesk: HelpdeskDouble | None = None) -> str:
    ticketing = "" if helpdesk is None else (
        "ticketing:\n  helpdesks:\n" + helpdesk.webhook_yaml("desk", "reloaded")
        + "  routes:\n    - helpdesk: desk\n  dispatch_interval: 0.5s\n")
    return ticketing + ("collector:\n"
            f"  listen: 127.0.0.1:{collector.port}\n"
            f"  store: '{collector.store}'\n"
            f"  agent_tokens: [{agent_token}]\n"
            f"  operator_tokens: [{OPERATOR_TOKEN}]\n"
            "maintenance:\n"
            f"  - name: patching-{window_host}\n"
            f"    hosts: [{window_host}]\n"
            "    start: 2020-01-01T00:00:00Z\n"
            "    end: 2199-01-01T00:00:00Z\n")


@pytest.fixture(params=["sqlite", "postgres"])
def collector(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CollectorProcess]:
    url = None if request.param == "sqlite" else request.getfixturevalue("pg_schema_url")
    process = CollectorProcess(tmp_path / "collector", store=url)
    process.config = Path(process.argv[-1])  # type: ignore[attr-defined]
    process.config.write_text(_config(process, AGENT_TOKEN, "old-01"))
    try:
        yield process.start()
    finally:
        process.stop()


def _post(collector: CollectorProcess, token: str, host: str, sequence: int) -> int:
    return requests.post(collector.url + "/api/v1/events",
                         json=event_payload(host, "disk", sequence),
                         headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code


def _windows(collector: CollectorProcess) -> list[str]:
    response = requests.get(collector.url + "/api/v1/maintenance", timeout=10,
                            headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    return sorted(w["name"] for w in response.json()["windows"])


def _reload(collector: CollectorProcess, text: str, logged: str) -> None:
    collector.config.write_text(text)  # type: ignore[attr-defined]
    before = collector.output().count(logged)
    collector.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
    collector.wait_until(lambda: collector.output().count(logged) > before, 15,
                         f"'{logged}' in the collector's log")


@pytest.fixture
def helpdesk(tmp_path: Path) -> Iterator[HelpdeskDouble]:
    double = HelpdeskDouble(tmp_path / "helpdesk")
    try:
        yield double.start()
    finally:
        double.stop()


@pytest.mark.slow
def test_sighup_applies_a_new_config_and_keeps_the_old_one_when_the_new_is_bad(
        collector: CollectorProcess, helpdesk: HelpdeskDouble) -> None:
    assert _post(collector, AGENT_TOKEN, "db-01", 1) == 202
    assert _windows(collector) == ["patching-old-01"]
    assert helpdesk.entries() == []  # no helpdesk configured yet

    _reload(collector, _config(collector, NEW_AGENT_TOKEN, "new-01", helpdesk), "reloaded ")
    assert collector.alive(), collector.output()
    assert _post(collector, NEW_AGENT_TOKEN, "db-02", 1) == 202
    assert _post(collector, AGENT_TOKEN, "db-03", 1) == 401  # the removed token
    assert _windows(collector) == ["patching-new-01"]
    assert requests.get(collector.url + "/healthz", timeout=5).status_code == 200
    # The helpdesk added by the reload gets the ticket opened after it.
    [opened] = collector.wait_until(
        lambda: [e for e in helpdesk.entries() if e["action"] == "open"], 30,
        "the new helpdesk to receive the ticket")
    assert 200 <= opened["status"] < 300

    broken = _config(collector, "third-agent-token-0123456789", "x").replace(
        "  operator_tokens", "\toperator_tokens")
    _reload(collector, broken, "reload refused")
    time.sleep(0.2)  # the refusal is logged before anything could change
    assert collector.alive(), collector.output()
    assert f"{collector.config}:5: invalid YAML" in collector.output()  # type: ignore[attr-defined]
    assert "Traceback" not in collector.output()
    assert _post(collector, NEW_AGENT_TOKEN, "db-04", 1) == 202  # still the last good one
    assert _windows(collector) == ["patching-new-01"]
    assert collector.stop() == 0
