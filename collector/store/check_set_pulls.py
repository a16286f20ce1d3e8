"""Each host's last check-set pull, in the store: which version it holds, which one is
assigned to it, and when it asked (``GET /api/v1/check-sets``).

Kept in the collector's memory before, so the Hosts page of one replica knew only the
pulls that replica had served, and every restart forgot them all until each agent's
next poll. The store is what replicas share and what survives a restart. A host that
stops pulling is forgotten after the event retention (the watchdog's prune duty), so
a shared token naming made-up hosts cannot grow the table without bound.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class CheckSetPullReads:
    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Mapping[str, Any]]:
        raise NotImplementedError

    def check_set_pulls(self) -> dict[str, dict[str, Any]]:
        """host -> {"held", "assigned", "at"} of its last pull."""
        rows = self._rows("SELECT host, held, assigned, pulled_at FROM check_set_pulls")
        return {row["host"]: {"held": row["held"], "assigned": row["assigned"],
                              "at": row["pulled_at"]} for row in rows}


class CheckSetPullWrites(CheckSetPullReads):
    def _run(self, sql: str, params: Sequence[Any] = ()) -> int:
        raise NotImplementedError

    def record_check_set_pull(self, host: str, held: str | None, assigned: str,
                              at: float) -> None:
        self._run("INSERT INTO check_set_pulls (host, held, assigned, pulled_at)"
                  " VALUES (?, ?, ?, ?) ON CONFLICT (host) DO UPDATE SET held = excluded.held,"
                  " assigned = excluded.assigned, pulled_at = excluded.pulled_at",
                  (host, held, assigned, at))

    def prune_check_set_pulls(self, before: float) -> int:
        return self._run("DELETE FROM check_set_pulls WHERE pulled_at < ?", (before,))


def migration_sql(real: str) -> tuple[str, ...]:
    return (f"CREATE TABLE check_set_pulls (host TEXT PRIMARY KEY, held TEXT,"
            f" assigned TEXT NOT NULL, pulled_at {real} NOT NULL)",)
