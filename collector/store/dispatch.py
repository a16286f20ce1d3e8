"""Queries for the helpdesk dispatch outbox and the links to external tickets.

Mixed into the SQL reads and transactions of both backends. Claiming takes, per
(ticket, helpdesk), only the OLDEST pending row, so actions reach a helpdesk in
the order they happened (never a comment before the ticket exists), and leases
it for ``lease`` seconds by moving ``next_at``: a worker that dies mid-request
leaves the row to be retried after the lease, and the adapter's fingerprint
lookup keeps that retry from creating a second ticket. On PostgreSQL the claim
uses ``FOR UPDATE SKIP LOCKED`` so several collectors share the work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_COLUMNS = ("id, ticket_id, helpdesk, action, payload, created_at, next_at, attempts, state, "
            "last_error, done_at")


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
        rows = self._rows(
            # Typed: PostgreSQL cannot tell the type of a bare NULL parameter.
            f"SELECT {_COLUMNS} FROM dispatch WHERE (CAST(? AS BIGINT) IS NULL OR ticket_id = ?)"
            " AND (CAST(? AS TEXT) IS NULL OR state = ?) ORDER BY id",
            (ticket_id, ticket_id, state, state))
        return [self._dispatch_row(r) for r in rows]

    def dispatch_backlog(self, now: float) -> list[dict[str, Any]]:
        """Per helpdesk and state: how many rows, and the oldest one's age."""
        rows = self._rows("SELECT helpdesk, state, COUNT(*) AS n, MIN(created_at) AS oldest"
                          " FROM dispatch WHERE state != 'done' GROUP BY helpdesk, state")
        return [{"helpdesk": r["helpdesk"], "state": r["state"], "count": int(r["n"]),
                 "oldest_age_seconds": max(0.0, now - r["oldest"])} for r in rows]

    def links(self, ticket_id: int | None = None) -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT ticket_id, helpdesk, external_id, url, destination, remote_state,"
            " remote_assignee, synced_at, error FROM ticket_links"
            " WHERE (CAST(? AS BIGINT) IS NULL OR ticket_id = ?) ORDER BY ticket_id, helpdesk",
            (ticket_id, ticket_id))
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

    def claim_dispatch(self, now: float, limit: int, lease: float,
                       owner: str = "") -> list[dict[str, Any]]:
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM dispatch WHERE state = 'pending' AND next_at <= ?"
            " AND id IN (SELECT MIN(id) FROM dispatch WHERE state = 'pending'"
            " GROUP BY ticket_id, helpdesk) ORDER BY id LIMIT ?" + self._skip_locked,
            (now, limit))
        for row in rows:
            self._run("UPDATE dispatch SET next_at = ?, lease_owner = ? WHERE id = ?",
                      (now + lease, owner, row["id"]))
        return [self._dispatch_row(r) for r in rows]

    def release_leases(self, now: float) -> int:
        """Make rows leased by a collector that died due now (only safe where this is
        the only collector: the embedded SQLite store)."""
        return self._run("UPDATE dispatch SET next_at = ?, lease_owner = NULL"
                         " WHERE state = 'pending' AND lease_owner IS NOT NULL", (now,))

    def complete_dispatch(self, dispatch_id: int, now: float) -> None:
        self._run("UPDATE dispatch SET state = 'done', done_at = ?, last_error = NULL,"
                  " lease_owner = NULL WHERE id = ?", (now, dispatch_id))

    def retry_dispatch(self, dispatch_id: int, next_at: float, error: str) -> None:
        self._run("UPDATE dispatch SET attempts = attempts + 1, next_at = ?, last_error = ?,"
                  " lease_owner = NULL WHERE id = ?", (next_at, error[:2000], dispatch_id))

    def fail_dispatch(self, dispatch_id: int, now: float, error: str) -> None:
        """Permanent: kept as ``failed`` (visible, re-queueable), never retried alone."""
        self._run("UPDATE dispatch SET attempts = attempts + 1, state = 'failed',"
                  " done_at = ?, last_error = ?, lease_owner = NULL WHERE id = ?",
                  (now, error[:2000], dispatch_id))

    def prune_dispatch(self, before: float) -> int:
        """Delete delivered rows finished before ``before`` (failed ones stay: a
        person has to look at them)."""
        return self._run("DELETE FROM dispatch WHERE state = 'done' AND done_at < ?", (before,))

    def requeue_failed(self, helpdesk: str | None, now: float) -> int:
        return self._run("UPDATE dispatch SET state = 'pending', next_at = ?, last_error = NULL"
                         " WHERE state = 'failed' AND (? IS NULL OR helpdesk = ?)",
                         (now, helpdesk, helpdesk))

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

    # -- fleet incidents (collector.fleet): one helpdesk ticket per incident -------------

    def cancel_unsent_open(self, ticket_id: int, helpdesk: str) -> bool:
        """Withdraw a ticket's ``open`` for ``helpdesk`` that has not been sent (pending
        and not leased by a worker), with everything queued behind it. True if there
        was one: the helpdesk never heard of the ticket. False: it was sent, is in
        flight, or never queued."""
        if not self._run("DELETE FROM dispatch WHERE ticket_id = ? AND helpdesk = ?"
                         " AND action = 'open' AND state = 'pending'"
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
