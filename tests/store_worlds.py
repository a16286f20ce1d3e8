"""``any_world``: the same story on SQLite and on PostgreSQL, as ``CollectorService`` wires
the engine and its watchdog (the watchdog's health and lead reach ``/metrics``).

Use it by naming this module as a plugin in the test module::

    pytest_plugins = ["tests.store_worlds"]
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.collector_fixtures import World, store_for


@pytest.fixture(params=["sqlite", "postgres"])
def any_world(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[World]:
    store = store_for(request.param, request, tmp_path)
    try:
        world = World(store)
        world.engine.watchdog = world.watchdog
        yield world
    finally:
        store.close()
