"""Prometheus exposition of the agent's state, built fresh at scrape time.

The agent serves its OWN :class:`CollectorRegistry` (never the process-global
one, so nothing a library registers at import time leaks into our output). It
holds :class:`StateCollector`, which reads :meth:`StateTable.snapshot` on every
``collect()``, plus a :class:`ProcessCollector` so operators can watch the
agent's own RSS, CPU and open files (``process_*``).

Families (names and labels are a user-facing contract):

- ``patrol_check_status{check,type}``: hard status, 0 OK, 1 WARNING, 2 CRITICAL,
  3 UNKNOWN.
- ``patrol_check_soft_status{check,type}``: status of the latest run, before the
  ``for`` sustain makes it hard; lets a dashboard show a breach in progress.
- ``patrol_check_value{check,type,measurement,item}``: every measurement of the
  latest result, in base units. ``item`` is the instance (mount point, database,
  unit) or "" when the measurement has none. It extends the design's
  ``{check,type,measurement}`` because a disk or database check emits the same
  measurement once per instance, and two series may not share one label set.
- ``patrol_check_duration_seconds{check,type}``: wall time of the last run.
- ``patrol_check_last_run_timestamp_seconds{check,type}``: when the last run
  finished, Unix epoch seconds.
- ``patrol_agent_info{version,...}``: constant 1, labelled with the version and
  the agent labels given to :func:`build_registry` (``host`` and the like).

A check that has not run yet is present only in ``patrol_check_status`` (as OK,
which is what the state table says) and absent from the per-run families: a zero
duration or a 1970 timestamp would be a lie.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import CollectorRegistry

from agent.state import StateTable
from agent.version import AGENT_VERSION

_CHECK_LABELS = ("check", "type")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

_HELP = {
    "status": "Hard status of the check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN "
    "(sustained for the check's 'for' setting).",
    "soft_status": "Status of the check's latest run, before sustain: 0 OK, 1 WARNING, "
    "2 CRITICAL, 3 UNKNOWN.",
    "value": "Latest value of each measurement of a check, in base units "
    "(unit suffix in the measurement label); item is the instance or empty.",
    "duration": "Wall-clock duration of the check's last run.",
    "last_run": "Unix time when the check's last run finished.",
    "info": "Patrol agent version and labels; always 1.",
}


class StateCollector:
    """Collector over a :class:`StateTable`; ``agent_labels`` label ``patrol_agent_info``.

    ``collect()`` builds families directly from the snapshot: no per-scrape regex
    or validation work (label names are fixed and checked once, here).
    """

    def __init__(self, table: StateTable, agent_labels: Mapping[str, str] | None = None) -> None:
        labels = {"version": AGENT_VERSION, **(agent_labels or {})}
        bad = sorted(k for k in labels if not _LABEL_NAME.match(k) or k.startswith("__"))
        if bad:
            raise ValueError(
                f"agent label name(s) {', '.join(map(repr, bad))} are not valid Prometheus "
                "label names (letters, digits and '_', not starting with a digit or '__')"
            )
        self.table = table
        self._info_names = tuple(labels)
        self._info_values = tuple(str(v) for v in labels.values())

    def _families(self) -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily("patrol_check_status", _HELP["status"], labels=_CHECK_LABELS),
            GaugeMetricFamily(
                "patrol_check_soft_status", _HELP["soft_status"], labels=_CHECK_LABELS
            ),
            GaugeMetricFamily(
                "patrol_check_value", _HELP["value"],
                labels=("check", "type", "measurement", "item"),
            ),
            GaugeMetricFamily(
                "patrol_check_duration_seconds", _HELP["duration"], labels=_CHECK_LABELS
            ),
            GaugeMetricFamily(
                "patrol_check_last_run_timestamp_seconds", _HELP["last_run"],
                labels=_CHECK_LABELS,
            ),
            GaugeMetricFamily("patrol_agent_info", _HELP["info"], labels=self._info_names),
        )

    def describe(self) -> list[Metric]:
        """Empty families, so the registry can detect name clashes without collecting."""
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        status, soft, value, duration, last_run, info = self._families()
        for view in self.table.snapshot():
            key = [view.info.name, view.info.type]
            status.add_metric(key, int(view.status))
            result = view.result
            if result is not None:
                soft.add_metric(key, int(result.status))
                seen: set[tuple[str, str]] = set()
                for m in result.measurements:
                    if (m.name, m.item) in seen:  # a duplicate series would be rejected
                        continue
                    seen.add((m.name, m.item))
                    value.add_metric([*key, m.name, m.item], m.value)
            if view.duration_seconds is not None:
                duration.add_metric(key, view.duration_seconds)
            if view.last_run is not None:
                last_run.add_metric(key, view.last_run)
        info.add_metric(self._info_values, 1)
        yield from (status, soft, value, duration, last_run, info)


def build_registry(
    table: StateTable, agent_labels: Mapping[str, str] | None = None, *, process: bool = True
) -> CollectorRegistry:
    """A fresh registry holding our collector and, unless ``process=False``, the
    agent's own ``process_*`` metrics (Linux /proc; empty elsewhere)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(table, agent_labels))
    if process:
        ProcessCollector(registry=registry)
    return registry
