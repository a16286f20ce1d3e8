"""``patrol_check_set_*``: which check set this agent runs, what it refused, how pulls went.

Read at scrape time from the agent's :class:`~agent.check_sets.CheckSetState`, which
lives across reloads (counters restart only with the process). Imported only when the
agent serves /metrics, like the delivery metrics.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from patrol.agent.check_sets import CheckSetState


class CheckSetCollector:
    """``patrol_check_set_*`` at scrape time, from the agent's :class:`CheckSetState`."""

    def __init__(self, state: CheckSetState) -> None:
        self.state = state

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        state = self.state
        info = GaugeMetricFamily("patrol_check_set_info", "The check-set version this agent "
                                 "applied (empty: none)", labels=["version"])
        info.add_metric([state.version or ""], 1)
        yield info
        yield GaugeMetricFamily("patrol_check_set_checks", "Checks from the collector's "
                                "check sets running now", value=state.running)
        rejected = CounterMetricFamily(
            "patrol_check_set_rejected", "Remote checks not run, counted each time a set "
            "is applied (start, reload, new version), by reason", labels=["reason"])
        for reason in ("invalid", "local_conflict", "local_reference", "type_not_allowed"):
            rejected.add_metric([reason], state.rejected[reason])
        yield rejected
        pulls = CounterMetricFamily("patrol_check_set_pulls", "Check-set pulls by result",
                                    labels=["result"])
        for result in ("updated", "unchanged", "refused", "failed"):
            pulls.add_metric([result], state.pulls[result])
        yield pulls
