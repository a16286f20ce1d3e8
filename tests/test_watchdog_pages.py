"""The watchdog reads the open tickets a page at a time (collector/watchdog/timers.py,
``open_ticket_pages`` in collector/store/sql.py), so 100,000 open incidents are never in
memory at once. Paging must not change what a pass does: every open ticket on every
page is judged once, on both stores.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from patrol.collector.model import TicketStatus
from patrol.collector.watchdog import timers
from tests.collector_fixtures import MINUTE, World, event, store_for


@pytest.fixture(params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[World]:
    store = store_for(request.param, request, tmp_path)
    try:
        yield World(store)
    finally:
        store.close()


def test_pages_hold_every_open_ticket_once_light_and_in_id_order(world: World) -> None:
    w = world
    numbers = [o.ticket for o in w.ingest(*(event(f"db-{n}") for n in range(7)))]

    pages = list(w.store.open_ticket_pages(3))

    assert [len(page) for page in pages] == [3, 3, 1]
    listed = [t for page in pages for t in page]
    assert sorted(t.number for t in listed) == sorted(numbers)
    assert [t.id for t in listed] == sorted(t.id for t in listed)
    assert {t.number for t in listed} == {t.number for t in w.store.open_tickets(light=True)}
    assert all(t.body == "" and t.diagnostics == {} and t.measurements == [] for t in listed)


def test_a_pass_resolves_and_closes_tickets_on_every_page(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timers, "PAGE", 2)
    w = world
    numbers = [o.ticket for o in w.ingest(*(event(f"web-{n}") for n in range(5)))]
    w.clock.advance(MINUTE)
    w.ingest(*(event(f"web-{n}", status="OK") for n in range(5)))

    assert w.tick(60 * MINUTE)["timers"] == 5
    assert {w.ticket(n).status for n in numbers} == {TicketStatus.RESOLVED}
    w.tick(8 * 24 * 60 * MINUTE)
    assert {w.ticket(n).status for n in numbers} == {TicketStatus.CLOSED}
    assert list(w.store.open_ticket_pages(2)) == []


def watched(w: World) -> set[str]:
    """The numbers a pass at the world's time reads."""
    window = w.watchdog.watch_window(w.clock())
    return {t.number for page in w.store.watched_ticket_pages(window, 2) for t in page}


def test_a_pass_reads_only_tickets_with_something_due_and_still_acts_on_time(
        world: World) -> None:
    """At 100,000 open incidents a pass that read every ticket cost ~4 s of CPU: it now
    reads those whose timers or SLA levels can be due. A quiet ticket is left out until
    its respond-by is near, then escalated in that pass, left out again once the level
    is recorded, and read again when its resolve-by nears; a recovering one is read
    every pass until it resolves; a resolved one again when its close is due."""
    w = world
    quiet, recovering = (o.ticket for o in w.ingest(event("db-1"), event("db-2")))
    w.clock.advance(MINUTE)
    w.ingest(event("db-2", status="OK"))
    assert watched(w) == {recovering}

    ticket = w.ticket(quiet)
    sla = w.engine.policy.sla
    near = ticket.respond_by - (1 - sla.near_ratio) * sla.respond[ticket.priority]
    w.clock.advance(near - w.clock() - 1)
    assert quiet not in watched(w)
    assert w.tick(2)["escalations"] >= 1  # the pass that finds it near escalates it
    assert w.ticket(quiet).escalation == 1 and w.ticket(recovering).status is \
        TicketStatus.RESOLVED
    assert watched(w) == set()  # level recorded; the resolved one closes in a day
    w.clock.advance(ticket.respond_by - w.clock())
    assert watched(w) == {quiet}  # its respond-by passed: level 2 is due
    w.tick()
    assert w.ticket(quiet).escalation == 2 and watched(w) == set()
    resolve_near = ticket.resolve_by - (1 - sla.near_ratio) * sla.resolve[ticket.priority]
    w.clock.advance(resolve_near - w.clock())
    assert watched(w) == {quiet}
    w.clock.advance(w.engine.policy.lifecycle.close_after)
    assert recovering in watched(w)
