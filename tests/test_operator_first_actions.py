"""The operator's own first actions (``collector.knowledge_file``) lead the "Suggested first
actions" of every new ticket body of that check type, before the built-in ones, and a
changed file takes effect on ``SIGHUP``. A real collector process, both stores; the body
read back through the ticket API, as a helpdesk receives it."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.procs import AGENT_TOKEN, OPERATOR_TOKEN, CollectorProcess, event_payload

AUTH = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
FIRST = "The nightly dump lands in /srv/backups: look there first."
SECOND = "Page the storage team on-call (extension 4711) before deleting anything."


def _config(collector: CollectorProcess) -> str:
    return ("collector:\n"
            f"  listen: 127.0.0.1:{collector.port}\n"
            f"  store: '{collector.store}'\n"
            f"  agent_tokens: [{AGENT_TOKEN}]\n"
            f"  operator_tokens: [{OPERATOR_TOKEN}]\n"
            "  knowledge_file: knowledge.yaml\n")


@pytest.fixture(params=["sqlite", "postgres"])
def collector(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CollectorProcess]:
    url = None if request.param == "sqlite" else request.getfixturevalue("pg_schema_url")
    process = CollectorProcess(tmp_path / "collector", store=url)
    config = Path(process.argv[-1])
    (config.parent / "knowledge.yaml").write_text(f"first_actions:\n  disk:\n    - \"{FIRST}\"\n")
    config.write_text(_config(process))
    try:
        yield process.start()
    finally:
        process.stop()


def _first_actions(collector: CollectorProcess, host: str, sequence: int) -> list[str]:
    posted = requests.post(collector.url + "/api/v1/events",
                           json=event_payload(host, "root-disk", sequence, check_type="disk"),
                           headers={"Authorization": f"Bearer {AGENT_TOKEN}"}, timeout=10)
    assert posted.status_code == 202, posted.text
    number = posted.json()["results"][0]["ticket"] if "results" in posted.json() \
        else posted.json()["ticket"]
    body = requests.get(f"{collector.url}/api/v1/tickets/{number}", headers=AUTH,
                        timeout=10).json()["body"]
    section = body.split("## Suggested first actions", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line[:1].isdigit()]


@pytest.mark.slow
def test_the_operators_first_actions_lead_the_ticket_and_follow_a_reload(
        collector: CollectorProcess) -> None:
    actions = _first_actions(collector, "db-01", 1)
    assert actions[0] == f"1. {FIRST}"
    assert len(actions) > 1  # the built-in disk actions follow
    knowledge = Path(collector.argv[-1]).parent / "knowledge.yaml"  # type: ignore[attr-defined]
    knowledge.write_text(f"first_actions:\n  disk:\n    - \"{SECOND}\"\n")
    collector.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
    deadline = time.monotonic() + 20
    sequence = 2
    while time.monotonic() < deadline:
        actions = _first_actions(collector, f"db-{sequence:02d}", sequence)
        if actions[0] == f"1. {SECOND}":
            break
        sequence += 1
        time.sleep(0.5)
    assert actions[0] == f"1. {SECOND}" and all(FIRST not in a for a in actions)
