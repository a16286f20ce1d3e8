"""Wire payloads -> the store's measurement history (rollup samples, breach series).

Kept out of the engine so the engine gains two calls, not the rules: which values of a
heartbeat are samples (each check's latest run, timed by its ``last_run``) and which
series of a breach event are kept (those it carried, with the event's levels).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from patrol.collector.store.history import Sample
from patrol.contract.wire import Event, Heartbeat

if TYPE_CHECKING:
    from patrol.collector.store.base import Transaction


def samples_of(beat: Heartbeat) -> list[Sample]:
    """One sample per measurement of every check that has run; a check that has not
    run yet (no ``last_run``) measured nothing."""
    return [Sample(*row) for row in sample_rows(beat)]


def sample_rows(beat: Heartbeat) -> list[tuple[str, str, str, float, float]]:
    """:func:`samples_of` as plain (check, measurement, item, at, value) tuples, for the
    heartbeats kept in memory (collector/ingest/heartbeats.py: no object per sample)."""
    return [(c.check, m.name, m.item, c.last_run.timestamp(), m.value)
            for c in beat.checks if c.last_run is not None for m in c.measurements]


def record_event_series(tx: Transaction, event: Event) -> None:
    """Keep a breach event's series (its values as rollup samples are written for the
    whole unit of work at once: :func:`record_batch_samples`)."""
    at = event.observed_at.timestamp()
    if event.history and event.action == "trigger":
        tx.record_breach_series(event.dedup_key, event.source, event.check, at,
                                [(s.name, s.item, s.points) for s in event.history],
                                event.thresholds)


def record_batch_samples(tx: Transaction, events: Iterable[Event]) -> None:
    """The rollup samples of a unit of work's events, one write per host instead of one
    per event (each write is two statements: hourly and daily; on PostgreSQL each a
    round trip, 20 % of the collector's samples for single events merged into a unit)."""
    by_host: dict[str, list[Sample]] = {}
    for event in events:
        if event.measurements:
            at = event.observed_at.timestamp()
            by_host.setdefault(event.source, []).extend(
                Sample(event.check, m.name, m.item, at, m.value) for m in event.measurements)
    for host, samples in by_host.items():
        tx.record_samples(host, samples)
