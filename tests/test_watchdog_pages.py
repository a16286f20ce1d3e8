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
