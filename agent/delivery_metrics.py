"""Metrics about delivery to the collector: is anything stuck in the outbox?

Read at scrape time from whatever pusher the agent has now (a reload may replace
it; counters then start again from zero, as Prometheus' ``rate()`` expects of a
restart). Nothing is exported when no collector is configured.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric


class DeliveryCollector:
    def __init__(self, pusher: Callable[[], Any]) -> None:
        self._pusher = pusher

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        pusher = self._pusher()
        if pusher is None:
            return
        rows = GaugeMetricFamily("patrol_outbox_events",
                                 "Outbox rows not yet delivered, by kind and state "
                                 "(dead = refused by the collector, kept for inspection; "
                                 "memory = held while the disk refuses writes)",
                                 labels=["kind", "state"])
        for (kind, state), count in sorted(pusher.outbox.counts().items()):
            rows.add_metric([kind, state], count)
        yield rows
        yield GaugeMetricFamily("patrol_outbox_oldest_age_seconds",
                                "Age of the oldest undelivered outbox row",
                                value=pusher.backlog().oldest_age_seconds)
        delivered = CounterMetricFamily("patrol_outbox_delivered",
                                        "Payloads the collector accepted", labels=["kind"])
        delivered.add_metric(["event"], pusher.delivered)
        delivered.add_metric(["heartbeat"], pusher.heartbeats_delivered)
        yield delivered
        yield CounterMetricFamily("patrol_outbox_failed_attempts",
                                  "Delivery attempts that will be retried",
                                  value=pusher.failed)
        yield CounterMetricFamily("patrol_outbox_dead_lettered",
                                  "Payloads the collector refused for good",
                                  value=pusher.dead_lettered)
        yield CounterMetricFamily("patrol_outbox_dropped",
                                  "Events dropped because the outbox reached its cap",
                                  value=pusher.outbox.dropped)
