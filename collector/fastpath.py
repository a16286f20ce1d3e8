"""The agents' two hot requests without FastAPI's per-request machinery.

``POST /api/v1/events`` and ``POST /api/v1/heartbeats`` are most of the
collector's traffic. Through FastAPI each one builds a Request, solves the
route's dependencies, validates the body through a TypeAdapter and encodes the
answer with ``jsonable_encoder``: measured at about 0.5 ms of CPU per request,
more than the engine's own work for a heartbeat (0.2 ms). This ASGI middleware
answers those requests itself when they will succeed, with the same parsing
(``json.loads`` then the wire models' ``model_validate``, as FastAPI does) and
the same 202 JSON answer.

Decision: it only ever takes the success path. Anything it is not sure of -- no
``Authorization: Bearer`` header or a token that is not an agent's, a content type
other than ``application/json``, an empty body, invalid JSON, a payload the models
refuse -- is handed to the FastAPI app unchanged (the body replayed), so every
error answer (401/403/422) stays FastAPI's own and is documented in one place.
It sits inside :class:`collector.api.BodyLimit`, so oversized bodies never reach it.

Both paths clean the parsed body the same way before validating it
(:func:`collector.store.clean.clean_json`: NUL and lone surrogates to U+FFFD, NaN to
null), and both answer a store failure with :func:`store_unavailable` (503 and
``Retry-After``) and any other failure to process a valid payload with
:func:`unprocessable` (422). The agent's outbox retries a 5xx forever, holding back
everything queued behind it, so only a failure that retrying can cure may be one;
the same bytes fail the same way every time (diagnostics nested too deep for the
encoder, say), so such a payload is refused with the reason, and the traceback goes
to the collector's log for the bug it may be.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from collector.auth import AGENT, TokenBook
from collector.store import StoreError
from collector.store.clean import clean_json, needs_cleaning
from collector.wire import Event, EventBatch, Heartbeat

log = logging.getLogger("patrol.collector.api")

EVENTS = "/api/v1/events"
HEARTBEATS = "/api/v1/heartbeats"
RETRY_AFTER_SECONDS = 5


class Unprocessable(Exception):
    """A valid payload the collector failed to process, not because of the store."""


def process(work: Callable[[Any], Any], payload: Any) -> Any:
    """``work(payload)``; a failure other than the store's becomes Unprocessable."""
    try:
        return work(payload)
    except StoreError:
        raise
    except Exception as exc:
        log.exception("could not process a payload; refusing it with 422 so that the "
                      "agent moves on to the next one")
        raise Unprocessable(f"{type(exc).__name__}: {exc}") from exc


def unprocessable(exc: Unprocessable) -> JSONResponse:
    return JSONResponse({"error": "the collector could not process this payload",
                         "problems": [str(exc)]}, status_code=422)


def store_unavailable(exc: StoreError) -> JSONResponse:
    """503 for a store failure: not the client's fault, and worth retrying (the store
    may be restarting, failing over, or out of connections). The details go to the
    log, not to the client: they may name tables and values."""
    log.warning("ticket store failed, answering 503: %s", exc)
    return JSONResponse({"error": "the ticket store is unavailable; retry later"},
                        status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def parse_events(payload: dict[str, Any]) -> list[Event]:
    """One event or ``{"events": [...]}``; raises pydantic's ValidationError."""
    model = EventBatch if "events" in payload else Event
    parsed = model.model_validate(payload)
    return list(parsed.events) if isinstance(parsed, EventBatch) else [parsed]


def _json_content(value: bytes) -> bool:
    media = value.split(b";", 1)[0].strip().lower()
    return media == b"application/json"


class IngestFastPath:
    """ASGI middleware; ``engine`` is the :class:`collector.engine.Engine`,
    ``tokens`` the app's :class:`collector.auth.TokenBook`."""

    def __init__(self, app: Any, engine: Any, tokens: Callable[[], TokenBook]) -> None:
        self.app = app
        self.engine = engine
        self.tokens = tokens

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or \
                scope.get("path") not in (EVENTS, HEARTBEATS) or scope.get("root_path"):
            return await self.app(scope, receive, send)
        authorization = content_type = None
        for name, value in scope.get("headers") or ():
            if name == b"authorization" and authorization is None:
                authorization = value
            elif name == b"content-type" and content_type is None:
                content_type = value
        if content_type is None or not _json_content(content_type) or \
                not self._agent(authorization):
            return await self.app(scope, receive, send)
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None  # the client went away
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        work = self._parse(scope["path"], body) if body else None
        if work is None:
            return await self.app(scope, self._replay(body, receive), send)
        try:
            result = await run_in_threadpool(process, *work)
        except StoreError as exc:
            return await store_unavailable(exc)(scope, receive, send)
        except Unprocessable as exc:
            return await unprocessable(exc)(scope, receive, send)
        await JSONResponse(result, status_code=202)(scope, receive, send)
        return None

    def _agent(self, authorization: bytes | None) -> bool:
        if authorization is None:
            return False
        scheme, _, value = authorization.decode("latin-1").partition(" ")
        token = value.strip()
        if scheme.lower() != "bearer" or not token:
            return False
        # A credential bound to hosts takes the FastAPI route, which checks the hosts.
        principal = self.tokens().principal(token)
        return principal is not None and principal.kind == AGENT and principal.hosts is None

    def _parse(self, path: str, body: bytes) -> tuple[Callable[..., Any], Any] | None:
        """(function, argument) to run in the threadpool; None to let FastAPI answer."""
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                return None
            if needs_cleaning(body):
                payload = clean_json(payload)
            if path == EVENTS:
                return self._ingest, parse_events(payload)
            return self.engine.heartbeat, Heartbeat.model_validate(payload)
        except (ValueError, ValidationError, RecursionError):  # JSONDecodeError: ValueError
            return None

    def _ingest(self, events: list[Event]) -> dict[str, Any]:
        return {"results": [o.as_dict() for o in self.engine.ingest(events)]}

    @staticmethod
    def _replay(body: bytes, receive: Any) -> Any:
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay
