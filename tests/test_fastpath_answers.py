"""The ingest fast path sends its answers straight through ASGI (no Starlette Response):
a client must still get the same statuses, bodies and headers -- the 401's
``WWW-Authenticate``, the 503's ``Retry-After`` -- as from any other route.
"""

from __future__ import annotations

import pytest

from tests.collector_fixtures import World, event, event_json, store_for
from tests.test_collector_api import AGENT, Api


def test_refusals_carry_their_headers(tmp_path: object, request: pytest.FixtureRequest
                                      ) -> None:
    api = Api(World(store_for("sqlite", request, tmp_path)))
    try:
        missing = api.client.post("/api/v1/events", json=event_json(event()))
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        assert missing.headers["content-type"] == "application/json"
        assert missing.json() == {"error": "a valid bearer token is required"}
        assert int(missing.headers["content-length"]) == len(missing.content)

        accepted = api.post_events(event_json(event()))
        assert accepted.status_code == 202
        assert accepted.json()["results"][0]["outcome"] == "opened"

        api.world.store.close()  # the store fails: retry later, not the client's fault
        failed = api.client.post("/api/v1/events", json=event_json(event("db-02")),
                                 headers=AGENT)
        assert failed.status_code == 503
        assert failed.headers["retry-after"] == "5"
        assert failed.json() == {"error": "the ticket store is unavailable; retry later"}
    finally:
        api.world.store.close()
