"""Queries for the helpdesk dispatch outbox and the links to external tickets.

Mixed into the SQL reads and transactions of both backends.

Claiming takes, per (ticket, helpdesk), only the OLDEST pending row, so actions reach
a helpdesk in the order they happened (never a comment before the ticket exists),
and leases it for ``lease`` seconds by moving ``next_at``. A claim is fenced: it
writes a fresh token into ``lease_owner`` and every outcome (complete, retry, fail)
and every renewal is conditional on that token still being there. A claimer whose
lease lapsed (it paused, or its renewals stopped reaching the database) and whose
row was claimed again finds its writes refused (they return False) instead of
overwriting the new owner's outcome. On PostgreSQL the claim uses ``FOR UPDATE SKIP
LOCKED``, so several collectors claiming at once never get the same row.

Optional filters are written into the SQL only when given: PostgreSQL cannot type a
bare ``$1 IS NULL``, so ``(? IS NULL OR col = ?)`` fails there.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

_COLUMNS = ("id, ticket_id, helpdesk, action, payload, created_at, next_at, attempts, state, "
            "last_error, done_at, lease_owner")


def _where(**filters: Any) -> tuple[str, list[Any]]:
    """``col = ?`` for each filter that is not None, ANDed (``1 = 1`` when none)."""
    given = {column: value for column, value in filters.items() if value is not None}
    clause = " AND ".join(f"{column} = ?" for column in given) or "1 = 1"
    return clause, list(given.values())


class DispatchReads:
    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Mapping[str, Any]]:
        raise NotImplementedError

    def _load(self, value: Any) -> Any:
        raise NotImplementedError

    def _dispatch_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(row)
        out["payload"] = self._load(row["payload"])
        return out

    def dispatch_rows(self, ticket_id: int | None = None,
                      state: str | None = None) -> list[dict[str, Any]]:
        where, params = _where(ticket_id=ticket_id, state=state)
        rows = self._rows(f"SELECT {_COLUMNS} FROM dispatch WHERE {where} ORDER BY id", params)
        return [self._dispatch_row(r) for r in rows]

    def dispatch_backlog(self, now: float) -> list[dict[str, Any]]:
        """Per helpdesk and state: how many rows, and the oldest one's age."""
        rows = self._rows("SELECT helpdesk, state, COUNT(*) AS n, MIN(created_at) AS oldest"
                          " FROM dispatch WHERE state != 'done' GROUP BY helpdesk, state")
        return [{"helpdesk": r["helpdesk"], "state": r["state"], "count": int(r["n"]),
                 "oldest_age_seconds": max(0.0, now - r["oldest"])} for r in rows]

    def links(self, ticket_id: int | None = None) -> list[dict[str, Any]]:
        where, params = _where(ticket_id=ticket_id)
        rows = self._rows(
            "SELECT ticket_id, helpdesk, external_id, url, destination, remote_state,"
            f" remote_assignee, synced_at, error FROM ticket_links WHERE {where}"
            " ORDER BY ticket_id, helpdesk", params)
        return [{**dict(r), "destination": self._load(r["destination"])} for r in rows]

    def link(self, ticket_id: int, helpdesk: str) -> dict[str, Any] | None:
        found = [link for link in self.links(ticket_id) if link["helpdesk"] == helpdesk]
        return found[0] if found else None


class DispatchWrites(DispatchReads):
    _skip_locked = ""

    def _run(self, sql: str, params: Sequence[Any] = ()) -> int:
        raise NotImplementedError

    def _dump(self, value: Any) -> Any:
        raise NotImplementedError

    def enqueue_dispatch(self, ticket_id: int, helpdesk: str, action: str,
                         payload: dict[str, Any], now: float) -> None:
        self._run("INSERT INTO dispatch (ticket_id, helpdesk, action, payload, created_at,"
                  " next_at) VALUES (?, ?, ?, ?, ?, ?)",
                  (ticket_id, helpdesk, action, self._dump(payload), now, now))

    def claim_dispatch(self, now: float, limit: int, lease: float, owner: str = "", *,
                       helpdesk: str | None = None,
                       other_than: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Lease up to ``limit`` due rows (of ``helpdesk``, or of any helpdesk not in
        ``other_than``) until ``now + lease``, oldest first.

        Every returned row's ``lease_owner`` is this claim's token (``owner`` plus a
        random part): pass it to renew/complete/retry/fail. ``taken_over`` is True
        when the row was leased before and its lease lapsed with no outcome (its
        claimer died or stalled): the action may have reached the helpdesk already.
        """
        if limit <= 0:
            return []
        where, params = _where(helpdesk=helpdesk)
        if other_than:
            where += f" AND helpdesk NOT IN ({', '.join('?' for _ in other_than)})"
            params.extend(other_than)
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM dispatch WHERE state = 'pending' AND next_at <= ?"
            f" AND {where} AND id IN (SELECT MIN(id) FROM dispatch WHERE state = 'pending'"
            f" AND {where} GROUP BY ticket_id, helpdesk) ORDER BY id LIMIT ?"
            + self._skip_locked, (now, *params, *params, limit))
        if not rows:
            return []
        token = f"{owner}:{uuid.uuid4().hex[:12]}"
        ids = [row["id"] for row in rows]
        self._run(f"UPDATE dispatch SET next_at = ?, lease_owner = ?"
                  f" WHERE id IN ({', '.join('?' for _ in ids)})", (now + lease, token, *ids))
        claimed = []
        for row in rows:
            out = self._dispatch_row(row)
            out.update(taken_over=row["lease_owner"] is not None, lease_owner=token,
                       next_at=now + lease)
            claimed.append(out)
        return claimed

    def renew_dispatch(self, dispatch_id: int, token: str, until: float) -> bool:
        """Extend this claim's lease to ``until``; False if the claim no longer owns
        the row (its lease lapsed and someone else claimed it, or it has an outcome)."""
        return self._run("UPDATE dispatch SET next_at = ? WHERE id = ? AND lease_owner = ?"
                         " AND state = 'pending'", (until, dispatch_id, token)) == 1

    def release_leases(self, now: float) -> int:
        """Make rows leased by a collector that died due now (only safe where this is
        the only collector: the embedded SQLite store)."""
        return self._run("UPDATE dispatch SET next_at = ?, lease_owner = NULL"
                         " WHERE state = 'pending' AND lease_owner IS NOT NULL", (now,))

    def _settle(self, sets: str, params: Sequence[Any], dispatch_id: int, token: str) -> bool:
        return self._run(f"UPDATE dispatch SET {sets}, lease_owner = NULL WHERE id = ?"
                         " AND lease_owner = ? AND state = 'pending'",
                         (*params, dispatch_id, token)) == 1

    def complete_dispatch(self, dispatch_id: int, now: float, token: str) -> bool:
        """Delivered. False (and nothing written) if claim ``token`` lost the row."""
        return self._settle("state = 'done', done_at = ?, last_error = NULL", (now,),
                            dispatch_id, token)

    def retry_dispatch(self, dispatch_id: int, next_at: float, error: str, token: str) -> bool:
        """Due again at ``next_at``. False (and nothing written) if ``token`` lost it."""
        return self._settle("attempts = attempts + 1, next_at = ?, last_error = ?",
                            (next_at, error[:2000]), dispatch_id, token)

    def fail_dispatch(self, dispatch_id: int, now: float, error: str, token: str) -> bool:
        """Permanent: kept as ``failed`` (visible, re-queueable), never retried alone.
        False (and nothing written) if claim ``token`` lost the row."""
        return self._settle("attempts = attempts + 1, state = 'failed', done_at = ?,"
                            " last_error = ?", (now, error[:2000]), dispatch_id, token)

    def prune_dispatch(self, before: float) -> int:
        """Delete delivered rows finished before ``before`` (failed ones stay: a
        person has to look at them)."""
        return self._run("DELETE FROM dispatch WHERE state = 'done' AND done_at < ?", (before,))

    def requeue_failed(self, helpdesk: str | None, now: float) -> int:
        """Failed rows (of ``helpdesk``, or all) become due now; how many."""
        where, params = _where(helpdesk=helpdesk)
        return self._run("UPDATE dispatch SET state = 'pending', next_at = ?, last_error = NULL,"
                         f" done_at = NULL WHERE state = 'failed' AND {where}", (now, *params))

    def save_link(self, ticket_id: int, helpdesk: str, external_id: str, url: str | None,
                  destination: dict[str, Any]) -> None:
        self._run(
            "INSERT INTO ticket_links (ticket_id, helpdesk, external_id, url, destination)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (ticket_id, helpdesk) DO UPDATE SET"
            " external_id = excluded.external_id, url = excluded.url, error = NULL",
            (ticket_id, helpdesk, external_id, url, self._dump(destination)))

    def set_link_state(self, ticket_id: int, helpdesk: str, remote_state: str | None,
                       assignee: str | None, now: float, error: str | None = None) -> None:
        self._run("UPDATE ticket_links SET remote_state = ?, remote_assignee = ?,"
                  " synced_at = ?, error = ? WHERE ticket_id = ? AND helpdesk = ?",
                  (remote_state, assignee, now, error, ticket_id, helpdesk))

    def cancel_unsent_open(self, ticket_id: int, helpdesk: str) -> bool:
        """Withdraw a ticket's ``open`` for ``helpdesk`` that has not been sent (pending
        and not leased by a worker, never attempted), with everything queued behind it.
        True if there was one: the helpdesk never heard of the ticket. False: it was
        sent, is in flight, was attempted (a timed-out attempt may have created it:
        its retry adopts that ticket), or was never queued."""
        if not self._run("DELETE FROM dispatch WHERE ticket_id = ? AND helpdesk = ?"
                         " AND action = 'open' AND state = 'pending' AND attempts = 0"
                         " AND lease_owner IS NULL", (ticket_id, helpdesk)):
            return False
        self._run("DELETE FROM dispatch WHERE ticket_id = ? AND helpdesk = ?"
                  " AND state = 'pending' AND lease_owner IS NULL", (ticket_id, helpdesk))
        return True

    def unsent_dispatch(self, ticket_id: int, helpdesk: str) -> list[dict[str, Any]]:
        """The rows for ``ticket_id`` and ``helpdesk`` no worker has taken yet, oldest
        first (a row being delivered right now is not among them)."""
        rows = self._rows(f"SELECT {_COLUMNS} FROM dispatch WHERE ticket_id = ?"
                          " AND helpdesk = ? AND state = 'pending' AND lease_owner IS NULL"
                          " ORDER BY id", (ticket_id, helpdesk))
        return [self._dispatch_row(r) for r in rows]

    def amend_unsent_dispatch(self, dispatch_id: int, payload: dict[str, Any],
                              action: str | None = None) -> bool:
        """Replace the payload (and the action, if given) of a row no worker has taken
        yet; False if one took it meanwhile (then the caller queues a new row)."""
        return bool(self._run("UPDATE dispatch SET payload = ?, action = COALESCE(?, action)"
                              " WHERE id = ? AND state = 'pending' AND lease_owner IS NULL",
                              (self._dump(payload), action, dispatch_id)))
