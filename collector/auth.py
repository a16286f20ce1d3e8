"""Bearer tokens of two kinds: agents post observations, operators act on tickets.

No token (or an unknown one) is 401; a valid token of the wrong kind is 403, so
a leaked agent token can report but never close a ticket. Comparisons are
constant-time. Browsers get the operator token as an HttpOnly cookie from
``/login`` so the web pages need no JavaScript.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from fastapi import HTTPException, Request

COOKIE = "patrol_token"

AGENT = "agent"
OPERATOR = "operator"


class TokenBook:
    """Which token is of which kind."""

    def __init__(self, agent_tokens: Iterable[str], operator_tokens: Iterable[str]) -> None:
        self._tokens = [(t.encode(), AGENT) for t in agent_tokens] + [
            (t.encode(), OPERATOR) for t in operator_tokens]

    def kind_of(self, token: str | None) -> str | None:
        if not token:
            return None
        given = token.encode()
        found = None
        for known, kind in self._tokens:  # no early exit: timing says nothing
            if hmac.compare_digest(known, given):
                found = kind
        return found


def presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(COOKIE)


def require(request: Request, kind: str) -> str:
    """The token's kind if it is ``kind``; raises 401/403 otherwise."""
    book: TokenBook = request.app.state.tokens
    found = book.kind_of(presented_token(request))
    if found is None:
        raise HTTPException(401, "a valid bearer token is required",
                            headers={"WWW-Authenticate": "Bearer"})
    if found != kind:
        raise HTTPException(403, f"this needs an {kind} token; an {found} token cannot do it")
    return found
