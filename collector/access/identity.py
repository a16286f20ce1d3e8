"""Who is calling: the principal behind a bearer token, and which hosts it may report.

Two sources of tokens, checked in this order:

* **Shared tokens** from the configuration (``collector.agent_tokens`` /
  ``operator_tokens``, or the pair ``patrol up`` generates): any host, operator name
  "operator". Kept for a one-host ``patrol up`` and for bootstrapping.
* **Issued credentials** in the store (``patrol agents issue``, ``patrol operators
  issue``): one per agent, bound to host-name globs, or one per named operator. Only
  their SHA-256 is stored. Rotation issues a second token for the same name and lets
  the old one expire after a grace period, so both work while agents are updated;
  revocation ends every token of a name at once.

A store lookup is cached for :data:`CACHE_SECONDS` per token hash, so the ingest path
costs no query per request; revoking or expiring takes effect within that time.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from patrol.collector.store.base import TicketStore

AGENT = "agent"
OPERATOR = "operator"
LOGIN_CODE = "login_code"
TOKEN_PREFIX = {AGENT: "pat_a_", OPERATOR: "pat_o_", LOGIN_CODE: "pat_l_"}
CACHE_SECONDS = 2.0
_CACHE_LIMIT = 10_000


def new_token(kind: str) -> str:
    """A fresh 256-bit token; the prefix says its kind to a human reading a config."""
    return TOKEN_PREFIX[kind] + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``hosts`` is None for "any host" (shared tokens)."""

    kind: str
    name: str
    hosts: tuple[str, ...] | None = None
    credential_id: int | None = None

    @property
    def named(self) -> bool:
        """Whether the name identifies one person or agent (an issued credential)."""
        return self.credential_id is not None

    def may_report(self, host: str) -> bool:
        if self.hosts is None:
            return True
        return any(fnmatch.fnmatchcase(host.lower(), glob.lower()) for glob in self.hosts)


def live(credential: dict[str, Any], now: float) -> bool:
    expires = credential.get("expires_at")
    return credential.get("revoked_at") is None and (expires is None or expires > now)


class IdentityBook:
    """Resolves tokens to principals: shared tokens first, then the store."""

    def __init__(self, agent_tokens: Iterable[str], operator_tokens: Iterable[str],
                 store: TicketStore | None = None, clock: Callable[[], float] = time.time) -> None:
        self._shared = [(digest(t).encode(), AGENT) for t in agent_tokens] + [
            (digest(t).encode(), OPERATOR) for t in operator_tokens]
        self.store = store
        self._clock = clock
        # hash -> (cached until, monotonic; the principal; when the credential expires)
        self._cache: dict[str, tuple[float, Principal | None, float | None]] = {}
        self._lock = threading.Lock()

    def principal(self, token: str | None) -> Principal | None:
        if not token:
            return None
        hashed = digest(token)
        given = hashed.encode()
        found = None
        for known, kind in self._shared:  # no early exit: timing says nothing
            if hmac.compare_digest(known, given):
                found = Principal(kind, kind)
        if found is not None or self.store is None:
            return found
        return self._issued(hashed)

    def _issued(self, hashed: str) -> Principal | None:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(hashed)
        if cached is not None and cached[0] > now:
            expires = cached[2]
            return cached[1] if expires is None or expires > self._clock() else None
        if self.store is None:  # principal() asks only when there is one
            return None
        row = self.store.credential_by_hash(hashed)
        principal = None
        if row is not None and hmac.compare_digest(row["token_sha256"], hashed) \
                and live(row, self._clock()) and row["kind"] in (AGENT, OPERATOR):
            principal = Principal(row["kind"], row["name"],
                                  tuple(row["hosts"]) if row["kind"] == AGENT else None,
                                  row["id"])
        with self._lock:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[hashed] = (now + CACHE_SECONDS, principal,
                                   row["expires_at"] if row else None)
        return principal

    def forget(self) -> None:
        """Drop cached lookups (after this collector revoked or rotated something)."""
        with self._lock:
            self._cache.clear()
