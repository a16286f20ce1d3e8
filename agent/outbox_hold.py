"""State changes the outbox could not write (a full or read-only disk), held in memory.

Why not just log and drop: a breach that happens while ``/var`` is full is exactly the
one the operator needs, and the collector would otherwise see the host fall silent
and open a false "unreachable" ticket. So the outbox keeps what it cannot write here,
the pusher delivers it from here (ids are negative, so they never collide with
rows on disk), and the outbox moves it to disk when space returns.

Bounded: one slot per (collector, check) -- the newest state of a check wins, the
state it replaces is a real drop and counted -- one heartbeat per collector, and at
most ``limit`` slots in all (the oldest goes first, counted too).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from patrol.agent.outbox import Row

DEFAULT_LIMIT = 10_000


def slot_of(row: Row) -> tuple[str, str]:
    """Which earlier held row a new one replaces: the same check's state, or the
    collector's one heartbeat (itself the full state)."""
    if row.kind == "heartbeat":
        return (row.collector, "\0heartbeat")
    return (row.collector, str(row.payload.get("dedup_key") or row.key))


class HeldRows:
    """Not thread-safe: the outbox calls it under its own lock."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._rows: dict[tuple[str, str], Row] = {}  # insertion order = age
        self._retry_at: dict[int, float] = {}
        self._ids = itertools.count(-1, -1)

    def __len__(self) -> int:
        return len(self._rows)

    def new_id(self) -> int:
        return next(self._ids)

    def hold(self, row: Row) -> list[Row]:
        """Keep ``row``; returns the rows it pushed out (replaced or over the limit)."""
        lost = []
        replaced = self._rows.pop(slot_of(row), None)
        if replaced is not None:
            lost.append(replaced)
        self._rows[slot_of(row)] = row
        while len(self._rows) > self.limit:
            oldest = next(iter(self._rows))
            lost.append(self._rows.pop(oldest))
        for gone in lost:
            self._retry_at.pop(gone.id, None)
        return lost

    def due(self, collector: str, kind: str, now: float, limit: int) -> list[Row]:
        """Up to ``limit`` rows in sequence order, stopping at one still backing off."""
        rows = sorted((r for r in self._rows.values()
                       if r.collector == collector and r.kind == kind),
                      key=lambda r: (r.sequence, -r.id))
        out = []
        for row in rows[:limit]:
            if self._retry_at.get(row.id, 0.0) > now:
                break
            out.append(row)
        return out

    def next_due(self, collector: str) -> float | None:
        times = [self._retry_at.get(r.id, 0.0) for r in self._rows.values()
                 if r.collector == collector]
        return min(times) if times else None

    def retry_at(self, ids: set[int], when: float) -> None:
        for row in self._rows.values():
            if row.id in ids:
                self._retry_at[row.id] = when

    def remove(self, ids: set[int]) -> list[Row]:
        gone = [slot for slot, row in self._rows.items() if row.id in ids]
        removed = [self._rows.pop(slot) for slot in gone]
        for row in removed:
            self._retry_at.pop(row.id, None)
        return removed

    def all(self) -> list[Row]:
        """Every held row, oldest sequence first (for moving them to disk)."""
        return sorted(self._rows.values(), key=lambda r: (r.sequence, -r.id))

    def clear(self) -> None:
        self._rows.clear()
        self._retry_at.clear()

    def count(self, kind: str) -> int:
        return sum(1 for r in self._rows.values() if r.kind == kind)

    def oldest(self) -> float | None:
        return min((r.created_at for r in self._rows.values()), default=None)
