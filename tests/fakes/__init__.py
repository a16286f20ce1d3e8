"""Vendor-faithful fake helpdesk servers for the SaaS adapters' contract tests.

Each fake (one module per vendor) is a small threaded ``http.server`` on 127.0.0.1
that implements only the endpoints its adapter uses, CHECKS every request against
the vendor's documented API (method, path, auth scheme, required fields and their
types) and answers with the vendor's documented shapes and status codes. State
lives in memory, so find/open/comment/resolve/reopen behave as the vendor does.

Two lists make a broken adapter fail its test even when the fake could answer:

- ``unrecognised``: requests no route matched (answered 404 in the vendor's shape);
- ``violations``: requests that reached a route but broke the documented contract
  (answered with the vendor's 400/422 error).

The ``fake_server`` context manager asserts both are empty when the test ends.
``fail_next`` queues faults (429 with ``Retry-After``, 5xx) served before routing,
as a rate limiter or a broken load balancer in front of the vendor would.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or None
    raw: bytes = b""

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-serialised unless bytes/str
    headers: dict[str, str] = field(default_factory=dict)


class FakeServer:
    """Base class: subclasses implement ``route(req) -> Reply | None``."""

    vendor = "fake"

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.unrecognised: list[str] = []
        self.violations: list[str] = []
        self._faults: deque[Reply] = deque()
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes

            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def _serve(self) -> None:
                fake._handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- test controls --------------------------------------------------------------------

    def fail_next(self, status: int, body: Any = None, headers: dict[str, str] | None = None,
                  times: int = 1) -> None:
        for _ in range(times):
            self._faults.append(Reply(status, body, dict(headers or {})))

    def violation(self, req: Request, message: str) -> str:
        self.violations.append(f"{req.method} {req.path}: {message}")
        return message

    def calls(self, method: str, prefix: str = "") -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    # -- to implement ---------------------------------------------------------------------

    def route(self, req: Request) -> Reply | None:
        raise NotImplementedError

    def not_found(self, req: Request) -> Reply:
        return Reply(404, {"error": "not found"})

    # -- plumbing -------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        body: Any = None
        req = Request(handler.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                      headers, None, raw)
        if raw:
            if "application/json" not in headers.get("content-type", ""):
                self.violation(req, f"body sent as {headers.get('content-type')!r}, the API "
                                    "takes application/json")
            try:
                body = json.loads(raw)
            except ValueError:
                self.violation(req, "body is not JSON")
        req.body = body
        with self.lock:
            self.requests.append(req)
            reply = self._faults.popleft() if self._faults else None
            if reply is None:
                reply = self.route(req)
            if reply is None:
                self.unrecognised.append(f"{req.method} {handler.path}")
                reply = self.not_found(req)
        self._send(handler, reply)

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        if reply.body is None:
            payload = b""
        elif isinstance(reply.body, bytes):
            payload = reply.body
        elif isinstance(reply.body, str):
            payload = reply.body.encode()
        else:
            payload = json.dumps(reply.body).encode()
        handler.send_response(reply.status)
        if payload and "Content-Type" not in reply.headers:
            handler.send_header("Content-Type", "application/json; charset=utf-8")
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)


@contextmanager
def fake_server(fake: FakeServer) -> Iterator[FakeServer]:
    """Run ``fake`` for one test; fail the test on any unrecognised or invalid request."""
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
    assert fake.unrecognised == [], f"{fake.vendor}: requests the API does not have"
    assert fake.violations == [], f"{fake.vendor}: requests breaking the documented API"


def expect_type(fake: FakeServer, req: Request, obj: dict[str, Any], name: str,
                kind: type | tuple[type, ...], required: bool = True) -> bool:
    """Record a violation unless ``obj[name]`` exists (when required) with type ``kind``."""
    if name not in obj:
        if required:
            fake.violation(req, f"'{name}' is required")
            return False
        return True
    value = obj[name]
    if isinstance(value, bool) and kind in (int, (int,)):
        fake.violation(req, f"'{name}' must be {kind}, got a boolean")
        return False
    if not isinstance(value, kind):
        fake.violation(req, f"'{name}' must be {kind}, got {type(value).__name__}: {value!r}")
        return False
    return True


def run_contract(adapter: Any, view: Any, dest: Any, *, assign: Any, priority_of: Any,
                 raised: Any, raised_value: Any) -> Any:
    """The bridge's contract, in the dispatcher's order, against one adapter.

    ``assign(ref)`` takes the ticket in the helpdesk as an agent would (outside the
    adapter); ``priority_of(ref)`` reads the helpdesk's priority field; ``raised`` is
    ``view`` with a new Patrol priority whose mapped value is ``raised_value``.
    Returns the ref for vendor-specific follow-up assertions.
    """
    assert adapter.find(view.fingerprint, dest) is None
    ref = adapter.open(view, dest)
    assert ref.id and ref.url and ref.helpdesk == dest.helpdesk
    assert adapter.find(view.fingerprint, dest) == ref
    adapter.comment(ref, "Still failing: **93.9%** used.", view)
    adapter.set_priority(ref, raised, dest)
    assert priority_of(ref) == raised_value
    first = adapter.status(ref)
    assert (first.state, first.assignee, first.wont_fix) == ("open", None, False)
    assign(ref)
    taken = adapter.status(ref)
    assert taken.state == "acknowledged" and taken.assignee
    adapter.resolve(ref, "Recovered: 41% used; verified for 5 minutes.", view, dest)
    assert adapter.status(ref).state in ("resolved", "closed")
    assert adapter.find(view.fingerprint, dest) is None  # only open tickets are found
    adapter.reopen(ref, "It came back: 95.2% used.", view, dest)
    again = adapter.status(ref)
    assert again.state == "acknowledged" and again.assignee == taken.assignee
    assert adapter.find(view.fingerprint, dest) == ref
    return ref
