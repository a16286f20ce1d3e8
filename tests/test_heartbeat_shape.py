"""A quiet heartbeat is recognised by its bytes' shape and only its times are validated
(collector/ingest/heartbeat_shape.py). What an agent sees must not change: its times
are still written, a bad time is still a 422 with the model's reason, a key moved or a
value of another type still gets the full path's answer -- on both stores.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from patrol.collector.ingest.heartbeat_shape import shape_of
from patrol.contract.timestamps import iso_z
from tests.collector_fixtures import MINUTE, T0, heartbeat, snapshot
from tests.test_collector_api import AGENT, Api, api  # the fixture

__all__ = ["api"]


def _body(last_run: float, sequence: int = 1, labels: dict[str, str] | None = None
          ) -> dict[str, Any]:
    """db-01's heartbeat: ``load`` ran at ``last_run``, ``root-disk`` 5 s before."""
    payload = heartbeat("db-01", [snapshot("load"), snapshot("root-disk")],
                        sent_at=last_run, labels=labels).model_dump(mode="json")
    payload["sequence"] = sequence
    for offset, check in enumerate(payload["checks"]):
        check["last_run"] = iso_z(last_run - 5 * offset)
    return payload


def _post(api: Api, payload: dict[str, Any]) -> Any:
    return api.client.post("/api/v1/heartbeats", headers={
        **AGENT, "content-type": "application/json"},
        content=json.dumps(payload, separators=(",", ":")).encode())


@pytest.mark.parametrize("labels", [None, {"last_run": "2026-01-01T00:00:00Z"}],
                         ids=["plain", "a label named like a time"])
def test_quiet_heartbeats_of_one_shape_are_answered_and_their_times_written(
        api: Api, labels: dict[str, str] | None) -> None:
    w = api.world
    for minute in range(4):
        w.clock.advance(MINUTE)
        answer = _post(api, _body(T0 + minute * MINUTE, sequence=minute, labels=labels))
        assert answer.status_code == 202, answer.text
        assert answer.json() == {"host": "db-01", "checks": 2, "reconciled": []}
    w.engine.flush_heartbeats()
    assert w.store.host("db-01")["last_heartbeat"] == w.clock()
    assert {s["check"]: s["last_run"] for s in w.store.check_states("db-01")} == {
        "load": T0 + 3 * MINUTE, "root-disk": T0 + 3 * MINUTE - 5}


def test_a_bad_time_in_a_known_shape_is_refused_as_before(api: Api) -> None:
    for minute in range(3):
        api.world.clock.advance(MINUTE)
        assert _post(api, _body(T0 + minute * MINUTE)).status_code == 202
    bad = _body(T0)
    bad["checks"][1]["last_run"] = "9999-01-01T00:00:00+00:00"
    answer = _post(api, bad)
    assert answer.status_code == 422
    assert answer.json()["problems"] == [
        "checks.1.last_run: Value error, timestamp must be between 2000-01-01 and "
        "2200-01-01 (UTC); check the sender's clock"]
    swapped = _body(T0)  # the same bytes but a time under a key the check has not
    text = json.dumps(swapped, separators=(",", ":")).replace('"last_run"', '"sent_at"', 2)
    answer = api.client.post("/api/v1/heartbeats", content=text.encode(),
                             headers={**AGENT, "content-type": "application/json"})
    assert answer.status_code == 422
    assert any("sent_at: Extra inputs are not permitted" in p
               for p in answer.json()["problems"])
    number = _body(T0)
    number["sequence"] = 2**63  # over the bound: the model's own refusal
    assert _post(api, number).status_code == 422


def test_shape_keeps_everything_but_the_times() -> None:
    one = json.dumps(_body(T0, 1), separators=(",", ":")).encode()
    other = json.dumps(_body(T0 + MINUTE, 2), separators=(",", ":")).encode()
    summary = one.replace(b"load is OK", b"load is ok")
    first, second, third = shape_of(one), shape_of(other), shape_of(summary)
    assert first is not None and second is not None and third is not None
    assert first.key == second.key != third.key
    assert shape_of(one.replace(b'"sequence":1', b'"sequence":"1"')) is None
