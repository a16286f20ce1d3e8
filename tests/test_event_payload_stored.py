"""What the store keeps of each received event is the event itself, whichever way it
was written: the engine hands pydantic-core's JSON text to the store (no Python dict
re-encoded, collector/store/sql.py ``model_json``) and falls back to the cleaning
encoder when that text shows a NUL or anything else the cleaning rule changes. A
reader (the maintenance-end duty replays these payloads) must get the same value
on both stores, one event or a batch, and a batch resent later is recognised as
duplicates.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from patrol.contract.wire import Event
from tests.collector_fixtures import MINUTE, World, event, store_for


@pytest.fixture(params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[World]:
    store = store_for(request.param, request, tmp_path)
    try:
        yield World(store)
    finally:
        store.close()


def _stored(w: World) -> dict[str, dict[str, object]]:
    return {row["payload"]["event_id"]: row["payload"] for row in w.store.events_since(0)}


def test_stored_payloads_read_back_as_the_events_sent(world: World) -> None:
    w = world
    single = event("db-01", summary="Plattenplatz auf /var fast voll: 93 % (Größe 2 TiB)")
    batch = [event(f"web-{n}", summary=f"/var ist zu {90 + n} % voll — Ärger") for n in range(5)]
    with_nul = event("db-02", summary="plugin printed a\x00NUL")
    w.one(single)
    w.clock.advance(MINUTE)
    w.ingest(*batch, with_nul)

    stored = _stored(w)
    for sent in [single, *batch]:
        assert stored[sent.event_id] == sent.model_dump(mode="json")
        assert Event.model_validate(stored[sent.event_id]) == sent
    assert stored[with_nul.event_id]["summary"] == "plugin printed a\ufffdNUL"


def test_a_resent_batch_is_all_duplicates_and_stores_nothing_twice(world: World) -> None:
    w = world
    batch = [event(f"app-{n}") for n in range(300)]  # more than one INSERT statement
    first = w.ingest(*batch)
    again = w.ingest(*batch)

    assert [o.outcome for o in first] == ["opened"] * 300
    assert [o.outcome for o in again] == ["duplicate"] * 300
    assert [o.ticket for o in again] == [o.ticket for o in first]
    assert len(w.store.events_since(0)) == 300
