"""Queries for credentials (per-agent and named operator tokens, one-time login codes)
and web sessions. Mixed into the SQL reads and transactions of both backends.

Only the SHA-256 of a token is stored: the tokens are 256-bit random values, so a
plain hash is as good as a slow one (nobody can guess through 2^256), and a database
dump hands out no working credential. A lookup is by that hash (an indexed equality);
the caller compares again in constant time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

_CREDENTIAL = ("id, kind, name, token_sha256, hosts, created_at, expires_at, revoked_at, "
               "created_by")
_SESSION = "id, session_sha256, operator, csrf, created_at, expires_at, revoked_at"


def _credential(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["hosts"] = json.loads(row["hosts"]) if row["hosts"] else []
    return out


class CredentialReads:
    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Mapping[str, Any]]:
        raise NotImplementedError

    def credential_by_hash(self, token_sha256: str) -> dict[str, Any] | None:
        rows = self._rows(f"SELECT {_CREDENTIAL} FROM credentials WHERE token_sha256 = ?",
                          (token_sha256,))
        return _credential(rows[0]) if rows else None

    def credentials(self, kind: str | None = None) -> list[dict[str, Any]]:
        if kind is None:
            rows = self._rows(f"SELECT {_CREDENTIAL} FROM credentials ORDER BY kind, name, id")
        else:
            rows = self._rows(f"SELECT {_CREDENTIAL} FROM credentials WHERE kind = ?"
                              " ORDER BY name, id", (kind,))
        return [_credential(r) for r in rows]

    def web_session(self, session_sha256: str) -> dict[str, Any] | None:
        rows = self._rows(f"SELECT {_SESSION} FROM web_sessions WHERE session_sha256 = ?",
                          (session_sha256,))
        return dict(rows[0]) if rows else None

    def collector_key(self, name: str) -> str | None:
        rows = self._rows("SELECT value FROM collector_keys WHERE name = ?", (name,))
        return rows[0]["value"] if rows else None


class CredentialWrites(CredentialReads):
    def _run(self, sql: str, params: Sequence[Any] = ()) -> int:
        raise NotImplementedError

    def add_credential(self, kind: str, name: str, token_sha256: str, hosts: list[str],
                       created_at: float, created_by: str,
                       expires_at: float | None = None) -> int:
        return self._rows(
            "INSERT INTO credentials (kind, name, token_sha256, hosts, created_at, expires_at,"
            " created_by) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (kind, name, token_sha256, json.dumps(hosts), created_at, expires_at,
             created_by))[0]["id"]

    def expire_credentials(self, kind: str, name: str, at: float) -> int:
        """Every live credential of ``name`` stops working at ``at`` (rotation's grace)."""
        return self._run("UPDATE credentials SET expires_at = ? WHERE kind = ? AND name = ?"
                         " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
                         (at, kind, name, at))

    def revoke_credentials(self, kind: str, name: str, at: float) -> int:
        return self._run("UPDATE credentials SET revoked_at = ? WHERE kind = ? AND name = ?"
                         " AND revoked_at IS NULL", (at, kind, name))

    def revoke_credential(self, credential_id: int, at: float) -> bool:
        return self._run("UPDATE credentials SET revoked_at = ? WHERE id = ?"
                         " AND revoked_at IS NULL", (at, credential_id)) == 1

    def add_web_session(self, session_sha256: str, operator: str, csrf: str,
                        created_at: float, expires_at: float) -> None:
        self._run("INSERT INTO web_sessions (session_sha256, operator, csrf, created_at,"
                  " expires_at) VALUES (?, ?, ?, ?, ?)",
                  (session_sha256, operator, csrf, created_at, expires_at))

    def end_web_session(self, session_sha256: str, at: float) -> bool:
        return self._run("UPDATE web_sessions SET revoked_at = ? WHERE session_sha256 = ?"
                         " AND revoked_at IS NULL", (at, session_sha256)) == 1

    def prune_web_sessions(self, before: float) -> int:
        return self._run("DELETE FROM web_sessions WHERE expires_at < ?", (before,))

    def ensure_collector_key(self, name: str, value: str) -> str:
        """The key called ``name``; ``value`` becomes it if there is none yet (the first
        collector to ask wins, so replicas sharing a database share the key)."""
        self._run("INSERT INTO collector_keys (name, value) VALUES (?, ?)"
                  " ON CONFLICT (name) DO NOTHING", (name, value))
        return self._rows("SELECT value FROM collector_keys WHERE name = ?", (name,))[0]["value"]
