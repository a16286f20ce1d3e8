"""Faults with real processes: collectors and agents stopped, crashed and restarted.

Each test runs ``patrol collector`` and ``patrol agent`` as separate processes on
127.0.0.1 (tests/procs.py), breaks something the way production breaks it (SIGTERM
during breaches, SIGKILL with a full outbox, SIGKILL in the middle of a request,
a hundred concurrent writers, a payload the collector cannot take) and asserts what
an operator would check afterwards: every event arrived once, every incident has
exactly one ticket with the right counts and times, the outbox is empty. Every test
with a collector runs on SQLite and on PostgreSQL (the ``store`` fixture).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry, generate_latest

from patrol.agent.delivery_metrics import DeliveryCollector
from patrol.agent.outbox import Outbox
from patrol.agent.pusher import Pusher, Target
from tests.procs import (
    AGENT_TOKEN,
    AgentProcess,
    CollectorProcess,
    agent_headers,
    event_payload,
    free_port,
    read_outbox,
)

pytestmark = pytest.mark.slow

DELIVERY_TIMEOUT = 90.0  # the pusher's backoff after an outage can reach ~16 s per try


def file_checks(paths: dict[str, Path]) -> str:
    return "".join(f"  - name: {name}\n    type: file\n    path: {path}\n"
                   f"    must_exist: true\n    for: 1\n" for name, path in paths.items())


def check_status(agent: AgentProcess, name: str) -> int | None:
    needle = f'patrol_check_status{{check="{name}",type="file"}} '
    for line in agent.metrics().splitlines():
        if line.startswith(needle):
            return int(float(line[len(needle):]))
    return None


def pending_events(agent: AgentProcess) -> list[dict]:
    return [r for r in read_outbox(agent.state_dir) if r["kind"] == "event"]


def recorded_events(collector: CollectorProcess) -> Counter[str]:
    """event_id -> times recorded in the collector's store (read-only on SQLite)."""
    if collector.store.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(collector.store) as pg:
            return Counter(row[0] for row in pg.execute("SELECT event_id FROM events"))
    conn = sqlite3.connect(f"file:{collector.db}?mode=ro", uri=True, timeout=5)
    try:
        return Counter(row[0] for row in conn.execute("SELECT event_id FROM events"))
    finally:
        conn.close()


def by_key(tickets: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for ticket in tickets:
        out.setdefault(ticket["dedup_key"], []).append(ticket)
    return out


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> str | None:
    """The collector's store URL: None for its own SQLite file, or a fresh PostgreSQL
    schema (kept across the collector's restarts within the test)."""
    return None if request.param == "sqlite" else request.getfixturevalue("pg_schema_url")


@pytest.fixture
def procs():
    """Every process a test starts; all stopped by PID at teardown, even on failure."""
    started: list = []
    yield started
    for proc in reversed(started):
        proc.stop(timeout=5)


def test_collector_stopped_during_breaches_gets_every_event_once(tmp_path, procs, store) -> None:
    files = {name: tmp_path / f"{name}.flag" for name in ("alpha", "beta", "gamma")}
    for path in files.values():
        path.write_text("ok")
    collector = CollectorProcess(tmp_path / "collector", store=store)
    procs.append(collector.start())
    agent = AgentProcess(tmp_path / "agent", collector.url, file_checks(files))
    procs.append(agent.start())
    agent.wait_until(lambda: all(check_status(agent, n) == 0 for n in files), what="3 OK checks")

    assert collector.stop() == 0, collector.output()
    # While the collector is down: alpha breaches and recovers, beta and gamma breach.
    files["alpha"].unlink()
    agent.wait_until(lambda: check_status(agent, "alpha") == 2, what="alpha CRITICAL")
    files["alpha"].write_text("back")
    agent.wait_until(lambda: check_status(agent, "alpha") == 0, what="alpha OK again")
    files["beta"].unlink()
    files["gamma"].unlink()
    queued = agent.wait_until(lambda: (rows := pending_events(agent)) and len(rows) == 4
                              and rows, what="4 events queued in the outbox")
    said = [(r["payload"]["check"], r["payload"]["action"]) for r in queued]
    assert said[:2] == [("alpha", "trigger"), ("alpha", "resolve")]
    assert sorted(said[2:]) == [("beta", "trigger"), ("gamma", "trigger")]  # either order
    assert [r["sequence"] for r in queued] == sorted(r["sequence"] for r in queued)

    collector.start()  # same SQLite file
    agent.wait_until(lambda: not pending_events(agent), DELIVERY_TIMEOUT, "the outbox to drain")

    assert recorded_events(collector) & Counter(r["key"] for r in queued) == \
        Counter(r["key"] for r in queued)
    tickets = by_key(collector.tickets())
    for name in files:
        assert len(tickets[f"fault-01/{name}"]) == 1, tickets
    alpha, beta, gamma = (tickets[f"fault-01/{n}"][0] for n in files)
    assert alpha["recovered_at"] is not None and alpha["check_status"] == "OK"
    assert (beta["check_status"], gamma["check_status"]) == ("CRITICAL", "CRITICAL")
    triggers = {r["payload"]["check"]: r for r in queued if r["payload"]["action"] == "trigger"}
    for ticket in (alpha, beta, gamma):
        assert ticket["occurrences"] == 1
        assert ticket["first_seen"] == pytest.approx(
            epoch(triggers[ticket["check"]]["payload"]["observed_at"]), abs=1e-3)


def test_agent_killed_with_full_outbox_delivers_after_restart(tmp_path, procs, store) -> None:
    flag = tmp_path / "backup.flag"
    flag.write_text("ok")
    collector = CollectorProcess(tmp_path / "collector", store=store)  # not started yet: "down"
    procs.append(collector)
    agent = AgentProcess(tmp_path / "agent", collector.url, file_checks({"backup": flag}))
    procs.append(agent.start())
    agent.wait_until(lambda: check_status(agent, "backup") == 0, what="backup OK")

    flag.unlink()
    (row,) = agent.wait_until(lambda: pending_events(agent), what="the breach in the outbox")
    breach_at = epoch(row["payload"]["observed_at"])
    agent.kill()
    # The file comes back before the agent does, so the restarted agent sees OK and
    # has nothing new to say: a ticket can only come from the event queued pre-crash.
    flag.write_text("ok")
    time.sleep(1.0)  # so a ticket timed at the restart could not pass for the breach
    collector.start()
    restarted_at = time.time()
    agent.start()
    agent.wait_until(lambda: not pending_events(agent), DELIVERY_TIMEOUT, "the outbox to drain")

    assert recorded_events(collector)[row["key"]] == 1
    (ticket,) = collector.tickets(host="fault-01")
    assert ticket["dedup_key"] == "fault-01/backup"
    assert ticket["first_seen"] == pytest.approx(breach_at, abs=1e-3)
    assert ticket["first_seen"] < restarted_at - 1.0


def _post_batches(collector: CollectorProcess, batches: list[list[dict]],
                  outcome: dict[str, object]) -> None:
    session = requests.Session()
    try:
        for batch in batches:
            response = session.post(collector.url + "/api/v1/events", json={"events": batch},
                                    headers=agent_headers(), timeout=60)
            outcome.setdefault("statuses", []).append(response.status_code)  # type: ignore[union-attr]
    except requests.RequestException as exc:
        outcome["error"] = exc
    finally:
        session.close()


def test_collector_killed_mid_request_records_each_event_once(tmp_path, procs, store) -> None:
    # 2 events per incident (breach, then a repeat): a replay that double counted
    # would show up as occurrences 3 or more.
    hosts, per_batch = 1000, 500
    events = [event_payload(f"web-{i:04d}", "disk", seq, agent_id=f"agent-{i:04d}")
              for seq in (1, 2) for i in range(hosts)]
    batches = [events[i:i + per_batch] for i in range(0, len(events), per_batch)]
    collector = CollectorProcess(tmp_path / "collector", store=store)
    procs.append(collector.start())

    outcome: dict[str, object] = {}
    poster = threading.Thread(target=_post_batches, args=(collector, batches, outcome))
    poster.start()
    collector.wait_until(
        lambda: collector.session.get(collector.url + "/healthz", timeout=5)
        .json()["open_tickets"] >= 100, 60, "the first 100 tickets", interval=0.01)
    collector.kill()
    poster.join(60)
    committed = sum(recorded_events(collector).values())
    assert "error" in outcome and 100 <= committed < len(events), (outcome, committed)
    if store is None:
        conn = sqlite3.connect(collector.db)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        finally:
            conn.close()

    collector.start()
    outcomes: Counter[str] = Counter()
    for batch in batches:  # the agent's retry: the same batches, the same event_ids
        response = collector.post_events(batch, timeout=120)
        assert response.status_code == 202, response.text
        outcomes.update(r["outcome"] for r in response.json()["results"])

    assert outcomes["duplicate"] == committed
    assert sum(recorded_events(collector).values()) == len(events)
    tickets = by_key(collector.tickets())
    assert len(tickets) == hosts
    assert {len(t) for t in tickets.values()} == {1}
    assert Counter(t[0]["occurrences"] for t in tickets.values()) == {2: hosts}


def test_100_concurrent_updates_to_one_incident_are_all_counted(tmp_path, procs, store) -> None:
    collector = CollectorProcess(tmp_path / "collector", store=store)
    procs.append(collector.start())
    first = collector.post_events([event_payload("db-01", "replication", 1)])
    assert first.status_code == 202 and first.json()["results"][0]["outcome"] == "opened"

    barrier = threading.Barrier(100)
    statuses: list[int | str] = [0] * 100

    def repeat(i: int) -> None:
        payload = event_payload("db-01", "replication", 2 + i, agent_id=f"agent-{i:03d}")
        with requests.Session() as session:
            barrier.wait()
            try:
                statuses[i] = session.post(collector.url + "/api/v1/events", json=payload,
                                           headers=agent_headers(), timeout=60).status_code
            except requests.RequestException as exc:
                statuses[i] = repr(exc)

    threads = [threading.Thread(target=repeat, args=(i,)) for i in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)

    assert Counter(statuses) == {202: 100}, Counter(statuses)
    (ticket,) = collector.tickets(host="db-01")
    assert ticket["occurrences"] == 101
    assert collector.alive(), collector.output()


def test_process_helpers_stop_only_their_own_pid(tmp_path) -> None:
    """The fixtures' promise: stop() ends the process it started and is idempotent."""
    collector = CollectorProcess(tmp_path / "c", port=free_port()).start()
    pid = collector.pid
    assert collector.stop() == 0
    assert collector.stop() == 0 and not collector.alive()
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)


def _heartbeat(outbox: Outbox, host: str) -> None:
    """What the agent's heartbeat job queues: the host's state, every second."""
    outbox.put("heartbeat", {
        "schema_version": 1, "source": host, "sequence": outbox.last_sequence(),
        "agent": {"id": "fault-agent", "version": "1.0"}, "interval_seconds": 1.0,
        "sent_at": datetime.now(UTC).isoformat(), "labels": {"tier": "standard"},
        "checks": []}, key=host)


def test_a_poison_event_neither_blocks_the_agent_nor_looks_like_an_outage(
        tmp_path, procs, store) -> None:
    """Once, a Nagios plugin's NUL byte made PostgreSQL answer 500: the agent retried
    it forever, every event and heartbeat behind it waited, and the collector opened
    a false "host unreachable" ticket. Now the odd text is stored cleaned (U+FFFD),
    what the collector truly cannot take (a measurement that is no number, as an
    older agent could queue; diagnostics nested too deep to process) is a 422 that
    dead-letters that one row, and everything after it, heartbeats included, keeps
    flowing in order."""
    collector = CollectorProcess(tmp_path / "collector", store=store,
                                 settings=("watchdog_interval: 0.5",))
    procs.append(collector.start())
    outbox = Outbox(tmp_path / "agent-state", [collector.url])
    pusher = Pusher(outbox, [Target(collector.url, AGENT_TOKEN)],
                    heartbeat=lambda: _heartbeat(outbox, "poison-01"),
                    heartbeat_interval=0.25, backoff_base=0.05, backoff_cap=0.2)
    odd = event_payload("poison-01", "nagios-load", outbox.next_sequence())
    odd["summary"] = "CRITICAL - load average: 9.1\x00, 8.7 \ud800"
    odd["diagnostics"] = {"plugin_output": "line\x00two", "ratio": float("nan")}
    poison = event_payload("poison-01", "legacy", outbox.next_sequence())
    poison["measurements"] = [{"name": "load1", "value": float("nan"), "item": ""}]
    deep = event_payload("poison-01", "deep", outbox.next_sequence())
    deep["diagnostics"] = nested = {}
    for _ in range(500):
        nested["a"] = nested = {}
    after = [event_payload("poison-01", f"after-{n}", outbox.next_sequence())
             for n in range(3)]
    for payload in (odd, poison, deep, *after):
        outbox.put("event", payload, key=payload["event_id"])
    try:
        pusher.start()
        collector.wait_until(lambda: [r.dead for r in outbox.rows()] == [True, True],
                             30, "everything but the two poisons delivered")
        not_a_number, too_deep = outbox.rows()
        assert (not_a_number.key, too_deep.key) == (poison["event_id"], deep["event_id"])
        assert not_a_number.last_error.startswith("HTTP 422: ")
        assert "events.0.measurements.0.value: Input should be a finite number" in \
            not_a_number.last_error
        assert "events.0.diagnostics: Value error, nested deeper than 32 levels" in \
            too_deep.last_error
        tickets = {t["check"]: t for t in collector.tickets(host="poison-01")}
        assert set(tickets) == {"nagios-load", "after-0", "after-1", "after-2"}
        assert tickets["nagios-load"]["title"] == \
            "CRITICAL - load average: 9.1\ufffd, 8.7 \ufffd"
        assert recorded_events(collector) == Counter(
            p["event_id"] for p in (odd, *after))
        # Heartbeats keep arriving past the heartbeat timeout (3 intervals of 1 s)
        # and several watchdog runs: a blocked lane would have made the host lost.
        beats = pusher.heartbeats_delivered
        collector.wait_until(lambda: pusher.heartbeats_delivered >= beats + 16, 30,
                             "4 s more of heartbeats")
        assert "heartbeat" not in {t["check"] for t in collector.tickets(host="poison-01")}
        registry = CollectorRegistry()
        registry.register(DeliveryCollector(lambda: pusher))
        exposed = generate_latest(registry).decode().splitlines()
        assert "patrol_outbox_dead_lettered_total 2.0" in exposed
        assert 'patrol_outbox_delivered_total{kind="event"} 4.0' in exposed
    finally:
        pusher.stop()
        outbox.close()
