"""Issuing, rotating and revoking credentials: the operations behind the operator API
and ``patrol agents`` / ``patrol operators``. The token is returned once, here, and
only its hash is kept."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from patrol.collector.access.identity import AGENT, digest, live, new_token

if TYPE_CHECKING:
    from patrol.collector.store.base import TicketStore

DEFAULT_GRACE_SECONDS = 86400.0


def issue(store: TicketStore, kind: str, name: str, hosts: list[str], by: str, now: float,
          expires_at: float | None = None) -> dict[str, Any]:
    """A new credential; ``hosts`` (globs) matter for agents only (default: the name)."""
    bound = (hosts or [name]) if kind == AGENT else []
    token = new_token(kind)
    with store.transaction() as tx:
        ident = tx.add_credential(kind, name, digest(token), bound, now, by, expires_at)
    return {"id": ident, "kind": kind, "name": name, "hosts": bound, "token": token,
            "expires_at": expires_at}


def rotate(store: TicketStore, kind: str, name: str, by: str, now: float,
           grace_seconds: float = DEFAULT_GRACE_SECONDS) -> dict[str, Any] | None:
    """A new token for ``name`` (same hosts); the old ones keep working for
    ``grace_seconds`` so agents can be switched over without a gap. None if ``name``
    has no live credential."""
    current = [c for c in store.credentials(kind) if c["name"] == name and live(c, now)]
    if not current:
        return None
    hosts = current[-1]["hosts"]
    token = new_token(kind)
    with store.transaction() as tx:
        tx.expire_credentials(kind, name, now + grace_seconds)
        ident = tx.add_credential(kind, name, digest(token), hosts, now, by)
    return {"id": ident, "kind": kind, "name": name, "hosts": hosts, "token": token,
            "previous_valid_until": now + grace_seconds}


def revoke(store: TicketStore, kind: str, name: str, now: float) -> int:
    """End every token of ``name`` now; how many were live."""
    with store.transaction() as tx:
        return tx.revoke_credentials(kind, name, now)


def listing(store: TicketStore, now: float) -> list[dict[str, Any]]:
    """Every credential without its hash, and whether it works now."""
    return [{**{k: v for k, v in c.items() if k != "token_sha256"}, "live": live(c, now)}
            for c in store.credentials() if c["kind"] != "login_code"]
