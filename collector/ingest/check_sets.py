"""``GET /api/v1/check-sets``: the checks the collector assigns to one host.

An agent asks with its host name and labels (``?host=db-01&label=role=db``), as it
names them in its heartbeats, and its agent token; a credential bound to hosts gets
only its own hosts' sets (403 otherwise). The answer is the merged assignment
(:mod:`collector.check_sets`) as JSON, its version as a strong ``ETag``; an
``If-None-Match`` naming the current version gets 304 and no body, so an agent that
polls every few minutes costs a header exchange.

Why labels come with the request rather than from the host's last heartbeat: an agent
pulls on start, before its first heartbeat has been processed, and must get its sets
then, not one poll interval later. Labels are the agent's claim either way (a
heartbeat's are too); a host-bound credential limits *which host*, the operator's
rules decide what a label earns.

Each pull is recorded per host in the store (collector/store/check_set_pulls.py, so
every replica's Hosts page and ``GET /api/v1/hosts`` show it, also after a restart):
the version the agent holds (its ``If-None-Match``), the version assigned now, and
when it asked. An agent re-asks at once after applying a new version, so "holds"
catches up within seconds.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response

from patrol.collector.access.auth import AGENT, require_host, require_principal
from patrol.collector.check_sets import CheckSets

router = APIRouter()

MAX_LABELS = 64

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the host's check sets; the ETag header carries their version",
          "headers": {"ETag": {"schema": {"type": "string"},
                               "description": "the version, quoted"}}},
    304: {"description": "the agent already holds this version (If-None-Match)"},
}


def _labels(pairs: list[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise HTTPException(422, f"label {pair[:100]!r} is not KEY=VALUE")
        labels[key] = value
    return labels


def _held(header: str | None) -> str | None:
    """The version an ``If-None-Match`` names (one, quoted or weak; else None)."""
    if not header:
        return None
    tag = header.split(",")[0].strip().removeprefix("W/").strip('"')[:64]
    return tag or None


@router.get("/api/v1/check-sets", tags=["ingest"], responses=_RESPONSES)
def get_check_sets(
    request: Request,
    host: Annotated[str, Query(min_length=1, max_length=255)],
    label: Annotated[list[str] | None, Query(max_length=MAX_LABELS)] = None,
) -> Any:
    """The checks assigned to ``host`` by its labels (``label=KEY=VALUE``, repeated)."""
    principal = require_principal(request, AGENT)
    require_host(principal, [host])
    labels = _labels([v[:1000] for v in label or []])
    check_sets: CheckSets = getattr(request.app.state, "check_sets", None) or CheckSets()
    assigned = check_sets.for_host(labels)
    held = _held(request.headers.get("if-none-match"))
    clock = getattr(request.app.state, "clock", time.time)
    with request.app.state.store.transaction() as tx:
        tx.record_check_set_pull(host, held, assigned.version, clock())
    etag = f'"{assigned.version}"'
    if held == assigned.version:
        return Response(status_code=304, headers={"ETag": etag})
    body = json.dumps(assigned.as_json(), separators=(",", ":"), default=str)
    return Response(content=body, media_type="application/json",
                    headers={"ETag": etag, "Cache-Control": "no-cache"})
