"""The operator API for credentials: ``/api/v1/credentials``.

Issue a per-agent credential bound to host-name globs (or a named operator token),
list them (never a token or its hash), rotate one (the old token keeps working for a
grace period) and revoke one. Every call needs an operator token.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from patrol.collector.access import credentials
from patrol.collector.access.auth import OPERATOR, require_principal

router = APIRouter(prefix="/api/v1/credentials", tags=["credentials"])

Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][\w.@-]*$")]
Glob = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[\w.*?\[\]!-]+$")]
Kind = Literal["agent", "operator"]


class IssueBody(BaseModel):
    kind: Kind = "agent"
    name: Name = Field(description="the agent (usually its host name) or the operator")
    hosts: list[Glob] = Field(default_factory=list, max_length=100,
                              description="host-name globs the agent may report; "
                                          "default: its name")


class RotateBody(BaseModel):
    grace_seconds: float = Field(default=credentials.DEFAULT_GRACE_SECONDS, ge=0,
                                 le=90 * 86400, description="how long the old token "
                                 "keeps working")


def _now(request: Request) -> float:
    return request.app.state.clock()


@router.post("", status_code=201)
def issue(request: Request, body: IssueBody) -> dict[str, Any]:
    """A new credential; the token is in this answer only."""
    operator = require_principal(request, OPERATOR)
    return credentials.issue(request.app.state.store, body.kind, body.name, body.hosts,
                             operator.name, _now(request))


@router.get("")
def listing(request: Request) -> dict[str, Any]:
    require_principal(request, OPERATOR)
    return {"credentials": credentials.listing(request.app.state.store, _now(request))}


@router.post("/{kind}/{name}/rotate")
def rotate(request: Request, kind: Kind, name: Name,
           body: RotateBody | None = None) -> dict[str, Any]:
    operator = require_principal(request, OPERATOR)
    body = body or RotateBody()
    done = credentials.rotate(request.app.state.store, kind, name, operator.name,
                              _now(request), body.grace_seconds)
    if done is None:
        raise HTTPException(404, f"no live {kind} credential named {name!r}")
    request.app.state.tokens.forget()
    return done


@router.post("/{kind}/{name}/revoke")
def revoke(request: Request, kind: Kind, name: Name) -> dict[str, Any]:
    require_principal(request, OPERATOR)
    count = credentials.revoke(request.app.state.store, kind, name, _now(request))
    if not count:
        raise HTTPException(404, f"no live {kind} credential named {name!r}")
    request.app.state.tokens.forget()
    return {"revoked": count, "kind": kind, "name": name}
