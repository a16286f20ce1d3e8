"""Restarts are not events: a real agent restarted while its check fails, and a real
collector restarted while the agent keeps reporting, leave the ticket's history true.

The agent's check looks for a file that does not exist (CRITICAL, sustained for 2 s
before it is hard); it sends a heartbeat every second, so the collector reconciles
the agent's full state right after each restart. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from patrol.collector.store import open_store
from tests.procs import AgentProcess, CollectorProcess, read_outbox

pytestmark = pytest.mark.slow
HOST = "restart-01"
SUSTAIN = 2.0
FALSE_HISTORY = {"recovering", "verification_failed", "reopened", "flapping", "resolved"}


def _epoch(value: Any) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


@pytest.fixture(params=["sqlite", "postgres"])
def setup(request: pytest.FixtureRequest, tmp_path: Path
          ) -> Iterator[tuple[CollectorProcess, AgentProcess, Any]]:
    url = f"sqlite:///{tmp_path}/collector/collector.db" if request.param == "sqlite" \
        else request.getfixturevalue("pg_schema_url")
    collector = CollectorProcess(tmp_path / "collector", store=url,
                                 settings=("watchdog_interval: 0.5s",))
    agent = AgentProcess(tmp_path / "agent", collector.url, f"""\
  - name: marker
    type: file
    path: {tmp_path}/marker-that-is-missing
    for: {SUSTAIN:g}s
""", hostname=HOST, heartbeat="1s")
    collector.start()
    store = open_store(url)
    try:
        yield collector, agent.start(), store
    finally:
        agent.stop()
        collector.stop()
        store.close()


def settled(agent: AgentProcess, store: Any, since: float) -> None:
    """Wait until the collector has the agent's state from well after ``since`` (a
    restart): the check ran past its sustain time and everything the agent queued has
    been delivered, so any event or reconciliation the restart caused has happened."""
    def seen() -> bool:
        states = [s for s in store.check_states()
                  if s["host"] == HOST and s["check"] == "marker"]
        return bool(states) and states[0]["last_run"] is not None and \
            _epoch(states[0]["last_run"]) > since + SUSTAIN + 1.5 and \
            states[0]["status"] == "CRITICAL" and not read_outbox(agent.state_dir)
    agent.wait_until(seen, 40, "the collector to see the restarted agent's state")


def restart(agent: AgentProcess, store: Any, crash: bool = False) -> None:
    """Stop the agent (SIGTERM, or SIGKILL for a crash) and start it again."""
    if crash:
        agent.kill()
    else:
        assert agent.stop() == 0
    since = time.time()
    agent.start()
    settled(agent, store, since)


def test_agent_and_collector_restarts_leave_the_ticket_history_true(
        setup: tuple[CollectorProcess, AgentProcess, Any]) -> None:
    collector, agent, store = setup
    settled(agent, store, time.time() - SUSTAIN - 1.5)
    [ticket] = store.list_tickets(host=HOST)
    assert ticket.check == "marker" and ticket.status.is_open

    restart(agent, store)
    restart(agent, store, crash=True)  # two within minutes: would look like flapping
    [after] = store.list_tickets(host=HOST)
    kinds = [e.kind for e in store.timeline(after.id)]
    assert kinds == ["opened"], kinds
    assert after.status.is_open and not after.flapping and after.recovered_at is None

    collector.close_wont_fix(ticket.number, "won't fix: the marker file is retired")

    restart(agent, store)
    assert collector.stop() == 0  # the collector is down longer than 3 heartbeats
    since = time.time()
    time.sleep(4)
    collector.start()
    settled(agent, store, since)
    restart(agent, store)

    tickets = store.list_tickets(host=HOST)
    assert [(t.number, t.status.value) for t in tickets] == [(ticket.number, "closed")]
    kinds = [e.kind for e in store.timeline(ticket.id)]
    assert kinds == ["opened", "closed"], kinds
    assert not FALSE_HISTORY & set(kinds)
