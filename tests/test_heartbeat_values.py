"""Heartbeats whose summaries and measured values changed but whose state did not
(collector/ingest/heartbeats.py): answered like the full path, kept in memory, written by
the group flush -- the Fleet summary and the rollups end up as the full path leaves
them, on both stores; a status change still takes the full path at once.
"""

from __future__ import annotations

import json
from typing import Any

from patrol.contract.wire import CheckSnapshot, Heartbeat, MeasurementValue
from tests.collector_fixtures import MINUTE, T0, heartbeat, snapshot
from tests.test_collector_api import AGENT, OPERATOR, Api, api  # the fixture

__all__ = ["api"]

HALF = MINUTE / 2


def _check(name: str, status: str, busy: float, last_run: float) -> CheckSnapshot:
    """A cpu-like check whose summary and value change at every run."""
    return snapshot(name, status, check_type="cpu", summary=f"CPU {busy:.0f}% busy",
                    last_run=last_run).model_copy(update={"measurements": [
                        MeasurementValue(name="busy_ratio", value=busy / 100),
                        MeasurementValue(name="steal_ratio", item="cpu0", value=busy / 1000)]})


def _payload(host: str, at: float, busy: float, *, load_status: str = "OK",
             disk_ran: float | None = None) -> dict[str, Any]:
    """``host`` at ``at``: ``load`` ran at the last even minute (so four heartbeats in a
    row carry the same run), ``disk`` at ``disk_ran`` with a fixed value (a new run
    whose body can be that of the previous one but for its times: the shape path)."""
    ran = at - at % (2 * MINUTE)
    checks = [_check("load", load_status, busy, ran),
              snapshot("disk", check_type="disk", summary="disk 40% used",
                       last_run=disk_ran if disk_ran is not None else ran).model_copy(
                  update={"measurements": [MeasurementValue(name="used_ratio", item="/",
                                                            value=0.4)]})]
    return heartbeat(host, checks, sent_at=at).model_dump(mode="json")


def _post(api: Api, payload: dict[str, Any]) -> dict[str, Any]:
    response = api.client.post("/api/v1/heartbeats", headers={
        **AGENT, "content-type": "application/json"},
        content=json.dumps(payload, separators=(",", ":")).encode())
    assert response.status_code == 202, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _full(api: Api, payload: dict[str, Any]) -> dict[str, Any]:
    """The same heartbeat, always through the full path (the engine's own)."""
    return api.world.engine.heartbeat(Heartbeat.model_validate(payload))


def _rollups(api: Api, host: str) -> list[dict[str, Any]]:
    store = api.world.store
    return [{k: v for k, v in row.items() if k != "host"}
            for size in ("hour", "day") for row in store.rollups(size, 0, T0 + 86400 * 2,
                                                                 host=host)]


def _states(api: Api, host: str) -> dict[str, tuple[Any, ...]]:
    return {s["check"]: (s["status"], s["summary"], s["since"], s["last_run"], s["next_due"])
            for s in api.world.store.check_states(host)}


def test_values_only_heartbeats_leave_the_same_rollups_and_states_as_the_full_path(
        api: Api) -> None:
    """Fourteen heartbeats 30 s apart (past FULL_EVERY, so one is a periodic full pass
    while samples are still kept), flushed every third: the host answered from memory
    ends with the very rollup rows and check states of a host sent through the full path."""
    w = api.world
    for beat in range(14):
        at = T0 + beat * HALF
        w.clock.advance(at - w.clock())
        busy = 10.0 + (beat // 4 * 7) % 40  # a new value with each run of load
        for host, send in (("kept-01", _post), ("full-01", _full)):
            answer = send(api, _payload(host, at, busy, disk_ran=at))
            assert answer == {"host": host, "checks": 2, "reconciled": []}
        if beat % 3 == 2:
            w.engine.flush_heartbeats()
    w.engine.flush_heartbeats()
    assert _rollups(api, "kept-01") == _rollups(api, "full-01") != []
    assert _states(api, "kept-01") == _states(api, "full-01")
    assert w.store.host("kept-01")["last_heartbeat"] == w.store.host("full-01")[
        "last_heartbeat"]


def test_the_fleet_summary_follows_values_only_heartbeats_after_a_flush(api: Api) -> None:
    w = api.world
    _post(api, _payload("db-01", T0, 12.0))
    w.clock.advance(2 * MINUTE)
    assert _post(api, _payload("db-01", T0 + 2 * MINUTE, 57.0)) == {
        "host": "db-01", "checks": 2, "reconciled": []}

    def summaries() -> dict[str, str]:
        [host] = api.client.get("/api/v1/hosts", headers=OPERATOR).json()["hosts"]
        return {c["check"]: c["summary"] for c in host["checks"]}

    assert summaries()["load"] == "CPU 12% busy"  # kept in memory until the flush
    w.engine.flush_heartbeats()
    assert summaries() == {"load": "CPU 57% busy", "disk": "disk 40% used"}
    [latest] = [r for r in w.store.rollups("hour", 0, T0 + 86400, host="db-01")
                if r["name"] == "busy_ratio"]
    assert (latest["samples"], latest["last"], latest["high"]) == (2, 0.57, 0.57)


def test_a_status_change_among_changing_values_takes_the_full_path_at_once(
        api: Api) -> None:
    w = api.world
    _post(api, _payload("db-01", T0, 12.0))
    w.clock.advance(2 * MINUTE)
    _post(api, _payload("db-01", T0 + 2 * MINUTE, 30.0))  # values only: kept
    w.clock.advance(2 * MINUTE)
    [opened] = _post(api, _payload("db-01", T0 + 4 * MINUTE, 97.0,
                                   load_status="CRITICAL"))["reconciled"]
    assert opened["outcome"] == "opened"
    ticket = w.ticket(opened["ticket"])
    assert ticket.status.is_open and ticket.check == "load"
    # written at once, with the samples kept before it, in order
    assert _states(api, "db-01")["load"][:2] == ("CRITICAL", "CPU 97% busy")
    [busy] = [r for r in w.store.rollups("hour", 0, T0 + 86400, host="db-01")
              if r["name"] == "busy_ratio"]
    assert (busy["samples"], busy["low"], busy["last"]) == (3, 0.12, 0.97)

    w.clock.advance(2 * MINUTE)
    assert _post(api, _payload("db-01", T0 + 6 * MINUTE, 95.0,
                               load_status="CRITICAL"))["reconciled"] == []
    w.clock.advance(2 * MINUTE)
    [recovering] = _post(api, _payload("db-01", T0 + 8 * MINUTE, 20.0))["reconciled"]
    assert recovering["ticket"] == opened["ticket"]
    assert w.ticket(opened["ticket"]).recovered_at is not None
