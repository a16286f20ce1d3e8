"""Silence judged against each check's announced schedule, on SQLite and PostgreSQL: a
daily cron inspection is never stale between its runs, one that missed its run is,
and stale tickets carry the host's labels."""

from __future__ import annotations

from datetime import UTC, datetime

from patrol.collector.model import Priority, TicketStatus
from patrol.contract.wire import CheckSnapshot
from tests.collector_fixtures import HOUR, MINUTE, T0, World, at, heartbeat

pytest_plugins = ["tests.store_worlds"]  # any_world: SQLite and PostgreSQL

SEVEN = datetime(2023, 10, 27, 7, 0, tzinfo=UTC).timestamp()  # T0 is 09:00 UTC
LABELS = {"tier": "critical", "team": "ops", "role": "linux-server"}


def daily(last_run: float, next_due: float) -> CheckSnapshot:
    """The shipped daily-capacity-inspection as a new agent announces it."""
    return CheckSnapshot(check="daily-capacity-inspection", type="disk", status="OK",
                         summary="every disk below 75%", last_run=at(last_run),
                         schedule="0 7 * * *", timezone="UTC", next_due=at(next_due),
                         timeout_seconds=10.0)


def beat(w: World, check: CheckSnapshot, every: float = 5 * MINUTE) -> None:
    w.engine.heartbeat(heartbeat("vm", [check], sent_at=w.clock(), labels=LABELS,
                                 interval=every))


def test_daily_inspection_is_not_stale_between_runs_and_is_when_it_misses_one(
        any_world: World) -> None:
    w = any_world
    started = w.clock()  # the start-up run; the next is tomorrow 07:00
    tomorrow = SEVEN + 24 * HOUR
    while w.clock() < tomorrow:  # 22 hours of 5-minute heartbeats and passes
        beat(w, daily(started, tomorrow))
        assert w.tick(5 * MINUTE)["stale"] == 0, at(w.clock())
    assert w.store.list_tickets() == []

    # 07:00 came and went without a run: after the grace (a minute, plus the heartbeat
    # that would have carried the result), the silence is ticketed.
    w.clock.now[0] = tomorrow + 6 * MINUTE
    beat(w, daily(started, tomorrow))
    assert w.tick()["stale"] == 0
    beat(w, daily(started, tomorrow))
    assert w.tick(1)["stale"] == 1
    [ticket] = w.store.list_tickets()
    assert ticket.check == "stale:daily-capacity-inspection"
    assert ticket.title == ("daily-capacity-inspection on vm stopped reporting: last result "
                            "22h ago, its run due 6m ago did not report")
    assert ticket.labels == LABELS  # the host's labels, not none
    assert ticket.priority is Priority.P3  # warning on a critical-tier host
    assert "without a tier label" not in ticket.body

    ran = w.clock()  # it runs after all: the stale ticket starts recovering
    beat(w, daily(ran, tomorrow + 24 * HOUR))
    w.tick(10)
    assert w.ticket(ticket.number).recovered_at is not None
    beat(w, daily(ran, tomorrow + 24 * HOUR))
    w.tick(5 * MINUTE)
    assert w.ticket(ticket.number).status is TicketStatus.RESOLVED


def test_an_old_agent_without_a_schedule_is_still_judged_by_its_interval(
        any_world: World) -> None:
    w = any_world
    frozen = CheckSnapshot(check="cpu", type="cpu", status="OK", summary="fine",
                           last_run=at(T0), interval_seconds=60.0)
    for _ in range(7):
        beat(w, frozen, every=30)
        w.tick(30)
    [ticket] = w.store.list_tickets()
    assert ticket.check == "stale:cpu" and ticket.labels == LABELS
