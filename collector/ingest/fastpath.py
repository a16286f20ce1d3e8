"""The agents' ingest routes, ``POST /api/v1/events`` and ``POST /api/v1/heartbeats``:
the only code that answers them, success and error alike, and what /openapi.json says
about them (:func:`openapi_paths`).

Why not FastAPI routes: these two requests are most of the collector's traffic, and
through FastAPI each one builds a Request, solves the route's dependencies, validates the
body through a TypeAdapter and encodes the answer with ``jsonable_encoder``: measured at
about 0.5 ms of CPU per request, more than the engine's own work for a heartbeat. This
ASGI middleware answers them itself with the same steps in a fixed order, each written
once:

1. authentication: :func:`collector.access.auth.principal_for`, the form of
   ``require_principal`` (which every other route uses) that takes the header's value
   (401 without a valid token, 403 for an operator's), and after parsing
   :func:`collector.access.auth.require_host` (403 when a host-bound agent credential reports
   another host);
2. the body limit: :class:`collector.ingest.api.BodyLimit` sits outside this middleware, so an
   oversized body is a 413 before it is read;
3. a JSON media type (``application/json`` or ``application/*+json``), else 415;
4. ``json.loads``, then the cleaning rule of :mod:`collector.store.clean` (NUL and lone
   surrogates to U+FFFD, NaN to null) on a body whose bytes show something to clean;
5. the wire models' ``model_validate``: a refusal is a 422 listing one
   ``field.path: reason`` line per problem (:func:`problems`, shared with FastAPI's
   handler for the other routes);
6. the engine, on the ingest worker (:mod:`collector.ingest.worker`), which runs
   requests waiting together as one unit of work: a store failure is a 503 with
   ``Retry-After`` (:func:`store_unavailable`), any other failure to process a valid payload a 422
   (:func:`unprocessable`). The agent's outbox retries a 5xx forever, holding back
   everything queued behind it, so only a failure that retrying can cure may be one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException
from pydantic import ValidationError

from patrol.collector.access.auth import AGENT, Principal, principal_for, require_host
from patrol.collector.ingest.heartbeat_shape import Shape, shape_of
from patrol.collector.ingest.worker import IngestWorker, Job
from patrol.collector.store import StoreError
from patrol.collector.store.clean import clean_json, needs_cleaning
from patrol.contract.wire import MAX_DEPTH, Event, EventBatch, Heartbeat

if TYPE_CHECKING:
    from patrol.collector.engine import Engine

log = logging.getLogger("patrol.collector.api")

EVENTS = "/api/v1/events"
HEARTBEATS = "/api/v1/heartbeats"
RETRY_AFTER_SECONDS = 5
INVALID = "invalid payload"


class Unprocessable(Exception):
    """A valid payload the collector failed to process, not because of the store."""


class Refused(Exception):
    """A request answered with ``status`` and ``body`` (a 4xx the client must fix)."""

    def __init__(self, status: int, body: dict[str, Any],
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(body.get("error", ""))
        self.status, self.body, self.headers = status, body, headers


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


def unprocessable(exc: Unprocessable) -> tuple[int, dict[str, Any]]:
    """The 422 for a valid payload the collector failed to process: status, body."""
    return 422, {"error": "the collector could not process this payload",
                 "problems": [str(exc)]}


def store_unavailable(exc: StoreError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """503 for a store failure: not the client's fault, and worth retrying (the store
    may be restarting, failing over, or out of connections). The details go to the
    log, not to the client: they may name tables and values."""
    log.warning("ticket store failed, answering 503: %s", exc)
    return 503, {"error": "the ticket store is unavailable; retry later"}, \
        {"Retry-After": str(RETRY_AFTER_SECONDS)}


def problems(errors: Sequence[Any]) -> list[str]:
    """One ``field.path: reason`` line per validation error (pydantic's or FastAPI's)."""
    lines = []
    for error in errors:
        loc = [str(p) for p in error.get("loc", ()) if p != "body"]
        message = error.get("msg")
        if error.get("type") == "float_type" and error.get("input", 0) is None:
            message = "Input should be a finite number (null, NaN and Infinity are not)"
        lines.append(f"{'.'.join(loc) or 'body'}: {message}")
    return lines


def parse_events(payload: dict[str, Any]) -> list[Event]:
    """One event or ``{"events": [...]}``; raises pydantic's ValidationError."""
    model = EventBatch if "events" in payload else Event
    parsed = model.model_validate(payload)
    return list(parsed.events) if isinstance(parsed, EventBatch) else [parsed]


def json_media(value: bytes | None) -> bool:
    """``application/json`` or a structured ``application/*+json`` type."""
    if value is None:
        return False
    media = value.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json"))


def parsed_body(body: bytes) -> dict[str, Any]:
    """The JSON object in ``body``, cleaned; Refused (422) for anything else."""
    try:
        payload = json.loads(body)
    except RecursionError:
        raise Refused(400, {"error": "cannot parse the body: JSON nested deeper than the "
                                     f"parser allows (the wire allows {MAX_DEPTH} levels)"}
                      ) from None
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise Refused(422, {"error": INVALID, "problems": [f"body: not JSON ({exc})"]}
                      ) from None
    if not isinstance(payload, dict):
        raise Refused(422, {"error": INVALID,
                            "problems": ["body: Input should be a JSON object"]})
    # Every marker needs_cleaning looks for contains one of these: the usual body is
    # ruled out by four memchr-speed scans instead of one regex pass (16 us at 5 KB).
    if (b"\\u" in body or b"NaN" in body or b"Infinity" in body or b"\x00" in body) \
            and needs_cleaning(body):
        try:
            payload = clean_json(payload)
        except RecursionError:
            raise Refused(422, {"error": INVALID, "problems": [
                f"body: nested deeper than {MAX_DEPTH} levels; flatten it"]}) from None
    return payload


def _route_path(scope: Any) -> str:
    """The request's path below the app's mount point (``--root-path`` behind a proxy:
    Starlette keeps the prefix in ``path``)."""
    path, root = scope.get("path") or "", scope.get("root_path") or ""
    return path[len(root):] if root and path.startswith(root) else path


class IngestFastPath:
    """ASGI middleware answering the ingest routes; ``engine`` is the
    :class:`collector.engine.Engine`. Every other request goes to ``app``.

    No Request or Response objects: the headers are read from the ASGI scope, and the
    answer is pre-encoded JSON bytes sent straight through ``send``; the engine's work
    runs on the ingest worker (:mod:`collector.ingest.worker`), not the threadpool."""

    def __init__(self, app: Any, engine: Engine) -> None:
        self.app = app
        self.engine = engine
        self.worker = IngestWorker(engine, self._run_one)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = _route_path(scope) if scope["type"] == "http" and \
            scope.get("method") == "POST" else None
        if path != EVENTS and path != HEARTBEATS:
            return await self.app(scope, receive, send)
        authorization, content_type = "", None
        for key, value in scope.get("headers") or ():
            if key == b"authorization":
                authorization = value.decode("latin-1")
            elif key == b"content-type":
                content_type = value
        try:
            principal = principal_for(scope["app"].state.tokens, authorization, AGENT)
        except HTTPException as exc:
            return await answer(send, exc.status_code, {"error": exc.detail}, exc.headers)
        body = await self._body(receive)
        if body is None:
            return None  # the client went away
        try:
            if not json_media(content_type):
                raise Refused(415, {"error": "send the payload as application/json"})
            shape = None
            if path == HEARTBEATS:
                shape = shape_of(body)
                quiet = self._quiet(principal, shape) if shape is not None else None
                if quiet is not None:
                    return await answer(send, 202, quiet)
            payload = parsed_body(body)
            try:
                if path == EVENTS:
                    events = parse_events(payload)
                else:
                    beat = Heartbeat.model_validate(payload)
            except ValidationError as exc:
                raise Refused(422, {"error": INVALID, "problems": problems(exc.errors())}
                              ) from None
            # A credential bound to hosts may report only those (403 otherwise).
            if path == EVENTS:
                require_host(principal, [event.source for event in events])
                outcomes = await self.worker.submit(events, None, None)
                result: Any = {"results": [o.as_dict() for o in outcomes]}
            else:
                require_host(principal, [beat.source])
                # A heartbeat that changes nothing reconciliation reads is answered here,
                # without the hand-off that cost more than its work
                # (collector/ingest/heartbeats.py).
                result = self.engine.heartbeat_unchanged(beat)
                processed = result is None
                if processed:
                    result = await self.worker.submit(None, self.engine.heartbeat, beat)
                if shape is not None:  # the next one of this shape skips validation
                    self.engine.quiet.remember(beat, shape, payload, processed)
        except Refused as exc:
            return await answer(send, exc.status, exc.body, exc.headers)
        except HTTPException as exc:
            return await answer(send, exc.status_code, {"error": exc.detail}, exc.headers)
        except StoreError as exc:
            status, content, headers = store_unavailable(exc)
            return await answer(send, status, content, headers)
        except Unprocessable as exc:
            return await answer(send, *unprocessable(exc))
        return await answer(send, 202, result)

    def _quiet(self, principal: Principal, shape: Shape) -> dict[str, Any] | None:
        """The answer to a heartbeat whose shape says it is quiet (nothing but its times
        new since a body kept or processed: collector/ingest/heartbeat_shape.py), or None
        for the usual path. The credential is checked as on that path (403 for a host it
        may not report)."""
        matched = self.engine.quiet.matching(shape, self.engine.clock())
        if matched is None:
            return None
        host, runs, samples = matched
        require_host(principal, [host])
        return self.engine.heartbeat_kept(host, runs, samples)

    def _run_one(self, job: Job) -> Any:
        """One request's work on the worker thread (the engine's errors mapped by
        :func:`process`)."""
        if job.events is not None:
            return process(self.engine.ingest, job.events)
        assert job.work is not None
        return process(job.work, job.argument)

    @staticmethod
    async def _body(receive: Any) -> bytes | None:
        message = await receive()
        if message["type"] != "http.request":
            return None
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            return body  # the common case: the whole body in one message
        chunks = [body]
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)


_JSON_HEADER = (b"content-type", b"application/json")


_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def encode(content: Any) -> bytes:
    """JSON as Starlette's JSONResponse encodes it (compact, UTF-8, no NaN), with one
    encoder made once (``json.dumps`` with options builds one per call)."""
    return _encoder.encode(content).encode("utf-8")


async def answer(send: Any, status: int, content: Any,
                 headers: Mapping[str, str] | None = None) -> None:
    """Send ``content`` as the JSON response, straight through ASGI ``send``."""
    body = encode(content)
    raw = [_JSON_HEADER, (b"content-length", str(len(body)).encode())]
    if headers:
        raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _error(description: str, example: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/IngestError"}, "example": example}}}


INGEST_ERROR_SCHEMA = {
    "type": "object", "required": ["error"], "title": "IngestError",
    "properties": {"error": {"type": "string"},
                   "problems": {"type": "array", "items": {"type": "string"}}},
}
RESPONSES = {
    "401": _error("no valid bearer token", {"error": "a valid bearer token is required"}),
    "403": _error("a token that is not an agent's", {
        "error": "this needs an agent token; an operator token cannot do it"}),
    "413": _error("a body over the collector's limit", {
        "error": "payload of 2000000 bytes is over the 1048576-byte limit; send smaller "
                 "batches"}),
    "415": _error("not a JSON media type", {"error": "send the payload as application/json"}),
    "422": _error("a payload the models refuse (one line per problem), or one the "
                  "collector cannot process; retrying it cannot help",
                  {"error": INVALID, "problems": ["events.1.severity: Input should be "
                                                  "'critical', 'error', 'warning' or 'info'"]}),
    "503": _error("the ticket store is unavailable; retry after Retry-After seconds",
                  {"error": "the ticket store is unavailable; retry later"}),
}


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI path items of the ingest routes, as this module serves them."""
    def operation(summary: str, schema: dict[str, Any], answer: str) -> dict[str, Any]:
        return {"post": {
            "tags": ["ingest"], "summary": summary, "security": [{"bearer": []}],
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": schema}}},
            "responses": {"202": {"description": answer, "content": {"application/json": {
                "schema": {"type": "object"}}}}, **RESPONSES}}}

    return {
        EVENTS: operation(
            "One event, or {\"events\": [...]}; a repeated event_id is a no-op",
            {"oneOf": [{"$ref": "#/components/schemas/EventBatch"},
                       {"$ref": "#/components/schemas/Event"}]},
            "one result per event, in the order sent: event_id, outcome, ticket, note"),
        HEARTBEATS: operation(
            "The agent's full current state", {"$ref": "#/components/schemas/Heartbeat"},
            "host, checks, and the events reconciled from the heartbeat"),
    }
