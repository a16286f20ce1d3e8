"""Timer decisions, whole lifecycles with flapping, and liveness (heartbeats, stale checks)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from patrol.collector.model import Priority, Ticket, TicketStatus
from patrol.collector.policy.correlate import decide
from patrol.collector.policy.lifecycle import (
    Action,
    CancelRecovery,
    ChangeSeverity,
    Close,
    FlapAnnotate,
    FlapCleared,
    MarkRecovering,
    OpenTicket,
    Reopen,
    Repeat,
    Resolve,
    StateChanges,
    heartbeat_lost,
    stale_checks,
    tick,
)
from patrol.collector.policy.settings import PolicyConfig
from patrol.contract.wire import AgentRef, Event

T0 = 1698400800.0  # 2023-10-27T10:00:00Z
NOW = T0 + 10000.0
CONFIG = PolicyConfig()


def _ticket(**changes: Any) -> Ticket:
    fields: dict[str, Any] = dict(
        dedup_key="web-01/nginx", title="nginx.service is failed on web-01", host="web-01",
        check="nginx", check_type="systemd", severity="critical", priority=Priority.P2,
        status=TicketStatus.NEW, category="software", opened_at=T0, first_seen=T0,
        last_seen=T0, respond_by=T0 + 1800, resolve_by=T0 + 86400, id=7)
    fields.update(changes)
    return Ticket(**fields)


IN_WINDOW = [NOW - 1500, NOW - 1000, NOW - 700, NOW - 400]
TICKS = [
    ("open-not-recovering", {}, []),
    ("recovering-not-long-enough", {"recovered_at": NOW - 299}, []),
    ("verified-after-verify-for", {"recovered_at": NOW - 300},
     [Resolve(7, NOW, "verified: the check stayed OK for 5m")]),
    ("pending-ticket-verified-too", {"recovered_at": NOW - 360, "status": TicketStatus.PENDING},
     [Resolve(7, NOW, "verified: the check stayed OK for 6m")]),
    ("flapping-doubles-verification",
     {"recovered_at": NOW - 400, "flapping": True, "state_changes": IN_WINDOW}, []),
    ("flapping-verified-after-double",
     {"recovered_at": NOW - 600, "flapping": True, "state_changes": IN_WINDOW},
     [Resolve(7, NOW, "verified: the check stayed OK for 10m")]),
    ("flapping-clears-when-changes-age-out",
     {"recovered_at": NOW - 400, "flapping": True, "state_changes": [NOW - 2000, NOW - 400]},
     [FlapCleared(7)]),
    ("resolved-not-yet-closed",
     {"status": TicketStatus.RESOLVED, "resolved_at": NOW - 86399}, []),
    ("closed-after-close-after", {"status": TicketStatus.RESOLVED, "resolved_at": NOW - 86400},
     [Close(7, NOW, "no recurrence for 24h after resolve")]),
    ("closed-stays-closed", {"status": TicketStatus.CLOSED, "resolved_at": NOW - 90000,
                             "closed_at": NOW - 3000}, []),
]


@pytest.mark.parametrize(("changes", "expected"), [t[1:] for t in TICKS],
                         ids=[t[0] for t in TICKS])
def test_tick(changes: dict[str, Any], expected: list[Action]) -> None:
    assert tick(_ticket(**changes), NOW, CONFIG) == expected


class Engine:
    """The smallest engine that applies actions, to test whole lifecycles."""

    def __init__(self) -> None:
        self.tickets: list[Ticket] = []
        self.notes: list[str] = []

    def active(self) -> Ticket | None:
        return next((t for t in self.tickets if t.active), None)

    def event(self, action: str, at: float) -> None:
        status = "CRITICAL" if action == "trigger" else "OK"
        event = Event(event_id=f"evt-{at:012.0f}", dedup_key="web-01/nginx", action=action,
                      severity="critical" if action == "trigger" else "info", status=status,
                      summary="nginx.service is failed on web-01", source="web-01",
                      check="nginx", type="systemd", labels={"tier": "standard"},
                      observed_at=datetime.fromtimestamp(at, UTC),
                      agent=AgentRef(id="web-01", version="0.1.0"), sequence=int(at))
        latest = self.tickets[-1] if self.tickets else None
        self.apply(decide(event, self.active(), latest, at, CONFIG), at)

    def tick(self, at: float) -> None:
        for ticket in list(self.tickets):
            self.apply(tick(ticket, at, CONFIG), at)

    def apply(self, actions: list[Action], at: float) -> None:
        for action in actions:
            self.notes.append(f"{at - T0:.0f} {type(action).__name__}")
            if isinstance(action, OpenTicket):
                self.tickets.append(dataclasses.replace(action.ticket, id=len(self.tickets) + 1))
                continue
            ticket = next(t for t in self.tickets if t.id == getattr(action, "ticket_id", None))
            if isinstance(action, MarkRecovering):
                ticket.recovered_at = action.at
            elif isinstance(action, CancelRecovery):
                ticket.recovered_at = None
            elif isinstance(action, StateChanges):
                ticket.state_changes, ticket.flapping = list(action.changes), action.flapping
            elif isinstance(action, FlapCleared):
                ticket.flapping = False
            elif isinstance(action, Resolve):
                ticket.status, ticket.resolved_at = TicketStatus.RESOLVED, action.at
                ticket.recovered_at = None
            elif isinstance(action, Close):
                ticket.status, ticket.closed_at = TicketStatus.CLOSED, action.at
            elif isinstance(action, Reopen):
                ticket.status, ticket.resolved_at = TicketStatus.IN_PROGRESS, None
            elif not isinstance(action, Repeat | ChangeSeverity | FlapAnnotate):
                raise AssertionError(action)


def test_verified_recovery_resolves_then_closes_and_a_late_breach_links_the_old_ticket() -> None:
    engine = Engine()
    engine.event("trigger", T0)
    engine.event("resolve", T0 + 120)
    engine.tick(T0 + 419)
    assert engine.tickets[0].status is TicketStatus.NEW
    engine.tick(T0 + 420)
    assert (engine.tickets[0].status, engine.tickets[0].resolved_at) == (
        TicketStatus.RESOLVED, T0 + 420)
    engine.tick(T0 + 420 + 86400)
    assert engine.tickets[0].status is TicketStatus.CLOSED
    engine.event("trigger", T0 + 420 + 86401)
    assert [(t.id, t.status, t.previous_id) for t in engine.tickets] == [
        (1, TicketStatus.CLOSED, None), (2, TicketStatus.NEW, 1)]


def test_breach_within_reopen_window_reopens_the_same_ticket() -> None:
    engine = Engine()
    engine.event("trigger", T0)
    engine.event("resolve", T0 + 60)
    engine.tick(T0 + 360)
    engine.event("trigger", T0 + 7200)
    assert [(t.id, t.status) for t in engine.tickets] == [(1, TicketStatus.IN_PROGRESS)]
    assert engine.notes[-2:] == ["7200 Reopen", "7200 StateChanges"]


def test_flapping_check_keeps_one_ticket_open_until_it_stays_ok_twice_as_long() -> None:
    engine = Engine()
    engine.event("trigger", T0)
    for bounce in range(4):  # OK for 6 min, bad for 2 min, four times, ticking every minute
        start = T0 + 60 + bounce * 480
        engine.event("resolve", start)
        for minute in range(1, 7):
            engine.tick(start + 60 * minute)
        engine.event("trigger", start + 360)
        engine.tick(start + 420)
    last_ok = T0 + 60 + 4 * 480
    engine.event("resolve", last_ok)
    assert [(t.id, t.status, t.flapping) for t in engine.tickets] == [
        (1, TicketStatus.IN_PROGRESS, True)]
    # Until the fourth state change (at 900 s) each 6-minute OK spell passes verification
    # and the next breach reopens the same ticket; from then on nothing resolves.
    churn = [n for n in engine.notes if n.split()[1] in ("Resolve", "Reopen", "FlapAnnotate")]
    assert churn == ["360 Resolve", "420 Reopen", "840 Resolve", "900 Reopen",
                     "900 FlapAnnotate"]
    engine.tick(last_ok + 300)  # plain verify_for is not enough while flapping
    assert engine.tickets[0].status is TicketStatus.IN_PROGRESS
    engine.tick(last_ok + 600)
    assert (engine.tickets[0].status, engine.tickets[0].resolved_at) == (
        TicketStatus.RESOLVED, last_ok + 600)


HOSTS = [
    {"host": "db-01", "last_heartbeat": NOW - 89, "interval_seconds": 30},
    {"host": "db-02", "last_heartbeat": NOW - 91, "interval_seconds": 30},
    {"host": "web-01", "last_heartbeat": datetime.fromtimestamp(NOW - 500, UTC),
     "interval_seconds": 60, "heartbeat_timeout": 600},
    {"host": "web-02", "last_heartbeat": NOW - 601, "interval_seconds": 60,
     "heartbeat_timeout": 600},
    {"host": "app-01", "last_heartbeat": NOW - 181, "interval_seconds": 60},
    {"host": "new-01", "last_heartbeat": None, "interval_seconds": 60},
]


def test_heartbeat_lost_after_factor_or_explicit_timeout() -> None:
    assert heartbeat_lost(HOSTS, NOW) == ["app-01", "db-02", "web-02"]
    assert heartbeat_lost(HOSTS, NOW, timeout_default_factor=4) == ["web-02"]


STATES = [
    {"host": "db-01", "check": "disk", "last_run": NOW - 179, "interval_seconds": 60},
    {"host": "db-01", "check": "postgres", "last_run": NOW - 181, "interval_seconds": 60},
    {"host": "db-02", "check": "cpu", "last_run": datetime.fromtimestamp(NOW - 1000, UTC),
     "interval_seconds": 300},
    {"host": "db-02", "check": "backup", "last_run": NOW - 4000, "interval_seconds": 1200},
    {"host": "web-01", "check": "http", "last_run": None, "interval_seconds": 60},
    {"host": "web-01", "check": "plugin", "last_run": NOW - 9999, "interval_seconds": None},
]


def test_stale_checks_are_older_than_three_intervals() -> None:
    assert stale_checks(STATES, NOW) == [("db-01", "postgres"), ("db-02", "backup"),
                                         ("db-02", "cpu")]
    assert stale_checks(STATES, NOW, factor=3.2) == [("db-02", "backup"), ("db-02", "cpu")]


DAILY = {"host": "vm", "check": "daily-capacity-inspection", "last_run": NOW - 6 * 3600,
         "interval_seconds": None, "timeout": 10, "heartbeat": 30}
SCHEDULED = [
    ("between-runs-never-stale", {"next_due": NOW + 18 * 3600}, False),
    ("just-due-not-yet-reported", {"next_due": NOW - 60}, False),
    ("missed-its-run", {"next_due": NOW - 91}, True),  # grace 60 s + a 30 s heartbeat
    ("slow-check-gets-three-timeouts", {"next_due": NOW - 600, "timeout": 200}, False),
    ("slow-check-past-three-timeouts", {"next_due": NOW - 631, "timeout": 200}, True),
    ("next-due-wins-over-an-old-interval", {"next_due": NOW + 60, "interval_seconds": 30},
     False),
]


@pytest.mark.parametrize(("changes", "stale"), [c[1:] for c in SCHEDULED],
                         ids=[c[0] for c in SCHEDULED])
def test_a_check_with_a_next_run_is_stale_only_once_it_missed_it(
        changes: dict[str, Any], stale: bool) -> None:
    expected = [("vm", "daily-capacity-inspection")] if stale else []
    assert stale_checks([{**DAILY, **changes}], NOW, grace=60, timeout_factor=3) == expected
