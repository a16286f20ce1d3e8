"""Heartbeats that say nothing new: answered from memory, written in groups.

Why: an agent sends its full state every 30 s or so, and almost always nothing but the
times changed (``sent_at``, each check's ``last_run`` and ``next_due``). Taking such a
heartbeat through the whole path -- a thread hand-off, a write transaction replacing
the host's check rows, a ticket query to reconcile -- capped a collector core at under
1,600 heartbeats/s, mostly in per-request overhead rather than the database.

Decisions:

- A heartbeat's *digest* covers everything but those times: agent, labels, time zone,
  interval, and per check its type, status, summary, since, schedule, interval and
  timeout. When it equals the digest of the last heartbeat the engine processed in
  full for that host (less than ``FULL_EVERY`` seconds ago), the heartbeat is answered
  at once and only its times are kept, to be written with every other such heartbeat
  by one transaction every ``FLUSH_EVERY`` seconds (group commit).
- Such a heartbeat need not even be validated again in full when its bytes have the
  *shape* of the host's last one that was (everything but its times identical): only
  its times are (:mod:`collector.ingest.heartbeat_shape`).
- Reconciliation compares the agent's state with the tickets; with the agent's state
  unchanged it found nothing last time, and the ticket-side changes that could matter
  come back through the full pass that every host gets at least every ``FULL_EVERY``
  seconds. A host marked unreachable (here, or by another replica: each flush reads
  which hosts are) is forgotten, so its next heartbeat marks it back the usual way.
- What is lost if the collector dies before a flush: at most ``FLUSH_EVERY`` seconds of
  "still alive" times, which the next heartbeat carries again; an agent's state
  *change* never waits here. The watchdog flushes before it judges silence.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import weakref
from typing import TYPE_CHECKING, Any

from patrol.collector.ingest.heartbeat_shape import Layout, Shape
from patrol.collector.store import StoreError
from patrol.contract.wire import Heartbeat

if TYPE_CHECKING:
    from patrol.collector.store.base import TicketStore

log = logging.getLogger("patrol.collector")

FULL_EVERY = 300.0  # seconds between full passes of an unchanged host
FLUSH_EVERY = 1.0  # seconds between group writes of the kept times
MAX_LAYOUTS = 10_000  # distinct layouts shared between hosts (beyond: one per host)


def digest(beat: Heartbeat) -> str:
    """What a heartbeat says, without the times that change every time."""
    parts = [beat.agent.id, beat.agent.version, beat.agent.config or "",
             repr(sorted(beat.labels.items())), beat.timezone or "", repr(beat.interval_seconds)]
    for c in beat.checks:
        parts.append(repr((c.check, c.type, c.status, c.summary,
                           c.since.timestamp() if c.since else None,
                           sorted(c.labels.items()), c.interval_seconds, c.schedule,
                           c.timezone, c.timeout_seconds, c.last_run is None)))
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()


class QuietHeartbeats:
    """Per host, the digest of its last full pass; the times of heartbeats kept since."""

    def __init__(self, store: TicketStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._known: dict[str, tuple[str, float]] = {}  # host -> (digest, full pass at)
        # host -> (shape of its last fully validated quiet body, the digest it said
        # then, where its values go)
        self._shapes: dict[str, tuple[bytes, str, Layout]] = {}
        self._layouts: dict[Layout, Layout] = {}  # one object per distinct layout
        self._kept: dict[str, tuple[float, list[tuple[Any, ...]]]] = {}
        self._flusher: threading.Thread | None = None

    def keep(self, beat: Heartbeat, now: float) -> bool:
        """Keep ``beat``'s times if it says nothing new; False if it needs a full pass."""
        known = self._known.get(beat.source)
        if known is None or now - known[1] >= FULL_EVERY or known[0] != digest(beat):
            return False
        runs = [(c.last_run.timestamp() if c.last_run else None,
                 c.next_due.timestamp() if c.next_due else None, beat.source, c.check)
                for c in beat.checks]
        self._keep_runs(beat.source, runs, now)
        return True

    def matching(self, shape: Shape, now: float) -> tuple[str, list[tuple[Any, ...]]] | None:
        """The host and its runs when a body of ``shape`` has the shape of the host's
        last heartbeat validated in full, and that one said nothing new
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
        return host, shape.runs(entry[2], host)

    def remember(self, host: str, shape: Shape, payload: dict[str, Any]) -> None:
        """``host``'s latest heartbeat (``payload``, validated in full) said nothing new
        or was just processed, and had ``shape``: the next ones of that shape need not
        be parsed or validated."""
        if shape.host != host:
            return
        layout = shape.layout(payload)
        if layout is None:
            return
        with self._lock:
            known = self._known.get(host)
            if known is not None:
                layout = self._layouts.setdefault(layout, layout) \
                    if len(self._layouts) < MAX_LAYOUTS else layout
                self._shapes[host] = (shape.key, known[0], layout)

    def keep_runs(self, host: str, runs: list[tuple[Any, ...]], now: float) -> bool:
        """Keep a matched heartbeat's times (:meth:`matching`); False if the host's
        state changed meanwhile (then it takes the full path)."""
        known = self._known.get(host)
        if known is None or now - known[1] >= FULL_EVERY:
            return False
        self._keep_runs(host, runs, now)
        return True

    def _keep_runs(self, host: str, runs: list[tuple[Any, ...]], now: float) -> None:
        with self._lock:
            self._kept[host] = (now, runs)
            if self._flusher is None:
                self._flusher = threading.Thread(target=_flush_loop, args=(weakref.ref(self),),
                                                 daemon=True, name="heartbeat-flush")
                self._flusher.start()

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
        """Write the kept times in one transaction; how many hosts were written."""
        with self._lock:
            kept, self._kept = self._kept, {}
        if not kept:
            return 0
        try:
            with self.store.transaction() as tx:
                unreachable = tx.touch_hosts(
                    [(at, host) for host, (at, _) in kept.items()],
                    [run for _, runs in kept.values() for run in runs])
        except StoreError as exc:
            log.warning("could not write %d hosts' heartbeat times: %s", len(kept), exc)
            unreachable = list(kept)  # their next heartbeats take the full path
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
