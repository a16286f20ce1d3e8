"""A request's batch is one unit of work (collector/engine.py ``Engine.ingest``): what a
user sees must not differ from the same events sent one by one, on both stores --
numbers, bodies with past occurrences, duplicates, repeats -- and concurrent batches
(PostgreSQL reserves their ticket numbers ahead) must never share or skip a number.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from patrol.collector.model import TicketStatus
from patrol.contract.wire import Event
from tests.collector_fixtures import DAY, MINUTE, World, disk_evidence, event, store_for


@pytest.fixture(params=["sqlite", "postgres"])
def any_world(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[World]:
    store = store_for(request.param, request, tmp_path)
    try:
        yield World(store)
    finally:
        store.close()


def _numbers(w: World) -> list[str]:
    return sorted(t.number for t in w.store.list_tickets(limit=10_000))


def _serials_by_day(numbers: list[str]) -> dict[str, list[int]]:
    days: dict[str, list[int]] = {}
    for number in numbers:
        days.setdefault(number[2:10], []).append(int(number[10:]))
    return {day: sorted(serials) for day, serials in days.items()}


def test_a_batch_reads_as_the_same_events_sent_one_by_one(any_world: World) -> None:
    w = any_world
    # db-01 had this problem before (resolved, then closed): its new ticket's body
    # must still list that past occurrence although the batch read it only once.
    past = w.one(event("db-01")).ticket
    w.clock.advance(MINUTE)
    w.one(event("db-01", status="OK"))
    w.tick(60 * MINUTE)
    w.tick(8 * 24 * 60 * MINUTE)
    assert w.ticket(past).status is TicketStatus.CLOSED
    repeated = w.one(event("db-02")).ticket
    resent = event("db-03")
    w.one(resent)

    w.clock.advance(MINUTE)
    batch = [event("db-01", **disk_evidence()), event("db-02"), resent,
             *(event(f"web-{n}") for n in range(4))]
    outcomes = w.ingest(*batch)

    assert [o.outcome for o in outcomes] == [
        "opened", "repeated", "duplicate", "opened", "opened", "opened", "opened"]
    again = w.ticket(outcomes[0].ticket)
    assert again.number != past and again.previous_id == w.ticket(past).id
    assert past in again.body  # "Past occurrences" names the old ticket
    assert "| used_ratio | /var | 96.2% |" in again.body
    assert w.ticket(repeated).occurrences == 2
    for outcome in outcomes[3:]:
        assert w.kinds(outcome.ticket) == ["opened"]
        assert "Past occurrences" in w.ticket(outcome.ticket).body
    assert w.engine.counters["duplicates"] == 1
    # One serial per new ticket, none skipped: the old one's day has 001, today's
    # tickets are 001..007 (db-02, db-03, then db-01 and web-0..3 of the batch).
    assert sorted(_serials_by_day(_numbers(w)).values()) == [[1], list(range(1, 8))]


def test_concurrent_batches_get_distinct_numbers_and_lose_nothing(any_world: World) -> None:
    w = any_world
    batches = [[event(f"h{t}-{b}-{i}", agent=f"agent-{t}") for i in range(20)]
               for t in range(4) for b in range(5)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(w.engine.ingest, batches))
    assert Counter(o.outcome for r in results for o in r) == {"opened": 400}
    numbers = _numbers(w)
    assert len(set(numbers)) == 400
    assert all(re.fullmatch(rf"TS{DAY}\d{{3}}", n) for n in numbers)
    # The same batches again (an agent retrying after a lost answer): all duplicates.
    with ThreadPoolExecutor(4) as pool:
        again = list(pool.map(w.engine.ingest, batches))
    assert Counter(o.outcome for r in again for o in r) == {"duplicate": 400}
    assert len(_numbers(w)) == 400


def _too_deep(host: str) -> Event:
    nested: dict[str, object] = {}
    poison = event(host, diagnostics={"a": nested})
    for _ in range(5000):
        nested["a"] = nested = {}
    return poison


def test_a_batch_refused_for_one_event_neither_loses_nor_skips_numbers(
        any_world: World) -> None:
    """The batch as a whole fails on the poison event and is retried event by event:
    the events before it are in, the refusal names the problem, and the numbers the
    failed unit of work had reserved are used by the next tickets (no gap)."""
    w = any_world
    good = event("db-01", agent="a", sequence=1)
    poison = _too_deep("db-02")
    poison = poison.model_copy(update={"agent": good.agent, "sequence": 2})
    later = event("db-03", agent="a", sequence=3)
    with pytest.raises(Exception, match=r"(?i)recursion|depth"):
        w.ingest(good, poison, later)
    assert w.store.get_ticket(f"TS{DAY}001") is not None
    outcomes = w.ingest(later, event("db-04"))
    assert [o.outcome for o in outcomes] == ["opened", "opened"]
    assert _numbers(w) == [f"TS{DAY}{n:03d}" for n in range(1, 4)]
