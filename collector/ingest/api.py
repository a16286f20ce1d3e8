"""The collector's HTTP API (FastAPI): ingest for agents, tickets for operators.

Agents (agent token): ``POST /api/v1/events``, ``POST /api/v1/heartbeats``,
``POST /api/v1/alertmanager``. Operators (operator token): ``GET /api/v1/tickets``,
``GET /api/v1/tickets/{number}``, and ``POST /api/v1/tickets/{number}/{action}``
for acknowledge, comment, resolve and close. ``GET /healthz`` and ``GET /metrics``
are open. The OpenAPI document is at ``/openapi.json`` (``/docs`` renders it).

The two agent routes, events and heartbeats, are answered by
:mod:`collector.ingest.fastpath` alone (the fast path is the documented one). Malformed
payloads get 422 with one line per problem (``events.0.severity: ...``);
bodies over ``max_body_bytes`` get 413 before they are read into memory. Text the
store cannot hold is cleaned, not refused (NUL and lone surrogates become U+FFFD, NaN
and Infinity become null: :mod:`collector.store.clean`), so a measurement value of NaN
is a 422 (a measurement must be a number). A failing store is a 503 with
``Retry-After``, never a 500: see :func:`collector.ingest.fastpath.store_unavailable`.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import Body, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from patrol.collector.access.auth import (
    AGENT,
    OPERATOR,
    TokenBook,
    require,
    require_host,
    require_principal,
)
from patrol.collector.access.credentials_api import router as credentials_router
from patrol.collector.engine import Engine
from patrol.collector.ingest.alertmanager import AlertmanagerPayload, to_events
from patrol.collector.ingest.fastpath import (
    INGEST_ERROR_SCHEMA,
    IngestFastPath,
    Unprocessable,
    openapi_paths,
    problems,
    process,
    store_unavailable,
    unprocessable,
)
from patrol.collector.model import Ticket, TicketStatus, TimelineEntry, api_fields
from patrol.collector.policy.maintenance import MaintenanceWindow
from patrol.collector.store import StoreError
from patrol.collector.store.clean import clean_payload
from patrol.collector.tickets.actions import TicketAction, TicketRefused, act
from patrol.contract.wire import MAX_DEPTH, MAX_SEQUENCE, Event, EventBatch, Heartbeat

MAX_OFFSET = 1_000_000  # far past any ticket list; bounded so no store overflows
TicketNumber = Annotated[str, Path(min_length=1, max_length=100)]


class ActionBody(BaseModel):
    text: str = Field(default="", max_length=20000)
    author: str = Field(default="operator", min_length=1, max_length=200)
    force: bool = Field(default=False, description="resolve/close although the check "
                        "still fails (e.g. a won't-fix decision)")


def ticket_json(ticket: Ticket, timeline: list[TimelineEntry] | None = None) -> dict[str, Any]:
    """A ticket as the API lists it (the fields :class:`collector.model.Ticket` declares
    for the API); with its ``timeline``, as one ticket's page shows it (plus the
    detail fields: diagnostics, body)."""
    out = api_fields(ticket, detail=timeline is not None)
    if timeline is not None:
        out["timeline"] = [{"at": e.at, "kind": e.kind, "author": e.author, "text": e.text}
                           for e in timeline]
    return out


class BodyLimit:
    """413 for bodies over ``limit`` bytes, before they are read into memory.

    A declared ``Content-Length`` over the limit is refused at once. A body without
    one (``Transfer-Encoding: chunked``) is read here, at most ``limit`` bytes, and
    replayed to the app; one more byte and it is refused, so no client can make the
    collector buffer more than the limit.
    """

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def _refuse(self, send: Any, size: str) -> None:
        await JSONResponse({"error": f"payload of {size} bytes is over the {self.limit}-byte "
                            "limit; send smaller batches"}, status_code=413)(
            {"type": "http"}, _no_receive, send)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            if length.isdigit() and int(length) > self.limit:
                return await self._refuse(send, length.decode())
            return await self.app(scope, receive, send)
        if scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE"):
            return await self.app(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                return await self._refuse(send, f"more than {self.limit}")
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        return await self.app(scope, replay, send)


async def _no_receive() -> Any:
    return {"type": "http.disconnect"}


def _cleaned(payload: dict[str, Any]) -> Any:
    try:
        return clean_payload(payload)
    except RecursionError:
        raise HTTPException(422, f"payload nested too deeply: diagnostics and thresholds "
                            f"nest at most {MAX_DEPTH} levels") from None


def _validated(model: type[BaseModel], payload: dict[str, Any]) -> Any:
    """``payload`` cleaned (:func:`clean_payload`) and validated as ``model``; a
    refusal is the usual 422."""
    try:
        return model.model_validate(_cleaned(payload))
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


class CollectorApp(FastAPI):
    """The collector's FastAPI app, with ``front`` -- :class:`BodyLimit` around the
    ingest fast path (collector/ingest/fastpath.py) -- in front of FastAPI's own stack.

    Why in front: an agent's POST then passes through neither FastAPI's middleware
    (server errors, exception telemetry, its body limit) nor anything else before the
    code that answers it (py-spy: ~5 % of a single event's CPU). Every other request
    passes the same BodyLimit and then goes through FastAPI as before."""

    front: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.front is not None and scope["type"] == "http":
            scope["app"] = self
            return await self.front(scope, receive, send)
        return await super().__call__(scope, receive, send)

    async def behind_front(self, scope: Any, receive: Any, send: Any) -> None:
        """FastAPI's own stack (what ``front`` passes every other request to)."""
        return await super().__call__(scope, receive, send)


def create_app(engine: Engine, agent_tokens: list[str], operator_tokens: list[str],
               max_body_bytes: int = 1024 * 1024, metrics: Any = None) -> FastAPI:
    app = CollectorApp(title="Patrol collector", version="1",
                       description="Events and heartbeats in; prioritised tickets out.")
    app.state.engine = engine
    app.state.store = engine.store
    app.state.clock = engine.clock
    app.state.tokens = TokenBook(agent_tokens, operator_tokens, engine.store, engine.clock)
    app.state.started_at = time.time()

    # The agents' ingest routes (collector/ingest/fastpath.py: their only handler),
    # inside BodyLimit (oversized bodies never reach it), in front of FastAPI.
    app.front = BodyLimit(IngestFastPath(app.behind_front, engine), limit=max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": "invalid payload", "problems": problems(exc.errors())},
                            status_code=422)

    @app.exception_handler(StoreError)
    async def store_failed(request: Request, exc: StoreError) -> JSONResponse:
        status, content, headers = store_unavailable(exc)
        return JSONResponse(content, status_code=status, headers=headers)

    @app.exception_handler(Unprocessable)
    async def not_processed(request: Request, exc: Unprocessable) -> JSONResponse:
        status, content = unprocessable(exc)
        return JSONResponse(content, status_code=status)

    # Starlette's own class, so FastAPI's refusals (an unparsable body, 404, 405) get
    # the same {"error": ...} shape as ours.
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    # Authentication as route dependencies, so it runs before the body and the path are
    # validated: without a valid token the answer is 401/403, never a 422 about the payload.
    # ``async``: it runs on the event loop; a sync dependency costs a threadpool hop.
    def needs(kind: str) -> list[Any]:
        async def check(request: Request) -> None:
            require(request, kind)
        return [Depends(check)]

    as_agent, as_operator = needs(AGENT), needs(OPERATOR)

    @app.post("/api/v1/alertmanager", status_code=202, tags=["ingest"],
              dependencies=as_agent, openapi_extra=_body_schema("AlertmanagerPayload"))
    def post_alertmanager(request: Request,
                          payload: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        """Alertmanager's webhook (``webhook_configs`` with ``http_config.authorization``
        carrying an agent token)."""
        principal = require_principal(request, AGENT)
        alerts = _validated(AlertmanagerPayload, payload)
        try:  # an alert the wire cannot carry (labels past its bounds): named, not a 500
            events = to_events(alerts)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from None
        require_host(principal, [e.source for e in events])
        return {"results": [o.as_dict() for o in process(engine.ingest, events)]}

    @app.get("/api/v1/tickets", tags=["tickets"], dependencies=as_operator)
    def list_tickets(
        request: Request,
        status: Annotated[list[TicketStatus] | None, Query()] = None,
        priority: Annotated[list[Literal["P1", "P2", "P3", "P4"]] | None, Query()] = None,
        host: Annotated[str | None, Query(max_length=255)] = None,
        check: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> dict[str, Any]:
        require(request, OPERATOR)
        tickets = engine.store.list_tickets(
            status=[str(s) for s in status] if status else None,
            priority=list(priority) if priority else None, host=host, check=check,
            limit=limit, offset=offset)
        return {"tickets": [ticket_json(t) for t in tickets]}

    @app.get("/api/v1/tickets/{number}", tags=["tickets"], dependencies=as_operator)
    def get_ticket(request: Request, number: TicketNumber) -> dict[str, Any]:
        require(request, OPERATOR)
        ticket = engine.store.get_ticket(number)
        if ticket is None:
            raise HTTPException(404, f"no ticket {number}")
        out = ticket_json(ticket, engine.store.timeline(ticket.stored_id))
        out["helpdesks"] = [
            {k: link[k] for k in ("helpdesk", "external_id", "url", "remote_state",
                                  "remote_assignee", "error")}
            for link in engine.store.links(ticket.id)]
        out["dispatch"] = [
            {k: row[k] for k in ("helpdesk", "action", "state", "attempts", "last_error")}
            for row in engine.store.dispatch_rows(ticket.id)]
        return out

    @app.post("/api/v1/tickets/{number}/{action}", tags=["tickets"],
              dependencies=as_operator)
    def ticket_action(request: Request, number: TicketNumber, action: TicketAction,
                      body: ActionBody | None = None) -> dict[str, Any]:
        operator = require_principal(request, OPERATOR)
        body = body or ActionBody()
        # A named credential is the audit trail's author; a shared token says who it is.
        author = operator.name if operator.named else body.author
        try:
            ticket = act(engine, number, action, author, body.text, force=body.force)
        except LookupError:
            raise HTTPException(404, f"no ticket {number}") from None
        except TicketRefused as exc:
            raise HTTPException(409, str(exc)) from None
        return ticket_json(ticket, engine.store.timeline(ticket.stored_id))

    @app.get("/api/v1/maintenance", tags=["maintenance"], dependencies=as_operator)
    def list_windows(request: Request) -> dict[str, Any]:
        require(request, OPERATOR)
        return {"windows": engine.store.maintenance_windows()}

    @app.post("/api/v1/maintenance", status_code=201, tags=["maintenance"],
              dependencies=as_operator)
    def add_window(request: Request, window: MaintenanceWindow) -> dict[str, Any]:
        """A one-off (start/end) or recurring (cron+duration, weekly) window that
        suppresses new tickets for matching hosts, labels or checks."""
        require(request, OPERATOR)
        with engine.store.transaction() as tx:
            window_id = tx.add_maintenance({**window.model_dump(
                mode="json", by_alias=True, exclude_none=True), "origin": "api"})
        engine.invalidate_windows()
        return {"id": window_id}

    @app.delete("/api/v1/maintenance/{window_id}", tags=["maintenance"],
                dependencies=as_operator)
    def delete_window(request: Request,
                      window_id: Annotated[int, Path(ge=1, le=MAX_SEQUENCE)]) -> dict[str, Any]:
        require(request, OPERATOR)
        with engine.store.transaction() as tx:
            deleted = tx.delete_maintenance(window_id)
        if not deleted:
            raise HTTPException(404, f"no maintenance window {window_id}")
        engine.invalidate_windows()
        return {"deleted": window_id}

    app.include_router(credentials_router)

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "open_tickets": engine.store.count_open()}

    @app.get("/metrics", tags=["service"], response_class=PlainTextResponse)
    def prometheus_metrics() -> PlainTextResponse:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        registry = metrics if metrics is not None else _default_registry(engine)
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    from patrol.collector.ingest.inventory import router as inventory_router

    app.include_router(inventory_router)

    from patrol.collector.ingest.check_sets import router as check_sets_router

    app.include_router(check_sets_router)

    # The web pages need only core dependencies (Jinja2, FastAPI): a failing import is
    # a broken install and stops start-up, never a collector silently without its UI.
    from patrol.collector.web.pages import router as pages_router

    app.include_router(pages_router)

    # The ingest routes are answered by collector/ingest/fastpath.py, which also describes
    # them; the wire models are added by hand (the bodies are validated after cleaning,
    # not by FastAPI). FastAPI regenerates the document whenever routes change, so this
    # wraps the generator rather than editing one cached copy.
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        document.setdefault("paths", {}).update(openapi_paths())
        components = document.setdefault("components", {})
        components.setdefault("securitySchemes", {})["bearer"] = {
            "type": "http", "scheme": "bearer"}
        schemas = components.setdefault("schemas", {})
        schemas["IngestError"] = INGEST_ERROR_SCHEMA
        for model in (Event, EventBatch, Heartbeat, AlertmanagerPayload):
            full = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, schema in full.get("$defs", {}).items():
                schemas.setdefault(name, schema)
            schemas.setdefault(model.__name__,
                               {k: v for k, v in full.items() if k != "$defs"})
        document_errors(document)
        return document

    # FastAPI's documented way to customise the document is to replace the method.
    app.openapi = openapi  # type: ignore[method-assign]
    return app


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "string", "description": "what is wrong, for a person"},
                   "problems": {"type": "array", "items": {"type": "string"},
                                "description": "one line per invalid field: 'path: problem'"}}}
_ERRORS = {
    "400": "the body is not JSON (or nested past the parser's limit)",
    "401": "no bearer token, or an unknown one",
    "403": "a valid token of the wrong kind (agent vs operator)",
    "404": "no such ticket or maintenance window",
    "409": "the ticket's state refuses the action (e.g. resolve while the check fails)",
    "413": "the body is over the collector's max_body_bytes",
    "422": "the input breaks a bound or rule of the model; 'problems' names each field",
    "503": "the store is unavailable; retry after Retry-After seconds",
}


def _codes_for(path: str, method: str) -> list[str]:
    """Which error answers a route can give, so the document lists every one."""
    codes = ["503"]
    if path.startswith("/api/"):
        codes += ["401", "403", "422"]
    if method in ("post", "put", "patch"):
        codes += ["400", "413"]
    if "{" in path:
        codes.append("404")
    if path.startswith("/api/v1/tickets/{number}/"):
        codes.append("409")
    return codes


def document_errors(document: dict[str, Any]) -> None:
    """Add every error answer to every operation, with the ``{"error", "problems"}``
    body the collector really sends (FastAPI's default 422 schema is not it), and the
    maintenance windows' "exactly one schedule" rule that the model checks in code."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    retry = {"Retry-After": {"schema": {"type": "integer"},
                             "description": "seconds to wait before retrying"}}
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for code in _codes_for(path, method):
                responses[code] = {"description": _ERRORS[code], "content": body,
                                   **({"headers": retry} if code == "503" else {})}
    window = schemas.get("MaintenanceWindow")
    if window is not None:
        window["description"] = (
            "Exactly one schedule: start and end (one-off), cron and duration "
            "(recurring), or weekly; and at least one of hosts, labels or checks.")
        window["oneOf"] = [{"required": ["start", "end"]},
                           {"required": ["cron", "duration"]},
                           {"required": ["weekly"]}]
        window["anyOf"] = [{"required": ["hosts"]}, {"required": ["labels"]},
                           {"required": ["checks"]}]


def _body_schema(model: str) -> dict[str, Any]:
    """The OpenAPI request body of a route that takes a dict and validates it itself
    (after cleaning), so the document still names the model."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model}"}}}}}


def _default_registry(engine: Engine) -> Any:
    from patrol.collector.metrics import build_registry

    engine.__dict__.setdefault("_registry", build_registry(engine))
    return engine.__dict__["_registry"]
