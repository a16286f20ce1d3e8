"""The collector's HTTP API over the real engine and a real store, with a fake clock.

Every test runs on SQLite and on PostgreSQL (the ``api`` fixture is parametrised):
FastAPI's TestClient in process; the concurrency test serves the app with uvicorn on
127.0.0.1 and posts from a pool of ``requests`` clients.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient

from patrol.collector.ingest.alertmanager import example_payload
from patrol.collector.ingest.api import create_app
from patrol.collector.model import TicketStatus
from patrol.contract.timestamps import iso_z
from tests.collector_fixtures import (
    AGENT_TOKEN,
    DAY,
    MINUTE,
    OPERATOR_TOKEN,
    T0,
    World,
    event,
    event_json,
    heartbeat,
    snapshot,
    store_for,
)
from tests.conftest import free_port

AGENT = {"Authorization": f"Bearer {AGENT_TOKEN}"}
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
MAX_BODY = 64 * 1024


class Api:
    def __init__(self, world: World) -> None:
        self.world = world
        self.app = create_app(world.engine, [AGENT_TOKEN], [OPERATOR_TOKEN],
                              max_body_bytes=MAX_BODY)
        self.client = TestClient(self.app)

    def post_events(self, payload: Any, headers: dict[str, str] = AGENT) -> Any:
        return self.client.post("/api/v1/events", json=payload, headers=headers)

    def open(self, *events: Any) -> list[str]:
        response = self.post_events({"events": [event_json(e) for e in events]})
        assert response.status_code == 202, response.text
        return [r["ticket"] for r in response.json()["results"]]

    def action(self, number: str, action: str, **body: Any) -> Any:
        return self.client.post(f"/api/v1/tickets/{number}/{action}", json=body,
                                headers=OPERATOR)

    def get(self, number: str) -> dict[str, Any]:
        response = self.client.get(f"/api/v1/tickets/{number}", headers=OPERATOR)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[Api]:
    store = store_for(request.param, request, tmp_path)
    try:
        yield Api(World(store))
    finally:
        store.close()


# -- ingest ---------------------------------------------------------------------------


def test_single_event_and_batch_are_both_accepted(api: Api) -> None:
    single = api.post_events(event_json(event()))
    assert single.status_code == 202
    assert single.json() == {"results": [{"event_id": single.json()["results"][0]["event_id"],
                                          "outcome": "opened", "ticket": f"TS{DAY}001",
                                          "note": ""}]}
    repeat, other = event(), event("db-02")
    batch = api.post_events({"events": [event_json(repeat), event_json(other)]})
    assert batch.status_code == 202
    assert [(r["event_id"], r["outcome"], r["ticket"]) for r in batch.json()["results"]] == [
        (repeat.event_id, "repeated", f"TS{DAY}001"),
        (other.event_id, "opened", f"TS{DAY}002")]
    again = api.post_events(event_json(repeat))
    assert again.json()["results"][0]["outcome"] == "duplicate"
    ticket = api.get(f"TS{DAY}001")
    assert (ticket["status"], ticket["priority"], ticket["occurrences"]) == ("new", "P2", 2)
    assert ticket["respond_by"] == T0 + 30 * MINUTE
    assert [e["kind"] for e in ticket["timeline"]] == ["opened"]
    assert ticket["body"].startswith("## Problem\n")


def test_heartbeat_endpoint_reconciles(api: Api) -> None:
    beat = heartbeat("db-01", [snapshot("root-disk", "CRITICAL", since=T0, last_run=T0)])
    response = api.client.post("/api/v1/heartbeats", json=beat.model_dump(mode="json"),
                               headers=AGENT)
    assert response.status_code == 202
    body = response.json()
    assert (body["host"], body["checks"]) == ("db-01", 1)
    assert [(r["outcome"], r["ticket"]) for r in body["reconciled"]] == [
        ("opened", f"TS{DAY}001")]


@pytest.mark.parametrize(("mutate", "problem"), [
    (lambda e: e.update(severity="fatal"),
     "severity: Input should be 'critical', 'error', 'warning' or 'info'"),
    (lambda e: e.pop("summary"), "summary: Field required"),
    (lambda e: e.update(event_id="short"), "event_id: String should have at least 8"),
    (lambda e: e.update(colour="red"), "colour: Extra inputs are not permitted"),
], ids=["bad-severity", "missing-summary", "short-event-id", "unknown-field"])
@pytest.mark.parametrize("batched", [False, True], ids=["single", "batch"])
def test_malformed_event_is_422_naming_the_field(api: Api, mutate: Any, problem: str,
                                                 batched: bool) -> None:
    bad = event_json(event())
    mutate(bad)
    response = api.post_events({"events": [event_json(event()), bad]} if batched else bad)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid payload"
    [line] = response.json()["problems"]
    assert line.startswith(("events.1." if batched else "") + problem)
    assert api.world.store.list_tickets() == []  # a bad batch is refused as a whole


def test_malformed_heartbeat_is_422(api: Api) -> None:
    beat = heartbeat().model_dump(mode="json")
    beat["interval_seconds"] = 0
    response = api.client.post("/api/v1/heartbeats", json=beat, headers=AGENT)
    assert response.status_code == 422
    assert response.json()["problems"] == [
        "interval_seconds: Input should be greater than or equal to 0.1"]


# -- payloads PostgreSQL cannot store as they are: cleaned alike, never a 5xx ---------

FFFD = "\ufffd"


def _post_raw(api: Api, path: str, payload: Any, fast: bool = True) -> Any:
    """POST ``payload`` as Python's json writes it: NaN as ``NaN``, a lone surrogate
    as ``\\ud800`` and NUL as ``\\u0000``, as a plugin's output would arrive.
    ``fast=False`` sends a structured ``application/*+json`` media type instead."""
    media = "application/json" if fast else "application/vnd.patrol+json"
    return api.client.post(path, content=json.dumps(payload).encode(),
                           headers={**AGENT, "content-type": media})


@pytest.mark.parametrize("fast", [True, False], ids=["application-json", "vendor-json"])
@pytest.mark.parametrize("batched", [False, True], ids=["single", "batch"])
def test_nul_surrogate_and_nan_are_stored_cleaned_not_a_500(api: Api, batched: bool,
                                                            fast: bool) -> None:
    ev = event_json(event())  # the models refuse lone surrogates: dirtied after
    ev["summary"] = "check_load: CRITICAL\x00 load \ud800 high"
    ev["labels"] = {"tier": "gold", "team": "dba\x00"}
    ev["diagnostics"] = {"plugin_output": "line1\x00line2", "ratio": float("nan"),
                         "series": [1.5, float("inf")]}
    ev["thresholds"] = {"load1": {"critical": float("-inf")}}
    payload = {"events": [ev]} if batched else ev
    response = _post_raw(api, "/api/v1/events", payload, fast)
    assert response.status_code == 202, response.text
    [result] = response.json()["results"]
    assert result["outcome"] == "opened"
    listed = api.client.get("/api/v1/tickets", headers=OPERATOR).json()["tickets"]
    assert [(t["title"], t["labels"]) for t in listed] == [
        (f"check_load: CRITICAL{FFFD} load {FFFD} high", {"tier": "gold", "team": f"dba{FFFD}"})]
    ticket = api.world.store.get_ticket(result["ticket"])
    assert ticket is not None
    assert ticket.diagnostics["plugin_output"] == f"line1{FFFD}line2"
    assert (ticket.diagnostics["ratio"], ticket.diagnostics["series"]) == (None, [1.5, None])
    assert f"CRITICAL{FFFD} load" in ticket.body


@pytest.mark.parametrize("fast", [True, False], ids=["application-json", "vendor-json"])
def test_heartbeat_with_nul_and_nan_is_accepted_cleaned(api: Api, fast: bool) -> None:
    payload = heartbeat("db-01", [snapshot("load", "WARNING")]).model_dump(mode="json")
    payload["checks"][0]["summary"] = "load\x00 \udcff"
    payload["checks"][0]["interval_seconds"] = float("nan")
    response = _post_raw(api, "/api/v1/heartbeats", payload, fast)
    assert response.status_code == 202, response.text
    [state] = api.world.store.check_states("db-01")
    assert (state["summary"], state["interval"]) == (f"load{FFFD} {FFFD}", None)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), None], ids=str)
def test_a_measurement_that_is_no_number_is_422_naming_it(api: Api, value: Any) -> None:
    good, bad = event_json(event("db-01")), event_json(event("db-02"))
    bad["measurements"] = [{"name": "load1", "value": 1.0},
                           {"name": "load5", "value": value}]
    response = _post_raw(api, "/api/v1/events", {"events": [good, bad]})
    assert response.status_code == 422
    assert response.json()["problems"] == [
        "events.1.measurements.1.value: Input should be a finite number "
        "(null, NaN and Infinity are not)"]
    assert api.world.store.list_tickets() == []


def _nested(depth: int, leaf: Any) -> Any:
    for _ in range(depth):
        leaf = {"a": leaf}
    return leaf


@pytest.mark.parametrize("fast", [True, False], ids=["application-json", "vendor-json"])
@pytest.mark.parametrize("depth", [40, 500, 900, 3000])
@pytest.mark.parametrize("leaf", [1, float("nan")], ids=["number", "nan"])
def test_diagnostics_nested_too_deep_are_422_not_500(api: Api, fast: bool, depth: int,
                                                     leaf: Any) -> None:
    """Diagnostics nested deeper than the wire allows are refused with the reason, at
    any depth (past Python's recursion limit too), instead of a 500 that the agent
    would retry forever. The event after it goes through."""
    bad = event_json(event("db-01"))
    bad["diagnostics"] = {"deep": "DEEP"}
    # Written by hand: the stdlib encoder itself stops near 1000 levels.
    nested = '{"a": ' * depth + json.dumps(leaf) + "}" * depth
    body = json.dumps(bad).replace('"DEEP"', nested)
    media = "application/json" if fast else "application/vnd.patrol+json"
    response = api.client.post("/api/v1/events", content=body.encode(),
                               headers={**AGENT, "content-type": media})
    if depth < 1000:
        assert response.status_code == 422, response.text
        assert "32 levels" in json.dumps(response.json())
    else:  # past the JSON parser's own limit: refused as unparsable
        assert response.status_code == 400, response.text
        assert "pars" in response.json()["error"]
    after = _post_raw(api, "/api/v1/events", event_json(event("db-02")), fast)
    assert after.status_code == 202
    assert [t.host for t in api.world.store.list_tickets()] == ["db-02"]


def _break_events_table(api: Api, broken: bool) -> None:
    """Rename the events table away (or back): every ingest then fails in the store,
    as when the database is restarting or its disk is full."""
    names = ("events", "events_away") if broken else ("events_away", "events")
    with api.world.store.transaction() as tx:
        tx._run(f"ALTER TABLE {names[0]} RENAME TO {names[1]}")  # type: ignore[attr-defined]


@pytest.mark.parametrize("fast", [True, False], ids=["application-json", "vendor-json"])
def test_a_failing_store_is_503_with_retry_after_and_the_retry_lands(
        api: Api, fast: bool) -> None:
    payload = {"events": [event_json(event())]}
    _break_events_table(api, True)
    for path, body in (("/api/v1/events", payload), ("/api/v1/heartbeats",
                                                      heartbeat().model_dump(mode="json"))):
        if path.endswith("heartbeats"):
            _break_events_table(api, False)
            with api.world.store.transaction() as tx:
                tx._run("ALTER TABLE hosts RENAME TO hosts_away")  # type: ignore[attr-defined]
        response = _post_raw(api, path, body, fast)
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "5"
        assert response.json() == {"error": "the ticket store is unavailable; retry later"}
    with api.world.store.transaction() as tx:
        tx._run("ALTER TABLE hosts_away RENAME TO hosts")  # type: ignore[attr-defined]
    retried = _post_raw(api, "/api/v1/events", payload, fast)
    assert retried.status_code == 202
    assert retried.json()["results"][0]["outcome"] == "opened"


def _chunks(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), 4096):
        yield data[start:start + 4096]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_over_the_limit_is_413(api: Api, chunked: bool) -> None:
    big = json.dumps(event_json(event(diagnostics={"log": "x" * MAX_BODY}))).encode()
    headers = {**AGENT, "content-type": "application/json"}
    response = api.client.post("/api/v1/events", headers=headers,
                               content=_chunks(big) if chunked else big)
    assert response.status_code == 413
    assert "64-byte" not in response.json()["error"]
    assert f"over the {MAX_BODY}-byte limit" in response.json()["error"]
    assert api.world.store.list_tickets() == []
    small = json.dumps(event_json(event())).encode()
    response = api.client.post("/api/v1/events", headers=headers,
                               content=_chunks(small) if chunked else small)
    assert response.status_code == 202  # under the limit, chunked or not, goes through
    assert response.json()["results"][0]["outcome"] == "opened"


# -- authentication -------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "headers", "status"), [
    ("POST", "/api/v1/events", {}, 401),
    ("POST", "/api/v1/events", {"Authorization": "Bearer wrong"}, 401),
    ("POST", "/api/v1/events", {"Authorization": f"Basic {AGENT_TOKEN}"}, 401),
    ("POST", "/api/v1/events", OPERATOR, 403),
    ("POST", "/api/v1/heartbeats", {}, 401),
    ("POST", "/api/v1/heartbeats", OPERATOR, 403),
    ("POST", "/api/v1/alertmanager", OPERATOR, 403),
    ("GET", "/api/v1/tickets", {}, 401),
    ("GET", "/api/v1/tickets", AGENT, 403),
    ("GET", f"/api/v1/tickets/TS{DAY}001", AGENT, 403),
    ("POST", f"/api/v1/tickets/TS{DAY}001/resolve", AGENT, 403),
    ("POST", f"/api/v1/tickets/TS{DAY}001/delete", {}, 401),
], ids=["events-none", "events-unknown", "events-basic", "events-operator",
        "heartbeats-none", "heartbeats-operator", "alertmanager-operator", "tickets-none",
        "tickets-agent", "ticket-agent", "resolve-agent", "bad-action-none"])
def test_tokens_of_the_wrong_kind_are_refused(api: Api, method: str, path: str,
                                              headers: dict[str, str], status: int) -> None:
    [number] = api.open(event())
    # The body is not a valid payload for any of these: the token is judged first.
    response = api.client.request(method, path, headers=headers, json={"force": True})
    assert response.status_code == status
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json() == {"error": "a valid bearer token is required"}
    else:
        assert "token cannot do it" in response.json()["error"]
    ticket = api.world.ticket(number)
    assert (ticket.status, ticket.occurrences) == (TicketStatus.NEW, 1)  # nothing happened


# -- operator actions -----------------------------------------------------------------


def test_operator_acknowledges_comments_and_resolves(api: Api) -> None:
    [number] = api.open(event())
    api.world.clock.advance(4 * MINUTE)
    acked = api.action(number, "acknowledge", author="alice")
    assert acked.status_code == 200
    assert (acked.json()["status"], acked.json()["acknowledged_at"]) == (
        "in_progress", T0 + 4 * MINUTE)
    assert acked.json()["timeline"][-1] == {"at": T0 + 240, "kind": "acknowledged",
                                            "author": "alice", "text": "acknowledged by alice"}
    commented = api.action(number, "comment", author="alice", text="journal is 4 GiB")
    assert commented.json()["timeline"][-1]["text"] == "journal is 4 GiB"
    assert api.action(number, "comment", author="alice").status_code == 409

    for action in ("resolve", "close"):
        refused = api.action(number, action, author="alice")
        assert refused.status_code == 409
        assert refused.json()["error"] == (
            f"root-disk still reports CRITICAL on db-01; {action} it after the check "
            "recovers, or pass force=true to record a won't-fix decision")
    assert api.get(number)["status"] == "in_progress"

    forced = api.action(number, "resolve", author="alice", force=True,
                        text="won't fix: disk replaced on Friday")
    assert forced.status_code == 200
    body = forced.json()
    assert (body["status"], body["resolved_at"]) == ("resolved", T0 + 4 * MINUTE)
    assert body["resolution"] == ("won't fix: disk replaced on Friday "
                                  "(forced while the check reports CRITICAL)")
    assert [e["kind"] for e in body["timeline"]] == [
        "opened", "acknowledged", "comment", "resolved"]
    assert api.action(number, "acknowledge").status_code == 409  # no longer open


def test_a_recovered_ticket_resolves_without_force(api: Api) -> None:
    [number] = api.open(event())
    api.open(event(status="OK"))
    response = api.action(number, "close", author="bob")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["resolution"]) == (
        "closed", "closed by bob")


def test_unknown_ticket_is_404_and_unknown_action_422(api: Api) -> None:
    response = api.action("TS20991231001", "acknowledge")
    assert (response.status_code, response.json()) == (404, {"error": "no ticket TS20991231001"})
    response = api.client.get("/api/v1/tickets/TS20991231001", headers=OPERATOR)
    assert response.status_code == 404
    [number] = api.open(event())
    response = api.action(number, "delete")
    assert response.status_code == 422
    assert response.json()["problems"][0].startswith("path.action: Input should be")


def test_ticket_list_filters(api: Api) -> None:
    disk, http, crit = api.open(
        event("db-01"), event("web-01", "http", status="WARNING", check_type="http"),
        event("db-02", labels={"tier": "critical"}))
    # Processed in per-agent order (agent-db-01, agent-db-02, agent-web-01), answered in
    # the order posted.
    assert [disk, http, crit] == [f"TS{DAY}001", f"TS{DAY}003", f"TS{DAY}002"]
    api.action(disk, "acknowledge")

    def numbers(**params: Any) -> list[str]:
        response = api.client.get("/api/v1/tickets", params=params, headers=OPERATOR)
        assert response.status_code == 200, response.text
        return [t["number"] for t in response.json()["tickets"]]

    assert numbers() == [crit, disk, http]  # most urgent first
    assert numbers(status="new") == [crit, http]
    assert numbers(status=["in_progress", "resolved"]) == [disk]
    assert numbers(priority="P1") == [crit]
    assert numbers(priority=["P2", "P3"]) == [disk, http]
    assert numbers(host="web-01") == [http]
    assert numbers(check="root-disk") == [crit, disk]
    assert numbers(check="root-disk", status="new", host="db-02") == [crit]
    assert numbers(host="nowhere") == []
    assert numbers(limit=1, offset=1) == [disk]
    bad = api.client.get("/api/v1/tickets", params={"status": "open"}, headers=OPERATOR)
    assert bad.status_code == 422
    assert bad.json()["problems"][0].startswith("query.status.0: Input should be 'new'")


# -- documents: OpenAPI and metrics ---------------------------------------------------


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_openapi_lists_endpoints_and_wire_schemas(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    assert {"/api/v1/events", "/api/v1/heartbeats", "/api/v1/alertmanager",
            "/api/v1/tickets", "/api/v1/tickets/{number}",
            "/api/v1/tickets/{number}/{action}", "/healthz", "/metrics"} <= set(
        document["paths"])
    schemas = document["components"]["schemas"]
    assert {"Event", "EventBatch", "AgentRef", "MeasurementValue", "Heartbeat"} <= set(schemas)
    assert schemas["Event"]["properties"]["severity"]["enum"] == [
        "critical", "error", "warning", "info"]
    body = document["paths"]["/api/v1/events"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["oneOf"] == [
        {"$ref": "#/components/schemas/EventBatch"}, {"$ref": "#/components/schemas/Event"}]
    missing = {r for r in _refs(document)
               if r.rsplit("/", 1)[-1] not in schemas}
    assert missing == set()  # every reference resolves


def _ingest_cases() -> Iterator[tuple[str, dict[str, str], Any, int]]:
    """(path, headers, body, the status a user gets) for every documented answer."""
    good = {"/api/v1/events": {"events": [event_json(event("db-01"))]},
            "/api/v1/heartbeats": heartbeat().model_dump(mode="json")}
    json_type = {"content-type": "application/json"}
    for path, body in good.items():
        bad = copy.deepcopy(body)
        if path.endswith("events"):
            bad["events"][0]["severity"] = "dire"
        else:
            bad["interval_seconds"] = 0
        yield path, {**AGENT, **json_type}, body, 202
        yield path, json_type, body, 401
        yield path, {**OPERATOR, **json_type}, body, 403
        yield path, {**AGENT, **json_type}, {"padding": "x" * MAX_BODY}, 413
        yield path, {**AGENT, "content-type": "text/plain"}, body, 415
        yield path, {**AGENT, **json_type}, bad, 422
        # Nested past what the JSON parser itself takes: unparsable, 400.
        yield path, {**AGENT, **json_type}, b'{"a": ' * 3000 + b"1" + b"}" * 3000, 400


def test_the_openapi_document_says_what_the_ingest_routes_do(api: Api) -> None:
    """For each ingest route: every answer it gives is documented with that status, its
    error body matches the documented schema, and the documented request schema
    accepts what the route accepts and refuses what it refuses with 422."""
    from jsonschema import Draft202012Validator

    document = api.client.get("/openapi.json").json()

    def validator(schema: dict[str, Any]) -> Any:
        return Draft202012Validator({**schema, "components": document["components"]})

    seen: dict[str, set[int]] = {}
    for path, headers, body, expected in _ingest_cases():
        operation = document["paths"][path]["post"]
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = api.client.post(path, content=raw, headers=headers)
        assert response.status_code == expected, (path, expected, response.text)
        documented = operation["responses"][str(expected)]
        schema = documented["content"]["application/json"]["schema"]
        assert validator(schema).is_valid(response.json()), (path, response.json())
        request_schema = validator(
            operation["requestBody"]["content"]["application/json"]["schema"])
        if expected in (202, 422):
            assert request_schema.is_valid(body) is (expected == 202), (path, body)
        seen.setdefault(path, set()).add(expected)
    for path, statuses in seen.items():  # nothing documented that the test left out
        assert set(document["paths"][path]["post"]["responses"]) - {"503"} == {
            str(s) for s in statuses}
    assert api.world.store.host("db-01") is not None  # the 202s did their work


def test_ingest_routes_answer_behind_a_proxy_prefix(api: Api) -> None:
    """``patrol collector`` behind a reverse proxy at /patrol (uvicorn --root-path):
    the ingest routes are found below the prefix as every other route is."""
    client = TestClient(api.app, root_path="/patrol")
    response = client.post("/patrol/api/v1/events", headers=AGENT,
                           json={"events": [event_json(event("db-07"))]})
    assert response.status_code == 202, response.text
    assert response.json()["results"][0]["outcome"] == "opened"
    assert client.post("/patrol/api/v1/heartbeats", headers=OPERATOR,
                       json=heartbeat().model_dump(mode="json")).status_code == 403


def _beat(api: Api, checks: list[Any], *, last_run: float) -> Any:
    payload = heartbeat("db-01", checks, sent_at=last_run).model_dump(mode="json")
    for check in payload["checks"]:
        check["last_run"] = iso_z(last_run)
    response = api.client.post("/api/v1/heartbeats", json=payload, headers=AGENT)
    assert response.status_code == 202, response.text
    return response.json()


def test_heartbeats_that_say_nothing_new_still_keep_the_host_alive(api: Api) -> None:
    """Unchanged heartbeats are answered from memory and their times written in groups
    (collector/ingest/heartbeats.py): the watchdog still sees the host and its checks alive,
    a host it marked unreachable is marked back by its next heartbeat, and a change
    is reconciled at once."""
    w = api.world
    checks = [snapshot("load"), snapshot("root-disk")]
    _beat(api, checks, last_run=T0)
    for minute in range(1, 11):  # ten minutes of unchanged heartbeats
        w.clock.advance(MINUTE)
        assert _beat(api, checks, last_run=T0 + minute * MINUTE)["reconciled"] == []
        counts = w.tick()
        assert (counts["unreachable"], counts["stale"]) == (0, 0)
    assert w.store.host("db-01")["last_heartbeat"] == T0 + 10 * MINUTE
    assert {s["last_run"] for s in w.store.check_states("db-01")} == {T0 + 10 * MINUTE}
    assert w.store.list_tickets() == []

    w.clock.advance(10 * MINUTE)  # silent: the watchdog opens "host unreachable"
    assert w.tick()["unreachable"] == 1
    assert w.store.host("db-01")["reachable"] is False
    _beat(api, checks, last_run=T0 + 20 * MINUTE)  # the same state as before
    assert w.store.host("db-01")["reachable"] is True

    w.clock.advance(MINUTE)
    changed = [snapshot("load", "CRITICAL"), snapshot("root-disk")]
    [reconciled] = _beat(api, changed, last_run=T0 + 21 * MINUTE)["reconciled"]
    assert reconciled["outcome"] == "opened"


def test_metrics_count_events_tickets_and_hosts(api: Api) -> None:
    first = event()
    api.open(first, event("db-02", labels={"tier": "critical"}))
    api.post_events(event_json(first))
    api.client.post("/api/v1/heartbeats", json=heartbeat().model_dump(mode="json"),
                    headers=AGENT)
    response = api.client.get("/metrics")  # open, like /healthz
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = set(response.text.splitlines())
    assert {'patrol_collector_events_total{result="accepted"} 2.0',
            'patrol_collector_events_total{result="duplicate"} 1.0',
            "patrol_collector_heartbeats_total 1.0",
            'patrol_collector_ticket_transitions_total{transition="opened"} 2.0',
            'patrol_collector_open_tickets{priority="P1"} 1.0',
            'patrol_collector_open_tickets{priority="P2"} 1.0',
            "patrol_collector_hosts 1.0",
            "patrol_collector_unreachable_hosts 0.0"} <= lines
    assert api.client.get("/healthz").json() == {"status": "ok", "open_tickets": 2}


# -- Alertmanager ---------------------------------------------------------------------


def test_alertmanager_webhook_opens_deduplicates_and_recovers(api: Api) -> None:
    payload = example_payload()
    opened = api.client.post("/api/v1/alertmanager", json=payload, headers=AGENT)
    assert opened.status_code == 202
    [result] = opened.json()["results"]
    assert (result["outcome"], result["ticket"]) == ("opened", f"TS{DAY}001")
    ticket = api.get(result["ticket"])
    assert (ticket["host"], ticket["check"], ticket["type"], ticket["title"]) == (
        "web-02", "NodeFilesystemAlmostFull", "prometheus", "/var on web-02 is 97% full")
    assert (ticket["severity"], ticket["priority"]) == ("critical", "P2")
    assert ticket["diagnostics"]["alertmanager"]["labels"]["mountpoint"] == "/var"

    again = api.client.post("/api/v1/alertmanager", json=payload, headers=AGENT)
    assert [(r["outcome"], r["ticket"]) for r in again.json()["results"]] == [
        ("duplicate", f"TS{DAY}001")]

    resolved = copy.deepcopy(payload)
    resolved["status"] = resolved["alerts"][0]["status"] = "resolved"
    resolved["alerts"][0]["endsAt"] = "2026-11-22T04:30:00Z"
    done = api.client.post("/api/v1/alertmanager", json=resolved, headers=AGENT)
    assert [(r["outcome"], r["ticket"]) for r in done.json()["results"]] == [
        ("recovering", f"TS{DAY}001")]
    assert api.get(f"TS{DAY}001")["recovered_at"] == T0


# -- 10. concurrency through real HTTP ------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_concurrent_http_repeats_make_one_ticket(request: pytest.FixtureRequest,
                                                 tmp_path: object, backend: str) -> None:
    import uvicorn

    store = store_for(backend, request, tmp_path)
    world = World(store)
    app = create_app(world.engine, [AGENT_TOKEN], [OPERATOR_TOKEN])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        url = f"http://127.0.0.1:{port}/api/v1/events"
        first = requests.post(url, json=event_json(event()), headers=AGENT, timeout=10)
        assert first.json()["results"][0]["outcome"] == "opened"
        local = threading.local()

        def post(payload: dict[str, Any]) -> tuple[int, str]:
            session = getattr(local, "session", None) or requests.Session()
            local.session = session
            response = session.post(url, json=payload, headers=AGENT, timeout=60)
            return response.status_code, response.json()["results"][0]["outcome"]

        payloads = [event_json(event()) for _ in range(100)]
        with ThreadPoolExecutor(100) as pool:
            results = list(pool.map(post, payloads))
        assert results == [(202, "repeated")] * 100
        [ticket] = store.list_tickets()
        assert ticket.occurrences == 101
        assert [e.kind for e in store.timeline(ticket.id)] == ["opened"]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        store.close()
