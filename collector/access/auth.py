"""Bearer tokens of two kinds: agents post observations, operators act on tickets.

No token (or an unknown one) is 401; a valid token of the wrong kind is 403, so
a leaked agent token can report but never close a ticket. Tokens are compared as
SHA-256 digests in constant time (:mod:`collector.access.identity`), and may be shared ones
from the configuration or credentials issued per agent (bound to host names) and per
operator (named, for the audit trail).

Only the ``Authorization: Bearer`` header counts here: the web pages' session cookie
(:mod:`collector.access.sessions`) is not a token and opens no JSON endpoint, so a page a
browser is tricked into loading cannot drive the API with it.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import HTTPException, Request

from patrol.collector.access.identity import AGENT, OPERATOR, IdentityBook, Principal

__all__ = [
    "AGENT",
    "OPERATOR",
    "Principal",
    "TokenBook",
    "bearer",
    "presented_token",
    "principal_for",
    "require",
    "require_host",
    "require_principal",
]


class TokenBook(IdentityBook):
    """Which token is of which kind (and, through :meth:`principal`, whose it is)."""

    def kind_of(self, token: str | None) -> str | None:
        found = self.principal(token)
        return found.kind if found is not None else None


def bearer(header: str) -> str | None:
    """The token of an ``Authorization: Bearer`` header value, if it is one."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def presented_token(request: Request) -> str | None:
    return bearer(request.headers.get("authorization", ""))


def require_principal(request: Request, kind: str) -> Principal:
    """The caller if it holds a ``kind`` token; raises 401/403 otherwise."""
    return principal_for(request.app.state.tokens, request.headers.get("authorization", ""),
                         kind)


def principal_for(book: TokenBook, authorization: str, kind: str) -> Principal:
    """:func:`require_principal` from the ``Authorization`` header's value itself: the
    ingest fast path (collector/ingest/fastpath.py) has the raw ASGI headers and no
    Request object, and must not build one per request just to read one header."""
    found = book.principal(bearer(authorization))
    if found is None:
        raise HTTPException(401, "a valid bearer token is required",
                            headers={"WWW-Authenticate": "Bearer"})
    if found.kind != kind:
        raise HTTPException(403, f"this needs an {kind} token; an {found.kind} token "
                            "cannot do it")
    return found


def require(request: Request, kind: str) -> str:
    """The token's kind if it is ``kind``; raises 401/403 otherwise."""
    return require_principal(request, kind).kind


def require_host(principal: Principal, hosts: Iterable[str]) -> None:
    """403 unless ``principal`` may report every host in ``hosts``."""
    refused = sorted({h for h in hosts if not principal.may_report(h)})
    if refused:
        allowed = ", ".join(principal.hosts or ()) or "no host"
        raise HTTPException(403, f"the credential of agent {principal.name!r} may report "
                            f"only {allowed}, not {', '.join(refused[:5])}")
