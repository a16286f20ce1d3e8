"""The ingest worker (collector/ingest/worker.py) runs event requests that wait together
as one unit of work. What a poster sees must not change: each request gets its own
outcomes, a poison event fails only its own request (422), and an answer comes only
once its events are committed -- on both stores.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from patrol.collector.engine import Engine
from patrol.collector.ingest.fastpath import IngestFastPath, Unprocessable
from patrol.collector.store import open_store
from patrol.contract.wire import Event
from tests.collector_fixtures import World, event, store_for
from tests.test_batch_ingest import _too_deep


@pytest.fixture(params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[World]:
    store = store_for(request.param, request, tmp_path)
    try:
        world = World(store)
        world.url = f"sqlite:///{tmp_path}/patrol.db" if request.param == "sqlite" \
            else request.getfixturevalue("pg_schema_url")  # type: ignore[attr-defined]
        yield world
    finally:
        store.close()


def _post_together(engine: Engine, requests: list[list[Event]],
                   on_answer: Any = None) -> list[Any]:
    """Submit ``requests`` to one fast path's worker while it is busy, so that all of
    them wait together and are drained at once; each one's outcomes or exception."""
    fastpath = IngestFastPath(None, engine)
    gate = threading.Event()

    async def one(events: list[Event]) -> Any:
        try:
            result = await fastpath.worker.submit(events, None, None)
        except Exception as exc:
            result = exc
        if on_answer is not None:
            on_answer(events, result)
        return result

    async def main() -> list[Any]:
        busy = asyncio.ensure_future(fastpath.worker.submit(None, lambda _: gate.wait(5), None))
        await asyncio.sleep(0.05)  # the worker now runs the busy job
        posts = [asyncio.ensure_future(one(events)) for events in requests]
        await asyncio.sleep(0.05)  # every post is queued behind it
        gate.set()
        await busy
        return list(await asyncio.gather(*posts))

    return asyncio.run(main())


def test_requests_waiting_together_each_get_their_own_outcomes(world: World) -> None:
    w = world
    w.one(event("db-09"))  # a ticket already open: its next event is a repeat
    requests = [[event("db-01")], [event("db-02"), event("db-03")], [event("db-09")],
                [event("db-04")]]
    fresh = open_store(w.url)  # type: ignore[attr-defined]  # its own connections
    seen: list[tuple[set[str], set[str]]] = []

    def on_answer(events: list[Event], result: Any) -> None:
        # Answered only after the COMMIT: another connection already sees the tickets.
        seen.append(({e.dedup_key for e in events},
                     {e.dedup_key for e in events
                      if fresh.list_tickets(host=e.source, check=e.check, limit=1)}))

    try:
        answers = _post_together(w.engine, requests, on_answer)
    finally:
        fresh.close()

    assert [[o.outcome for o in a] for a in answers] == [
        ["opened"], ["opened", "opened"], ["repeated"], ["opened"]]
    assert [[o.event_id for o in a] for a in answers] == [
        [e.event_id for e in r] for r in requests]
    numbers = [o.ticket for a in answers for o in a]
    assert len(set(numbers)) == len(numbers)
    assert len(seen) == len(requests)
    assert all(sent == visible for sent, visible in seen)


def test_a_poison_event_fails_only_its_own_request(world: World) -> None:
    w = world
    good, later = [event("db-01")], [event("db-03"), event("db-04")]
    poison = [event("db-02"), _too_deep("db-05")]

    answers = _post_together(w.engine, [good, poison, later])

    assert [o.outcome for o in answers[0]] == ["opened"]
    assert isinstance(answers[1], Unprocessable)
    assert "recursion" in str(answers[1]).lower() or "depth" in str(answers[1]).lower()
    assert [o.outcome for o in answers[2]] == ["opened", "opened"]
    hosts = sorted(t.host for t in w.store.list_tickets(limit=100))
    assert {"db-01", "db-03", "db-04"} <= set(hosts)
    assert "db-05" not in hosts


def test_requests_sharing_a_key_are_answered_in_order(world: World) -> None:
    """Two requests about the same key cannot share a unit: they run one after the
    other, in arrival order, the second seeing the first's ticket."""
    w = world
    first, second = event("db-01"), event("db-01", status="OK")

    answers = _post_together(w.engine, [[first], [second]])

    assert [o.outcome for a in answers for o in a] == ["opened", "recovering"]

