"""The collector's own Prometheus metrics, from its own registry.

``patrol_collector_events_total{outcome}``-style counters come from the engine's
counters; open tickets by priority and the host count are read from the store at
scrape time, so they are never stale. The watchdog's (when the service wired it as
``engine.watchdog``): ``patrol_collector_watchdog_leader`` (0/1),
``patrol_collector_watchdog_errors_total{duty}`` and
``patrol_collector_watchdog_last_success_timestamp_seconds{duty}``; alert on
``time() - last_success > 3 * watchdog_interval`` on the replica whose leader gauge is 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from patrol.collector.watchdog.duties import DUTIES

if TYPE_CHECKING:
    from patrol.collector.dispatch.dispatcher import Dispatcher
    from patrol.collector.engine import Engine


class EngineCollector:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        counters = dict(self.engine.counters)
        events = CounterMetricFamily("patrol_collector_events", "Events received, by result",
                                     labels=["result"])
        events.add_metric(["accepted"], counters["events"])
        events.add_metric(["duplicate"], counters["duplicates"])
        yield events
        yield CounterMetricFamily("patrol_collector_heartbeats",
                                  "Heartbeats received", value=counters["heartbeats"])
        tickets = CounterMetricFamily("patrol_collector_ticket_transitions",
                                      "Ticket lifecycle transitions", labels=["transition"])
        for name in ("opened", "reopened", "resolved"):
            tickets.add_metric([name], counters[name])
        yield tickets
        yield CounterMetricFamily("patrol_collector_conflict_retries",
                                  "Units of work retried after a concurrent update",
                                  value=counters["retries"])
        stats = self.engine.store.stats()
        open_by_priority = GaugeMetricFamily("patrol_collector_open_tickets",
                                             "Open tickets by priority", labels=["priority"])
        for priority in ("P1", "P2", "P3", "P4"):
            open_by_priority.add_metric([priority], stats.get("priority", {}).get(priority, 0))
        yield open_by_priority
        dispatcher = getattr(self.engine, "dispatcher", None)
        if dispatcher is not None:
            yield from _dispatch_metrics(dispatcher)
        watchdog = getattr(self.engine, "watchdog", None)
        if watchdog is not None:
            yield from _watchdog_metrics(watchdog)
        hosts = self.engine.store.hosts()
        yield GaugeMetricFamily("patrol_collector_hosts", "Hosts that sent a heartbeat",
                                value=len(hosts))
        yield GaugeMetricFamily("patrol_collector_unreachable_hosts",
                                "Hosts whose heartbeat stopped",
                                value=sum(not h.get("reachable", True) for h in hosts))


def _dispatch_metrics(dispatcher: Dispatcher) -> Iterator[Metric]:
    """The helpdesk outbox: backlog by state (``failed`` = refused for good, needs a
    person), its oldest row's age, and delivery outcomes."""
    backlog = GaugeMetricFamily("patrol_collector_dispatch_backlog",
                                "Helpdesk actions not yet delivered, by helpdesk and state",
                                labels=["helpdesk", "state"])
    oldest = GaugeMetricFamily("patrol_collector_dispatch_oldest_age_seconds",
                               "Age of the oldest undelivered helpdesk action",
                               labels=["helpdesk"])
    ages: dict[str, float] = {}
    for row in dispatcher.backlog():
        backlog.add_metric([row["helpdesk"], row["state"]], row["count"])
        ages[row["helpdesk"]] = max(ages.get(row["helpdesk"], 0.0), row["oldest_age_seconds"])
    for helpdesk, age in sorted(ages.items()):
        oldest.add_metric([helpdesk], age)
    yield backlog
    yield oldest
    outcomes = CounterMetricFamily("patrol_collector_dispatch_attempts",
                                   "Helpdesk delivery attempts by outcome (delivered, retry, "
                                   "failed)", labels=["helpdesk", "outcome"])
    for (helpdesk, outcome), count in sorted(dispatcher.counters.items()):
        outcomes.add_metric([helpdesk, outcome], count)
    yield outcomes
    lost = CounterMetricFamily("patrol_collector_dispatch_lost_leases",
                               "Helpdesk actions whose lease this collector lost while "
                               "delivering (another replica took them over)",
                               labels=["helpdesk"])
    taken = CounterMetricFamily("patrol_collector_dispatch_lease_takeovers",
                                "Helpdesk actions this collector took over from a replica "
                                "that stopped renewing its lease", labels=["helpdesk"])
    for (helpdesk, event), count in sorted(dispatcher.lease_counters.items()):
        (lost if event == "lost" else taken).add_metric([helpdesk], count)
    yield lost
    yield taken


def _watchdog_metrics(watchdog: Any) -> Iterator[Metric]:
    """Whether this replica leads the watchdog, failures by duty, and when each duty
    last succeeded (an alert on its age finds a watchdog that is stuck)."""
    yield GaugeMetricFamily("patrol_collector_watchdog_leader",
                            "1 if this collector runs the watchdog duties (the leader)",
                            value=1 if watchdog.leader else 0)
    errors, successes = watchdog.health.snapshot()
    failed = CounterMetricFamily("patrol_collector_watchdog_errors",
                                 "Watchdog duty steps that failed (retried next pass)",
                                 labels=["duty"])
    for duty in sorted(set(DUTIES) | set(errors)):
        failed.add_metric([duty], errors.get(duty, 0))
    yield failed
    last = GaugeMetricFamily("patrol_collector_watchdog_last_success_timestamp_seconds",
                             "When each watchdog duty last completed without an error",
                             labels=["duty"])
    for duty, at in sorted(successes.items()):
        last.add_metric([duty], at)
    yield last


def build_registry(engine: Engine) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(engine))
    return registry
