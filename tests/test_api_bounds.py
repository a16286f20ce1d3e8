"""Every client input has a bound the API models enforce and the OpenAPI document
publishes: values that used to reach a place that cannot hold them (a 64-bit column,
date arithmetic, a deadline computed from an interval) are a 422 naming the field,
never a 500 or a false ticket, on both stores (issue 9)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from patrol.collector.ingest.api import create_app
from tests.collector_fixtures import (
    AGENT_TOKEN,
    OPERATOR_TOKEN,
    World,
    event,
    event_json,
    heartbeat,
    store_for,
)
from tests.test_collector_api import AGENT, OPERATOR


@pytest.fixture(params=["sqlite", "postgres"])
def client(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[TestClient]:
    store = store_for(request.param, request, tmp_path)
    try:
        world = World(store)
        yield TestClient(create_app(world.engine, [AGENT_TOKEN], [OPERATOR_TOKEN]))
    finally:
        store.close()


@pytest.mark.parametrize("query", [
    "offset=9223372036854775808", "offset=1000001", "offset=-1", "limit=0",
    "limit=99999999999999999999", "host=" + "h" * 300,
])
def test_ticket_list_queries_out_of_bounds_are_422(client: TestClient, query: str) -> None:
    response = client.get(f"/api/v1/tickets?{query}", headers=OPERATOR)
    assert response.status_code == 422, response.text
    name = query.split("=")[0]
    assert response.json()["problems"][0].startswith(f"query.{name}: ")


def test_the_largest_allowed_offset_is_an_empty_page(client: TestClient) -> None:
    response = client.get("/api/v1/tickets?offset=1000000", headers=OPERATOR)
    assert response.status_code == 200
    assert response.json() == {"tickets": []}


@pytest.mark.parametrize("path", ["/api/v1/maintenance/9223372036854775808",
                                  "/api/v1/maintenance/0"])
def test_a_window_id_out_of_range_is_422(client: TestClient, path: str) -> None:
    response = client.delete(path, headers=OPERATOR)
    assert response.status_code == 422, response.text
    assert response.json()["problems"][0].startswith("path.window_id: ")


def test_an_unknown_ticket_number_of_any_length_is_a_4xx(client: TestClient) -> None:
    assert client.get("/api/v1/tickets/INC-0", headers=OPERATOR).status_code == 404
    assert client.get("/api/v1/tickets/" + "9" * 500, headers=OPERATOR).status_code == 422


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
                                  "1970-01-01T00:00:00Z"])
def test_an_event_from_an_impossible_time_is_422(client: TestClient, when: str) -> None:
    bad = {**event_json(event()), "observed_at": when}
    response = client.post("/api/v1/events", json=bad, headers=AGENT)
    assert response.status_code == 422, response.text
    assert response.json()["problems"] == [
        "observed_at: Value error, timestamp must be between 2000-01-01 and 2200-01-01 "
        "(UTC); check the sender's clock"]
    assert client.get("/api/v1/tickets", headers=OPERATOR).json() == {"tickets": []}


@pytest.mark.parametrize("interval", [1e-9, 0.0, 86401])
def test_a_heartbeat_interval_no_agent_keeps_is_422(client: TestClient,
                                                    interval: float) -> None:
    """1e-9 used to be accepted and made the host 'silent' at once: a false
    unreachable ticket."""
    beat = heartbeat().model_dump(mode="json")
    beat["interval_seconds"] = interval
    response = client.post("/api/v1/heartbeats", json=beat, headers=AGENT)
    assert response.status_code == 422, response.text
    assert response.json()["problems"][0].startswith("interval_seconds: ")


def test_a_sequence_past_64_bits_is_422_not_500(client: TestClient) -> None:
    bad = {**event_json(event()), "sequence": 2**63}
    response = client.post("/api/v1/events", json=bad, headers=AGENT)
    assert response.status_code == 422, response.text
    assert response.json()["problems"][0].startswith("sequence: ")


def test_too_many_labels_are_422(client: TestClient) -> None:
    bad = {**event_json(event()), "labels": {f"k{i}": "v" for i in range(65)}}
    response = client.post("/api/v1/events", json=bad, headers=AGENT)
    assert response.status_code == 422
    assert response.json()["problems"][0].startswith("labels: ")


def test_an_unparsable_body_is_400_in_the_error_shape(client: TestClient) -> None:
    response = client.post("/api/v1/heartbeats", content=b"{not json",
                           headers={**AGENT, "content-type": "application/json"})
    assert response.status_code in (400, 422)
    assert "error" in response.json()


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield path, method, operation


def test_the_openapi_document_lists_every_error_answer(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    for path, method, operation in _operations(document):
        codes = set(operation["responses"])
        if path.startswith("/api/"):
            assert {"401", "403", "422", "503"} <= codes, (path, method, codes)
        if method == "post":
            assert {"400", "413"} <= codes, (path, method, codes)
        assert operation["responses"].get("422", {"content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Error"}}}})["content"] == {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    offset = next(p for p in document["paths"]["/api/v1/tickets"]["get"]["parameters"]
                  if p["name"] == "offset")
    assert offset["schema"]["maximum"] == 1_000_000
    assert document["paths"]["/api/v1/heartbeats"]["post"]["responses"]["503"][
        "headers"]["Retry-After"]


def test_the_openapi_document_states_the_one_schedule_rule(client: TestClient) -> None:
    window = client.get("/openapi.json").json()["components"]["schemas"]["MaintenanceWindow"]
    assert "Exactly one schedule" in window["description"]
    assert {"required": ["weekly"]} in window["oneOf"]
    both = {"name": "x", "hosts": ["*"], "start": "2030-01-01T00:00:00Z",
            "end": "2030-01-02T00:00:00Z", "cron": "0 3 * * *", "duration": 60}
    response = client.post("/api/v1/maintenance", json=both, headers=OPERATOR)
    assert response.status_code == 422
    assert "exactly one schedule" in response.json()["problems"][0]


def test_an_alert_the_wire_cannot_carry_is_422_not_500(client: TestClient) -> None:
    """Found by the fuzzer (tests/test_fuzz_api.py): an alert from 1999, or with more
    labels than an event may carry, used to fail while being turned into events."""
    old = {"status": "firing", "alerts": [{"status": "firing",
                                           "startsAt": "1999-01-01T00:00:00Z"}]}
    response = client.post("/api/v1/alertmanager", json=old, headers=AGENT)
    assert response.status_code == 422, response.text
    assert response.json()["problems"][0].startswith("alerts.0.startsAt: ")
    crowded = {"status": "firing", "alerts": [{
        "status": "firing", "startsAt": "2030-01-01T00:00:00Z",
        "labels": {f"l{i}": "x" for i in range(100)}}]}
    response = client.post("/api/v1/alertmanager", json=crowded, headers=AGENT)
    assert response.status_code == 422, response.text
    assert response.json()["problems"][0].startswith("labels: ")
