"""Heartbeats that change nothing reconciliation reads: answered from memory, written
in groups.

Why: an agent sends its full state every 30 s or so, and almost always nothing but the
times changed (``sent_at``, each check's ``last_run`` and ``next_due``) -- or, in a real
fleet, the times and what the checks measured: a cpu/load/memory/disk check's summary
("CPU 12% busy on db-01") and its measurement values change at every run. Taking such a
heartbeat through the whole path -- a thread hand-off, a write transaction replacing
the host's check rows, a ticket query to reconcile -- capped a collector core at about
1,000 heartbeats/s, mostly in per-request overhead rather than the database.

Decisions:

- A heartbeat's *digest* covers what reconciliation and the host's record read: agent,
  labels, time zone, interval, and per check its type, status, since, labels, schedule,
  interval and timeout -- not the times, not the summary, not the measured values. When
  it equals the digest of the last heartbeat the engine processed in full for that host
  (less than ``FULL_EVERY`` seconds ago), the heartbeat is answered at once (202, the
  same body as the full path's: nothing to reconcile) and kept: its times, each check's
  summary, and its runs' rollup samples, to be written with every other such heartbeat
  by one transaction every ``FLUSH_EVERY`` seconds (group commit). A status change, a
  new or removed check, changed labels and the like take the full path at once.
- The samples are those the full path would record (:func:`sample_rows`), kept in
  arrival order, one per (check, measurement, item, run time): the rollup upsert
  ignores a sample that is not newer than its bucket's, so folding them later in that
  order gives the same rollup rows. A host's full pass first folds the samples still
  kept for it, in its own transaction, so they are not folded after newer ones.
- Such a heartbeat need not even be validated again in full when its bytes have the
  *shape* of the host's last one that was (everything but its times identical): only
  its times are (:mod:`collector.ingest.heartbeat_shape`); its summaries and values are
  those of that body, remembered with the shape.
- Reconciliation compares the agent's state with the tickets; with the agent's state
  unchanged it found nothing last time, and the ticket-side changes that could matter
  come back through the full pass that every host gets at least every ``FULL_EVERY``
  seconds. A host marked unreachable (here, or by another replica: each flush reads
  which hosts are) is forgotten, so its next heartbeat marks it back the usual way.
  On PostgreSQL each replica keeps and flushes the heartbeats it answered itself.
- What is lost if the collector dies before a flush: at most ``FLUSH_EVERY`` seconds of
  "still alive" times, summaries and rollup samples. The next heartbeat carries the
  times, summaries and latest values again (a sample of a run no later heartbeat
  carries -- the check ran again within that second -- is the one thing gone); an
  agent's state *change* never waits here. The watchdog flushes before it judges
  silence.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import weakref
from typing import TYPE_CHECKING, Any

from patrol.collector.ingest.heartbeat_shape import Layout, Shape
from patrol.collector.ingest.history import sample_rows
from patrol.collector.store import StoreError
from patrol.collector.store.history import Sample
from patrol.contract.wire import Heartbeat

if TYPE_CHECKING:
    from patrol.collector.store.base import TicketStore

log = logging.getLogger("patrol.collector")

FULL_EVERY = 300.0  # seconds between full passes of an unchanged host
FLUSH_EVERY = 1.0  # seconds between group writes of the kept heartbeats
MAX_LAYOUTS = 10_000  # distinct layouts shared between hosts (beyond: one per host)

# Per check as the group write takes it: (last_run, next_due, summary, host, check).
Run = tuple[float | None, float | None, str, str, str]
# A run's measured value: (check, measurement, item, run time, value).
Measured = tuple[str, str, str, float, float]
# Per host: the values kept since the last flush, by (check, measurement, item, run time).
Pending = dict[tuple[str, str, str, float], float]
# Per host since the last flush: (its latest heartbeat at, its runs, its values).
Kept = tuple[float, list[Run], Pending]
# Per check of a remembered body: its summary, and its measurements (name, item, value).
Said = tuple[tuple[str, ...], tuple[tuple[tuple[str, str, float], ...], ...]]


def digest(beat: Heartbeat) -> str:
    """What a heartbeat says that reconciliation reads: without the times that change
    every time, the summaries and the measured values (the group write takes those)."""
    parts = [beat.agent.id, beat.agent.version, beat.agent.config or "",
             repr(sorted(beat.labels.items())), beat.timezone or "", repr(beat.interval_seconds)]
    for c in beat.checks:
        parts.append(repr((c.check, c.type, c.status,
                           c.since.timestamp() if c.since else None,
                           sorted(c.labels.items()), c.interval_seconds, c.schedule,
                           c.timezone, c.timeout_seconds, c.last_run is None)))
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()


def said(beat: Heartbeat) -> Said:
    """Each check's summary and measurements, to rebuild what a body of the same shape
    says without parsing it."""
    return (tuple(c.summary for c in beat.checks),
            tuple(tuple((m.name, m.item, m.value) for m in c.measurements)
                  for c in beat.checks))


class QuietHeartbeats:
    """Per host, the digest of its last full pass; what heartbeats kept since said."""

    def __init__(self, store: TicketStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._writing = threading.Lock()  # held by a flush from taking the kept to commit
        self._flushing: dict[str, Kept] = {}  # the hosts that flush is writing
        self._known: dict[str, tuple[str, float]] = {}  # host -> (digest, full pass at)
        # host -> (shape of its last fully validated kept body, the digest it said
        # then, where its times go, its summaries and measurements)
        self._shapes: dict[str, tuple[bytes, str, Layout, Said]] = {}
        self._seen: dict[str, bytes] = {}  # host -> the shape of its latest such body
        self._layouts: dict[Layout, Layout] = {}  # one object per distinct layout
        self._kept: dict[str, Kept] = {}
        self._flusher: threading.Thread | None = None

    def keep(self, beat: Heartbeat, now: float) -> bool:
        """Keep ``beat``'s times, summaries and samples if it changes nothing
        reconciliation reads; False if it needs a full pass."""
        known = self._known.get(beat.source)
        if known is None or now - known[1] >= FULL_EVERY or known[0] != digest(beat):
            return False
        runs: list[Run] = [(c.last_run.timestamp() if c.last_run else None,
                            c.next_due.timestamp() if c.next_due else None,
                            c.summary, beat.source, c.check) for c in beat.checks]
        self._keep(beat.source, runs, sample_rows(beat), now)
        return True

    def matching(self, shape: Shape, now: float
                 ) -> tuple[str, list[Run], list[Measured]] | None:
        """The host, its runs and samples when a body of ``shape`` has the shape of the
        host's last heartbeat validated in full and kept or processed
        (:mod:`collector.ingest.heartbeat_shape`); None otherwise. Keeps nothing: the
        caller checks the credential first, then :meth:`keep_runs`."""
        host = shape.host
        if host is None:
            return None
        entry = self._shapes.get(host)
        if entry is None or entry[0] != shape.key:
            return None
        known = self._known.get(host)
        if known is None or known[0] != entry[1] or now - known[1] >= FULL_EVERY:
            return None
        summaries, measures = entry[3]
        runs = shape.runs(entry[2], host, summaries)
        samples = [(run[4], name, item, run[0], value)
                   for run, measured in zip(runs, measures, strict=True)
                   if run[0] is not None for name, item, value in measured]
        return host, runs, samples

    def remember(self, beat: Heartbeat, shape: Shape, payload: dict[str, Any],
                 processed: bool) -> None:
        """``beat`` (``payload``, validated in full) was kept or just ``processed``, and
        had ``shape``: the next ones of that shape need not be parsed or validated. A
        kept one only once the host sent two bodies of one shape in a row: a host whose
        checks measure something new every time never sends a body of the same shape
        again, and reading where its values go would be wasted on every heartbeat."""
        host = beat.source
        if shape.host != host:
            return
        if not processed and self._seen.get(host) != shape.key:
            self._seen[host] = shape.key
            return
        layout = shape.layout(payload)
        if layout is None:
            return
        with self._lock:
            known = self._known.get(host)
            if known is not None:
                layout = self._layouts.setdefault(layout, layout) \
                    if len(self._layouts) < MAX_LAYOUTS else layout
                self._shapes[host] = (shape.key, known[0], layout, said(beat))

    def keep_runs(self, host: str, runs: list[Run], samples: list[Measured],
                  now: float) -> bool:
        """Keep a matched heartbeat's runs and samples (:meth:`matching`); False if the
        host's state changed meanwhile (then it takes the full path)."""
        known = self._known.get(host)
        if known is None or now - known[1] >= FULL_EVERY:
            return False
        self._keep(host, runs, samples, now)
        return True

    def _keep(self, host: str, runs: list[Run], samples: list[Measured],
              now: float) -> None:
        with self._lock:
            kept = self._kept.get(host)
            pending: Pending = kept[2] if kept is not None else {}
            for check, name, item, at, value in samples:  # a run carried again: the
                pending.setdefault((check, name, item, at), value)  # first is folded
            self._kept[host] = (now, runs, pending)
            if self._flusher is None:
                self._flusher = threading.Thread(target=_flush_loop, args=(weakref.ref(self),),
                                                 daemon=True, name="heartbeat-flush")
                self._flusher.start()

    def take(self, host: str) -> list[Sample]:
        """The samples kept for ``host``, no longer kept: its full pass is about to fold
        them before its own. When a flush in progress holds older ones of this host, it
        waits for that flush to commit first (only then: the ingest worker calls this)."""
        with self._lock:
            kept = self._kept.pop(host, None)
            in_flight = host in self._flushing
        if in_flight:
            with self._writing:  # acquired once that flush has committed (or failed)
                pass
        return [Sample(*key, value) for key, value in kept[2].items()] \
            if kept is not None else []

    def processed(self, beat: Heartbeat, now: float, reachable: bool) -> None:
        """The engine took ``beat`` through the full path (and wrote it)."""
        with self._lock:
            self._kept.pop(beat.source, None)
            if reachable:
                self._known[beat.source] = (digest(beat), now)
            else:
                self._known.pop(beat.source, None)
                self._shapes.pop(beat.source, None)

    def forget(self, host: str) -> None:
        """The host's next heartbeat must take the full path (e.g. marked unreachable)."""
        with self._lock:
            self._known.pop(host, None)
            self._shapes.pop(host, None)

    def flush(self) -> int:
        """Write what was kept in one transaction; how many hosts were written."""
        with self._writing:
            with self._lock:
                kept, self._kept = self._kept, {}
                self._flushing = kept
            if not kept:
                return 0
            try:
                with self.store.transaction() as tx:
                    unreachable = tx.touch_hosts(
                        [(at, host) for host, (at, _, _) in kept.items()],
                        [run for _, runs, _ in kept.values() for run in runs],
                        [(host, *key, value) for host, (_, _, pending) in kept.items()
                         for key, value in pending.items()])
            except StoreError as exc:
                log.warning("could not write %d hosts' heartbeats: %s", len(kept), exc)
                unreachable = list(kept)  # their next heartbeats take the full path
            finally:
                with self._lock:
                    self._flushing = {}
        with self._lock:
            for host in unreachable:
                self._known.pop(host, None)
                self._shapes.pop(host, None)
        return len(kept)


def _flush_loop(ref: weakref.ref[QuietHeartbeats]) -> None:
    """Flush every FLUSH_EVERY seconds until the owner is gone (no reference cycle)."""
    stop = threading.Event()
    while not stop.wait(FLUSH_EVERY):
        owner = ref()
        if owner is None:
            return
        try:
            owner.flush()
        except Exception:  # a flusher that dies would silently stop liveness updates
            log.exception("heartbeat flush failed")
        del owner
