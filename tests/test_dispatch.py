"""The dispatch outbox between tickets and helpdesks: order, retries, dedup, read-back,
and leases shared by several collectors (replicas) on one store; on SQLite and PostgreSQL.

The helpdesk here is an in-memory recorder that keeps tickets like a helpdesk does
and can be told to fail; the adapters themselves are tested against real servers
and vendor-faithful fakes in tests/test_bridge_*.py. Real collector processes
sharing one PostgreSQL schema are in tests/test_dispatch_replicas.py.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

from patrol.collector.dispatch.dispatcher import Dispatcher, fingerprint
from patrol.collector.dispatch.leases import LEASE
from patrol.collector.dispatch.routing import Route, RouteMatch, TicketingSettings, destinations
from patrol.collector.engine import Engine
from patrol.contract.wire import Event
from patrol.ticketing_bridge.protocol import (
    ExternalRef,
    PermanentError,
    RemoteStatus,
    TemporaryError,
)
from tests.collector_fixtures import store_for
from tests.test_wire import EVENT


class Desk:
    """Keeps tickets like a helpdesk; ``fail`` queues errors for the next calls."""

    type: ClassVar[str] = "desk"

    def __init__(self, name: str = "desk") -> None:
        self.name = name
        self.tickets: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail: list[Exception] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()
        self.delay = 0.0
        self.after_open: Any = None  # called once the ticket exists, before answering

    def _call(self, what: str, key: str) -> None:
        with self.lock:
            self.calls.append((what, key))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
            if self.fail:
                raise self.fail.pop(0)
        finally:
            with self.lock:
                self.in_flight -= 1

    def open(self, view, dest) -> ExternalRef:
        self._call("open", view.number)
        ticket_id = str(len(self.tickets) + 1)
        self.tickets[ticket_id] = {"fingerprint": view.fingerprint, "state": "open",
                                   "priority": view.priority, "notes": [],
                                   "project": dest.project, "title": view.title}
        if self.after_open is not None:
            self.after_open()
        return ExternalRef(self.name, ticket_id, f"https://desk/{ticket_id}")

    def find(self, fp: str, dest) -> ExternalRef | None:
        self._call("find", fp)
        for ticket_id, ticket in self.tickets.items():
            if ticket["fingerprint"] == fp and ticket["state"] != "closed":
                return ExternalRef(self.name, ticket_id, f"https://desk/{ticket_id}")
        return None

    def comment(self, ref, text, view) -> None:
        self._call("comment", ref.id)
        self.tickets[ref.id]["notes"].append(text)

    def set_priority(self, ref, view, dest) -> None:
        self._call("priority", ref.id)
        self.tickets[ref.id]["priority"] = view.priority

    def resolve(self, ref, text, view, dest) -> None:
        self._call("resolve", ref.id)
        self.tickets[ref.id].update(state="closed")
        self.tickets[ref.id]["notes"].append(text)

    def reopen(self, ref, text, view, dest) -> None:
        self._call("reopen", ref.id)
        self.tickets[ref.id].update(state="open")
        self.tickets[ref.id]["notes"].append(text)

    def status(self, ref) -> RemoteStatus:
        ticket = self.tickets[ref.id]
        return RemoteStatus(ticket["state"], ticket.get("assignee"), ticket.get("wont_fix",
                                                                                 False))


# No hold for opens: the sample events carry a grouping label (role), whose opens
# would otherwise wait for a possible fleet incident.
SETTINGS = TicketingSettings(helpdesks={"desk": {"type": "desk"}}, group_hold=0,
                             routes=[Route(helpdesk="desk", project="ops")])


@pytest.fixture(params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path: Path):
    now = [1_795_300_000.0]
    store = store_for(request.param, request, tmp_path)
    engine = Engine(store, clock=lambda: now[0])
    desk = Desk()
    engine.dispatcher = Dispatcher(store, SETTINGS, {"desk": desk}, {"desk": 2},
                                   lambda: now[0])
    yield engine, desk, now
    engine.dispatcher.close()
    store.close()


def replica(engine: Engine, desk: Desk, now: list[float], **options: Any) -> Dispatcher:
    """A second collector's dispatcher on the same store and helpdesk."""
    return Dispatcher(engine.store, SETTINGS, {"desk": desk}, {"desk": 2}, lambda: now[0],
                      **options)


def breach(**changes: Any) -> Event:
    return Event.model_validate({**EVENT, **changes})


def drain(engine: Engine) -> None:
    while engine.dispatcher.run_once():
        pass


def test_a_new_ticket_is_opened_once_and_its_reference_stored(world) -> None:
    engine, desk, _ = world
    engine.ingest([breach()])
    ticket = engine.store.list_tickets()[0]
    drain(engine)
    assert desk.calls == [("find", fingerprint(ticket)), ("open", ticket.number)]
    assert desk.tickets["1"]["project"] == "ops"
    assert engine.store.link(ticket.id, "desk")["external_id"] == "1"
    timeline = [e.text for e in engine.store.timeline(ticket.id)]
    assert timeline[-1] == "opened in desk as #1 (https://desk/1)"
    drain(engine)
    assert len(desk.calls) == 2  # nothing left to deliver


def test_a_crash_between_created_and_stored_adopts_the_existing_ticket(world) -> None:
    engine, desk, _ = world
    engine.ingest([breach()])
    ticket = engine.store.list_tickets()[0]
    # The helpdesk already has it (created before a crash), but no link was stored.
    desk.tickets["7"] = {"fingerprint": fingerprint(ticket), "state": "open",
                         "priority": "P1", "notes": [], "project": "ops", "title": ""}
    drain(engine)
    assert [c for c in desk.calls if c[0] == "open"] == []
    assert engine.store.link(ticket.id, "desk")["external_id"] == "7"
    assert engine.store.timeline(ticket.id)[-1].text == \
        "found the existing ticket in desk as #7 (https://desk/7)"


def test_temporary_errors_retry_after_the_helpdesks_retry_after(world) -> None:
    engine, desk, now = world
    desk.fail = [TemporaryError("rate limited", 429, retry_after=30)]
    engine.ingest([breach()])
    assert engine.dispatcher.run_once() == {"retry": 1}
    row = engine.store.dispatch_rows(state="pending")[0]
    assert row["next_at"] == pytest.approx(now[0] + 30)
    assert row["attempts"] == 1 and "rate limited" in row["last_error"]
    assert engine.dispatcher.run_once() == {}  # not due yet
    now[0] += 30
    assert engine.dispatcher.run_once() == {"delivered": 1}


def test_permanent_errors_show_on_the_ticket_and_never_retry_alone(world) -> None:
    engine, desk, now = world
    desk.fail = [PermanentError("desk: POST /issues answered 403: check the credentials", 403)]
    engine.ingest([breach()])
    assert engine.dispatcher.run_once() == {"failed": 1}
    ticket = engine.store.list_tickets()[0]
    assert engine.store.timeline(ticket.id)[-1].kind == "helpdesk_error"
    assert "403" in engine.store.timeline(ticket.id)[-1].text
    now[0] += 3600
    assert engine.dispatcher.run_once() == {}
    assert engine.dispatcher.backlog() == [
        {"helpdesk": "desk", "state": "failed", "count": 1, "oldest_age_seconds": 3600.0}]
    from prometheus_client import generate_latest

    from patrol.collector.metrics import build_registry

    text = generate_latest(build_registry(engine)).decode()
    assert 'patrol_collector_dispatch_backlog{helpdesk="desk",state="failed"} 1.0' in text
    assert 'patrol_collector_dispatch_attempts_total{helpdesk="desk",outcome="failed"} 1.0' \
        in text


def test_actions_reach_the_helpdesk_in_order_even_when_the_open_is_retried(world) -> None:
    engine, desk, now = world
    desk.fail = [TemporaryError("down")]
    engine.ingest([breach()])
    engine.ingest([breach(event_id="e2" * 8, severity="warning", status="WARNING")])
    engine.dispatcher.run_once()  # the open fails; the priority change must wait
    assert [c[0] for c in desk.calls] == ["find"]
    now[0] += 600
    drain(engine)
    assert [c[0] for c in desk.calls] == ["find", "find", "open", "priority", "comment"]
    assert desk.tickets["1"]["priority"] == "P3"
    assert desk.tickets["1"]["notes"][0].startswith("Patrol: severity critical -> warning")


def test_recovery_verified_resolves_and_a_rebreach_reopens_in_the_helpdesk(world) -> None:
    engine, desk, now = world
    from patrol.collector.watchdog.timers import Watchdog

    engine.ingest([breach()])
    drain(engine)
    engine.ingest([breach(event_id="r1" * 8, action="resolve", status="OK", severity="info")])
    now[0] += 301
    Watchdog(engine).run_once()
    drain(engine)
    assert desk.tickets["1"]["state"] == "closed"
    assert desk.tickets["1"]["notes"][-1].startswith("Patrol verified the recovery")
    now[0] += 60
    engine.ingest([breach(event_id="b2" * 8)])
    drain(engine)
    assert desk.tickets["1"]["state"] == "open" and len(desk.tickets) == 1
    assert desk.tickets["1"]["notes"][-1].startswith("Patrol reopened this ticket")


def test_concurrency_per_helpdesk_is_capped(world) -> None:
    engine, desk, _ = world
    desk.delay = 0.05
    engine.ingest([breach(event_id=f"{i:016d}", dedup_key=f"h{i}/disk", source=f"h{i}")
                   for i in range(8)])
    drain(engine)
    assert len(desk.tickets) == 8 and desk.most_in_flight == 2


def test_acknowledged_in_the_helpdesk_marks_the_ticket_in_progress(world) -> None:
    engine, desk, now = world
    engine.ingest([breach()])
    drain(engine)
    desk.tickets["1"].update(state="acknowledged", assignee="alice")
    now[0] += 120
    assert engine.dispatcher.sync_once() == 1
    ticket = engine.store.list_tickets()[0]
    assert ticket.status == "in_progress" and ticket.acknowledged_at == now[0]
    assert engine.store.timeline(ticket.id)[-1].text == "taken in desk by alice"
    assert engine.dispatcher.sync_once() == 0  # nothing new


@pytest.mark.parametrize(("policy", "wont_fix", "expected_state", "expected_status"), [
    pytest.param("reopen", False, "open", "new", id="reopen-while-failing"),
    pytest.param("respect", False, "closed", "closed", id="respect-policy"),
    pytest.param("reopen", True, "closed", "closed", id="wont-fix-is-respected"),
])
def test_closed_in_the_helpdesk_while_the_check_fails(world, policy, wont_fix, expected_state,
                                                      expected_status) -> None:
    engine, desk, _ = world
    engine.dispatcher.settings = engine.dispatcher.settings.model_copy(
        update={"on_remote_close": policy})
    engine.ingest([breach()])
    drain(engine)
    desk.tickets["1"].update(state="closed", wont_fix=wont_fix)
    engine.dispatcher.sync_once()
    drain(engine)
    assert desk.tickets["1"]["state"] == expected_state
    assert engine.store.list_tickets(status=None)[0].status == expected_status


def test_routes_pick_helpdesks_projects_and_assignees() -> None:
    from patrol.collector.model import Priority, Ticket, TicketStatus

    def ticket(**changes: Any) -> Ticket:
        base = dict(dedup_key="db-01/pg", title="t", host="db-01", check="pg-conn",
                    check_type="postgres", severity="critical", priority=Priority.P1,
                    status=TicketStatus.NEW, category="software", opened_at=0, first_seen=0,
                    last_seen=0, respond_by=0, resolve_by=0, labels={"team": "dba"})
        return Ticket(**{**base, **changes})

    routes = [
        Route(match=RouteMatch(priorities=["P1"]), helpdesk="pagerduty", continue_=True),
        Route(match=RouteMatch(labels={"team": "dba"}, checks=["pg-*"]), helpdesk="redmine",
              project="dba", assignee="alice"),
        Route(helpdesk="redmine", project="ops"),
    ]
    assert [(d.helpdesk, d.project, d.assignee) for d in destinations(ticket(), routes)] == [
        ("pagerduty", None, None), ("redmine", "dba", "alice")]
    assert [(d.helpdesk, d.project) for d in destinations(
        ticket(priority=Priority.P3, labels={"team": "web"}), routes)] == [("redmine", "ops")]


def test_operator_actions_reach_the_helpdesk_on_every_store(world) -> None:
    """Issue 7: on PostgreSQL these answered 500 ("could not determine data type")."""
    from fastapi.testclient import TestClient

    from patrol.collector.ingest.api import create_app

    engine, desk, _ = world
    client = TestClient(create_app(engine, ["agent-token"], ["operator-token"], 65536))
    operator = {"Authorization": "Bearer operator-token"}
    engine.ingest([breach()])
    number = engine.store.list_tickets()[0].number
    drain(engine)
    engine.ingest([breach(event_id="s2" * 8, severity="warning", status="WARNING")])
    for action, body in (("comment", {"text": "journal is 4 GiB"}), ("acknowledge", {}),
                         ("resolve", {"force": True, "text": "won't fix"})):
        response = client.post(f"/api/v1/tickets/{number}/{action}", json=body,
                               headers=operator)
        assert response.status_code == 200, response.text
    drain(engine)
    assert [c[0] for c in desk.calls] == ["find", "open", "priority", "comment", "comment",
                                          "comment", "resolve"]
    assert desk.tickets["1"]["state"] == "closed" and desk.tickets["1"]["priority"] == "P3"
    assert desk.tickets["1"]["notes"][1:] == [
        "operator in Patrol: journal is 4 GiB", "operator in Patrol: acknowledged by operator",
        "operator in Patrol: won't fix (forced while the check reports WARNING)"]
    detail = client.get(f"/api/v1/tickets/{number}", headers=operator).json()
    assert {row["state"] for row in detail["dispatch"]} == {"done"}
    assert engine.dispatcher.sync_once() == 0  # the two-way pass works on both stores


def test_a_claim_takes_only_what_the_workers_can_start(world) -> None:
    engine, desk, now = world
    engine.ingest([breach(event_id=f"{i:016d}", dedup_key=f"h{i}/disk", source=f"h{i}")
                   for i in range(6)])
    other = replica(engine, desk, now)
    claimed = engine.dispatcher.claim()
    assert len(claimed) == 2  # the helpdesk's limit; the other four stay unclaimed
    theirs = other.claim()  # so another replica can start them at once
    assert len(theirs) == 2 and not {r["id"] for r in claimed} & {r["id"] for r in theirs}
    other.close()


def test_a_call_longer_than_the_lease_is_renewed_and_never_sent_twice(world) -> None:
    engine, desk, now = world
    engine.ingest([breach()])
    release = threading.Event()
    desk.after_open = lambda: release.wait(30)
    first = engine.dispatcher
    other = replica(engine, desk, now)  # (on SQLite, starting one frees leases: start first)
    delivering = threading.Thread(target=lambda: setattr(delivering, "result",
                                                         first.run_once()))
    delivering.start()
    try:
        wait_for(lambda: desk.tickets)
        for _ in range(4):  # four lease lengths go by while the call is in flight
            now[0] += LEASE * 0.6
            assert first.leases.renew() == []
            assert other.run_once() == {}
    finally:
        release.set()
        delivering.join(30)
        other.close()
    assert delivering.result == {"delivered": 1}
    assert [c[0] for c in desk.calls] == ["find", "open"]
    assert first.lease_counters == {} and other.lease_counters == {}


def test_a_stalled_replicas_row_is_taken_over_and_its_late_outcome_refused(world) -> None:
    engine, desk, now = world
    engine.ingest([breach()])
    ticket = engine.store.list_tickets()[0]
    release = threading.Event()
    desk.after_open = lambda: release.wait(30)
    stalled = engine.dispatcher
    stalled.leases.stop()  # its renewals no longer happen (a long pause, a lost database)
    survivor = replica(engine, desk, now)
    delivering = threading.Thread(target=lambda: setattr(delivering, "result",
                                                         stalled.run_once()))
    delivering.start()
    try:
        wait_for(lambda: desk.tickets)
        now[0] += LEASE
        desk.after_open = None
        assert survivor.run_once() == {"delivered": 1}  # find() adopts the ticket
    finally:
        release.set()
        delivering.join(30)
    assert delivering.result == {"lost": 1}
    assert [c[0] for c in desk.calls] == ["find", "open", "find"] and len(desk.tickets) == 1
    assert engine.store.link(ticket.id, "desk")["external_id"] == "1"
    assert engine.store.dispatch_rows(ticket.id)[0]["state"] == "done"
    assert stalled.lease_counters == {("desk", "lost"): 1}
    assert survivor.lease_counters == {("desk", "taken_over"): 1}
    assert stalled.counters == {} and survivor.counters == {("desk", "delivered"): 1}
    from prometheus_client import generate_latest

    from patrol.collector.metrics import build_registry

    engine.dispatcher = stalled
    text = generate_latest(build_registry(engine)).decode()
    assert 'patrol_collector_dispatch_lost_leases_total{helpdesk="desk"} 1.0' in text
    engine.dispatcher = survivor
    text = generate_latest(build_registry(engine)).decode()
    assert 'patrol_collector_dispatch_lease_takeovers_total{helpdesk="desk"} 1.0' in text
    survivor.close()


@pytest.mark.slow
def test_the_renewer_keeps_a_slow_call_leased_on_the_wall_clock(world) -> None:
    engine, desk, _ = world
    engine.ingest([breach()])
    desk.delay = 7.0  # more than two leases: renewed every second, so a lapse would
    # need the renewer held up for 2 s even on a busy machine
    first = Dispatcher(engine.store, SETTINGS, {"desk": desk}, {"desk": 2}, time.time,
                       lease=3.0)
    other = Dispatcher(engine.store, SETTINGS, {"desk": desk}, {"desk": 2}, time.time,
                       lease=3.0)
    delivering = threading.Thread(target=lambda: setattr(delivering, "result",
                                                         first.run_once()))
    try:
        delivering.start()
        wait_for(lambda: desk.calls)
        while delivering.is_alive():
            assert other.run_once() == {}
            time.sleep(0.05)
    finally:
        delivering.join(30)
        first.close()
        other.close()
    assert delivering.result == {"delivered": 1}
    assert [c[0] for c in desk.calls] == ["find", "open"]


def wait_for(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
    return found


def test_two_replicas_sync_passes_queue_one_reopen(world) -> None:
    engine, desk, now = world
    engine.ingest([breach()])
    drain(engine)
    desk.tickets["1"].update(state="closed")  # closed there while the check still fails
    other = replica(engine, desk, now)
    assert engine.dispatcher.sync_once() == 1
    assert other.sync_once() == 0
    other.close()
    assert [r["action"] for r in engine.store.dispatch_rows(state="pending")] == ["reopen"]
    drain(engine)
    assert desk.tickets["1"]["state"] == "open" and len(desk.tickets["1"]["notes"]) == 1
