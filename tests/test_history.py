"""Measurement history: the agent's ring buffer, the breach event's series, and the
collector's hourly/daily rollups on SQLite and PostgreSQL (heartbeats in, reports out,
pruned by the watchdog)."""

from __future__ import annotations

import itertools
import tracemalloc

import pytest

from patrol.agent.events import Emitter
from patrol.agent.history import POINTS, MeasurementHistory
from patrol.agent.outbox import Outbox
from patrol.agent.state import CheckInfo, CheckView, Transition
from patrol.checks.base import Measurement, Result, Status
from patrol.collector.store.history import DAY, HOUR
from patrol.contract.wire import Event, MeasurementSeries, MeasurementValue
from tests.collector_fixtures import T0, event, heartbeat, snapshot
from tests.helpers import build

pytest_plugins = ["tests.store_worlds"]


# -- the agent's ring buffer -------------------------------------------------------------


def test_a_day_of_ten_second_runs_keeps_one_point_per_five_minutes():
    history = MeasurementHistory()
    for i in range(8640 + 100):  # a day and a bit, every 10 s
        history.record("root-disk", T0 + 10 * i, [("used_ratio", "/", i / 10000)])
    now = T0 + 10 * (8640 + 99)
    (series,) = history.series("root-disk", now)
    assert len(series.points) <= POINTS
    times = [t for t, _ in series.points]
    assert times == sorted(times) and times[0] >= now - DAY
    assert series.points[-1] == (now, (8640 + 99) / 10000)  # the latest run is in it
    settled = times[:-1]  # the last bucket is still filling: its point is the latest run
    assert {round(b - a) for a, b in itertools.pairwise(settled)} == {300}


def test_non_finite_values_and_forgotten_checks_leave_no_points():
    history = MeasurementHistory()
    history.record("load", T0, [("load1", "", float("nan")), ("load5", "", 1.5)])
    history.record("gone", T0, [("x", "", 1.0)])
    history.retain(["load"])
    assert [(s.name, s.points) for s in history.series("load", T0)] == [("load5", [(T0, 1.5)])]
    assert history.series("gone", T0) == []


def test_memory_per_measurement_is_a_few_kilobytes_however_often_the_check_runs():
    tracemalloc.start()
    history = MeasurementHistory()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(8640):
        history.record("disk", T0 + 10 * i, [("used_ratio", f"/m{k}", 0.5) for k in range(10)])
    per_measurement = (tracemalloc.get_traced_memory()[0] - before) / 10
    tracemalloc.stop()
    assert per_measurement < 8 * 1024  # 288 points x 16 bytes + the ring itself


# -- the breach event carries the breaching series -------------------------------------------


def _disk_view(status: Status, values: dict[str, float], last_run: float) -> CheckView:
    result = Result(status, "/var is 96% full", tuple(
        Measurement("used_ratio", v, item) for item, v in values.items()))
    return CheckView(CheckInfo("disk", "disk"), status=status, since=last_run, result=result,
                     last_run=last_run)


def test_a_breach_event_carries_the_breaching_mount_first_and_heartbeats_the_latest_values(
        tmp_path):
    _, ctx = build("disk", warning="90%", critical="95%")
    history = MeasurementHistory()
    for i in range(12):
        history.record("disk", T0 + 300 * i, [("used_ratio", "/var", 0.85 + i * 0.01),
                                              ("used_ratio", "/", 0.40)])
    last = T0 + 300 * 11
    outbox = Outbox(tmp_path, ["http://127.0.0.1:1"])
    emitter = Emitter(outbox, "db-01", {}, "a" * 32, evaluators=lambda _: ctx.evaluator,
                      history=history)
    critical = _disk_view(Status.CRITICAL, {"/": 0.40, "/var": 0.96}, last)
    emitter(critical, Transition("disk", Status.OK, Status.CRITICAL))
    emitter(_disk_view(Status.OK, {"/": 0.40, "/var": 0.5}, last + 60),
            Transition("disk", Status.CRITICAL, Status.OK))
    emitter.heartbeat([critical], 30.0)
    trigger, resolve = (Event.model_validate(r.payload) for r in outbox.rows()[:2])
    assert [(s.name, s.item) for s in trigger.history] == [("used_ratio", "/var"),
                                                           ("used_ratio", "/")]
    assert trigger.history[0].points[0] == (T0, 0.85)
    assert trigger.history[0].points[-1] == (last, pytest.approx(0.96))
    assert resolve.history == []  # a recovery needs no chart
    beat = outbox.rows()[2].payload
    assert {(m["item"], m["value"]) for m in beat["checks"][0]["measurements"]} == {
        ("/", 0.40), ("/var", 0.96)}
    outbox.close()


def test_an_event_from_an_older_agent_without_history_is_still_accepted():
    payload = event().model_dump(mode="json")
    del payload["history"]
    assert Event.model_validate(payload).history == []


# -- the collector's rollups ----------------------------------------------------------------


def _beat(sent: float, last_run: float, value: float, item: str = "/var"):
    check = snapshot("disk", last_run=last_run).model_copy(update={"measurements": [
        MeasurementValue(name="used_ratio", value=value, item=item)]})
    return heartbeat(checks=[check], sent_at=sent)


def test_heartbeats_fold_into_hourly_and_daily_rollups_counting_each_run_once(any_world):
    engine = any_world.engine
    runs = [(T0 + 60, 0.50), (T0 + 1200, 0.70), (T0 + 2400, 0.60), (T0 + HOUR + 60, 0.80)]
    for run_at, value in runs:
        engine.heartbeat(_beat(run_at + 5, run_at, value))
        engine.heartbeat(_beat(run_at + 35, run_at, value))  # the same run, heard again
    engine.heartbeat(heartbeat(checks=[snapshot("disk")], sent_at=T0 + 2 * HOUR))  # not run
    hours = any_world.store.rollups("hour", T0, T0 + DAY, host="db-01")
    assert [(r["bucket"], r["samples"], r["low"], r["high"], r["last"]) for r in hours] == [
        (T0, 3, 0.50, 0.70, 0.60), (T0 + HOUR, 1, 0.80, 0.80, 0.80)]
    assert hours[0]["avg"] == pytest.approx(0.60)
    (day,) = any_world.store.rollups("day", T0 - 9 * HOUR, T0 + DAY, check="disk")
    assert (day["bucket"], day["samples"], day["low"], day["high"], day["last"]) == (
        T0 - 9 * HOUR, 4, 0.50, 0.80, 0.80)  # T0 is 09:00 UTC: the day began 9 h earlier
    assert day["avg"] == pytest.approx(0.65)


def test_a_breach_series_is_kept_with_its_levels_for_the_ticket_chart(any_world):
    points = [(T0 - 600 + 60 * i, 0.9 + i / 200) for i in range(11)]
    any_world.one(event(check="disk", observed_at=T0,
                        measurements=[MeasurementValue(name="used_ratio", value=0.96,
                                                       item="/var")],
                        thresholds={"used_ratio[/var]": {"warning": 0.9, "critical": 0.95}},
                        history=[MeasurementSeries(name="used_ratio", item="/var",
                                                   points=points)]))
    (series,) = any_world.store.breach_series("db-01/disk")
    assert [tuple(p) for p in series["points"]] == points
    assert series["levels"] == {"warning": 0.9, "critical": 0.95}
    assert (series["name"], series["item"], series["observed_at"]) == ("used_ratio", "/var", T0)
    assert any_world.store.breach_series("db-01/disk", before=T0 - 1) == []
    (hour,) = any_world.store.rollups("hour", T0, T0 + HOUR)  # its value is a sample too
    assert hour["last"] == 0.96


def test_the_watchdogs_prune_drops_rollups_past_retention(any_world):
    engine = any_world.engine
    engine.heartbeat(_beat(T0 + 5, T0, 0.5))
    assert any_world.tick(0)["pruned"] == 0  # within 14 days: kept
    any_world.clock.advance(15 * DAY)
    engine.heartbeat(_beat(any_world.clock() + 5, any_world.clock(), 0.6))
    any_world.tick(0)
    store = any_world.store
    assert [r["bucket"] for r in store.rollups("hour", 0, 1e12)] == [
        any_world.clock() // HOUR * HOUR]  # the old hour is gone ...
    assert len(store.rollups("day", 0, 1e12)) == 2  # ... its day is kept for 400 days
