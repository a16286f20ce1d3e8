"""The watchdog's duties fail one at a time: a ticket whose step raises, or a duty that
raises, is logged once, counted in /metrics and retried; every other duty runs on time.
On SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from patrol.collector.ingest.api import create_app
from patrol.collector.model import TicketStatus
from tests.collector_fixtures import (
    AGENT_TOKEN,
    MINUTE,
    OPERATOR_TOKEN,
    T0,
    World,
    at,
    event,
    heartbeat,
    snapshot,
)

pytest_plugins = ["tests.store_worlds"]  # any_world: SQLite and PostgreSQL


def metrics(w: World) -> set[str]:
    client = TestClient(create_app(w.engine, [AGENT_TOKEN], [OPERATOR_TOKEN]))
    return set(client.get("/metrics").text.splitlines())


def sample(lines: set[str], name: str) -> float | None:
    """The value of the sample ``name`` (with its labels) in a scrape, or None."""
    found = [line.rsplit(" ", 1)[1] for line in lines if line.rsplit(" ", 1)[0] == name]
    return float(found[0]) if found else None


class HelpdeskRefuses:
    """``engine.notify`` raising for one host's tickets: a fault in one ticket's step
    (a routing rule that crashes on it, say), in the transaction of that step."""

    def __init__(self, w: World, host: str) -> None:
        self.real, self.host, self.on = w.engine.notify, host, True

    def __call__(self, tx: Any, ticket: Any, *args: Any) -> None:
        if self.on and ticket.host == self.host:
            raise RuntimeError(f"no route for {ticket.number}")
        self.real(tx, ticket, *args)


def test_one_failing_ticket_does_not_stop_the_other_duties(
        any_world: World, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    w = any_world
    healthy, broken = (w.one(event(host)).ticket for host in ("db-01", "db-02"))
    w.clock.advance(MINUTE)
    w.ingest(event("db-01", status="OK", observed_at=w.clock()),
             event("db-02", status="OK", observed_at=w.clock()))
    w.engine.heartbeat(heartbeat("web-02", sent_at=w.clock()))  # then goes silent
    fault = HelpdeskRefuses(w, "db-02")
    monkeypatch.setattr(w.engine, "notify", fault)

    w.clock.advance(5 * MINUTE)  # verification over for both tickets
    frozen = [snapshot("app-log", "OK", last_run=T0, interval=60)]
    w.engine.heartbeat(heartbeat("web-01", frozen, sent_at=w.clock()))
    caplog.set_level(logging.INFO, "patrol.collector.watchdog")
    counts = w.watchdog.run_once()

    assert w.ticket(healthy).status is TicketStatus.RESOLVED
    assert w.ticket(broken).status is TicketStatus.NEW  # its step failed, rolled back
    assert w.ticket(broken).recovered_at == T0 + MINUTE
    assert (counts["unreachable"], counts["stale"]) == (1, 1)  # ran on time regardless
    assert {t.check for t in w.store.list_tickets(status=["new"])} >= {
        "heartbeat", "stale:app-log"}
    lines = metrics(w)
    assert 'patrol_collector_watchdog_errors_total{duty="timers"} 1.0' in lines
    assert 'patrol_collector_watchdog_errors_total{duty="liveness"} 0.0' in lines
    assert "patrol_collector_watchdog_leader 1.0" in lines
    successes = {line.split()[0] for line in lines
                 if line.startswith("patrol_collector_watchdog_last_success")}
    assert 'patrol_collector_watchdog_last_success_timestamp_seconds{duty="timers"}' \
        not in successes  # a ticket's step failed: the duty did not complete
    assert {f'patrol_collector_watchdog_last_success_timestamp_seconds{{duty="{d}"}}'
            for d in ("liveness", "staleness", "maintenance_end", "prune")} <= successes

    w.tick(10)  # still failing: counted again, logged once
    assert 'patrol_collector_watchdog_errors_total{duty="timers"} 2.0' in metrics(w)
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 1 and broken in failures[0].getMessage()

    fault.on = False  # fixed: the next pass resolves it
    w.tick(10)
    assert w.ticket(broken).status is TicketStatus.RESOLVED
    assert sample(metrics(w), 'patrol_collector_watchdog_last_success_timestamp_seconds'
                             '{duty="timers"}') == w.clock()
    assert any(f"timers for {broken} works again" in r.getMessage() for r in caplog.records)


def test_a_failing_duty_is_retried_and_its_window_end_not_lost(
        any_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    w = any_world
    with w.store.transaction() as tx:
        tx.add_maintenance({"name": "db upgrade", "hosts": ["db-*"],
                            "start": at(T0).isoformat(), "end": at(T0 + 10 * MINUTE).isoformat()})
    w.engine.invalidate_windows()
    assert w.one(event("db-01")).outcome == "suppressed"
    w.tick(MINUTE)
    w.engine.heartbeat(heartbeat("web-02", sent_at=w.clock()))

    def unreadable(since: float) -> list[dict[str, Any]]:
        raise RuntimeError("events table unreadable")

    monkeypatch.setattr(w.store, "events_since", unreadable)
    counts = w.tick(10 * MINUTE)  # the window ended during this pass's failure
    assert counts["unreachable"] == 1  # heartbeat loss still ticketed on time
    assert w.store.list_tickets(host="db-01") == []
    assert 'patrol_collector_watchdog_errors_total{duty="maintenance_end"} 1.0' in metrics(w)

    monkeypatch.undo()
    assert w.tick(10)["maintenance_ended"] == 1  # retried: the end is still seen
    [ticket] = w.store.list_tickets(host="db-01")
    assert ticket.status is TicketStatus.NEW
    assert w.kinds(ticket.number) == ["opened", "maintenance"]


class FailingSync:
    """A dispatcher whose read-back crashes (an adapter bug, say)."""

    def sync_once(self) -> int:
        raise KeyError("state")


def test_a_crashing_helpdesk_sync_is_counted_and_the_passes_go_on(any_world: World) -> None:
    w = any_world
    w.tick()  # the first pass takes the lead
    assert w.watchdog.sync(FailingSync()) == 0
    assert w.watchdog.sync(FailingSync()) == 0
    number = w.one(event()).ticket
    w.tick(12 * MINUTE)  # P2: respond-by near after 24 minutes, not yet
    assert w.tick(12 * MINUTE)["escalations"] == 1
    lines = metrics(w)
    assert 'patrol_collector_watchdog_errors_total{duty="helpdesk_sync"} 2.0' in lines
    assert sample(lines, 'patrol_collector_watchdog_last_success_timestamp_seconds'
                         '{duty="sla"}') == w.clock()
    assert w.ticket(number).escalation == 1


def test_a_ticket_the_policy_cannot_judge_does_not_stop_the_pass(any_world: World) -> None:
    """A row an older, buggy version wrote (state-change times that are not times): the
    timer decision itself raises for it, and only for it."""
    w = any_world
    broken, healthy = (w.one(event(host)).ticket for host in ("db-01", "db-02"))
    w.clock.advance(MINUTE)
    w.ingest(event("db-01", status="OK", observed_at=w.clock()),
             event("db-02", status="OK", observed_at=w.clock()))
    with w.store.transaction() as tx:
        row = tx.get_ticket(broken)
        row.flapping, row.state_changes = True, ["yesterday"]
        tx.update_ticket(row)
    counts = w.tick(10 * MINUTE)
    assert counts["timers"] == 1
    assert w.ticket(healthy).status is TicketStatus.RESOLVED
    assert w.ticket(broken).status is TicketStatus.NEW
    assert 'patrol_collector_watchdog_errors_total{duty="timers"} 1.0' in metrics(w)
