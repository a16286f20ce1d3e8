"""A slow helpdesk on 127.0.0.1 for dispatch tests with real collector processes.

It speaks two dialects, chosen by path, each prefixed by the name of the collector
replica that sends (``/<replica>/...``: every replica gets its own base URL, so the
server knows who sent what):

- ``POST /<replica>/hook``: a generic webhook target (JSON with ``action`` and
  ``fingerprint``); it cannot be searched, so a resend is a second delivery.
- the part of the Zendesk Tickets API the Zendesk adapter uses: create
  (``POST /api/v2/tickets.json``, fingerprint in ``external_id``), find
  (``GET /api/v2/tickets.json?external_id=``), update and read one ticket.

Every create and hook request sleeps ``delay`` seconds before it takes effect and
answers, as a slow helpdesk does; the ticket exists once the delay is over even if
the client went away meanwhile (a killed collector). Every request is recorded.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    replica: str
    kind: str  # hook, create, find, update, read
    fingerprint: str = ""
    action: str = ""
    started: float = 0.0
    finished: float | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class SlowHelpdesk:
    delay: float
    requests: list[Request] = field(default_factory=list)
    tickets: dict[int, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def url(self, replica: str) -> str:
        return f"http://127.0.0.1:{self.port}/{replica}"

    def of(self, kind: str, replica: str | None = None) -> list[Request]:
        with self.lock:
            return [r for r in self.requests
                    if r.kind == kind and (replica is None or r.replica == replica)]

    def in_flight(self, replica: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.replica == replica and r.finished is None]

    def opens_per_fingerprint(self) -> Counter[str]:
        """How many times each incident was opened (hook ``open`` or create)."""
        return Counter(r.fingerprint for r in self.of("create") + self.of("hook")
                       if r.kind == "create" or r.action == "open")


def _handler(desk: SlowHelpdesk) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads ``desk.requests`` instead."""

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the collector was killed while waiting: its loss

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"null")

        def _record(self, replica: str, kind: str, **fields: Any) -> Request:
            request = Request(replica, kind, started=time.monotonic(),
                              headers=dict(self.headers.items()), **fields)
            with desk.lock:
                desk.requests.append(request)
            return request

        def _done(self, request: Request) -> None:
            with desk.lock:
                request.finished = time.monotonic()

        def do_POST(self) -> None:
            replica, _, path = urlsplit(self.path).path.lstrip("/").partition("/")
            body = self._body()
            if path == "hook":
                request = self._record(replica, "hook", fingerprint=body["fingerprint"],
                                       action=body["action"])
                time.sleep(desk.delay)
                self._done(request)
                self._answer(200, {"ok": True})
            elif path == "api/v2/tickets.json":
                ticket = body["ticket"]
                request = self._record(replica, "create", fingerprint=ticket["external_id"],
                                       action="open")
                time.sleep(desk.delay)
                with desk.lock:
                    ticket_id = len(desk.tickets) + 1
                    desk.tickets[ticket_id] = {**ticket, "id": ticket_id, "status": "new"}
                self._done(request)
                self._answer(201, {"ticket": desk.tickets[ticket_id]})
            else:
                self._answer(404, {"error": f"no {path}"})

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            replica, _, path = parts.path.lstrip("/").partition("/")
            if path == "api/v2/tickets.json":
                fingerprint = parse_qs(parts.query).get("external_id", [""])[0]
                self._done(self._record(replica, "find", fingerprint=fingerprint))
                with desk.lock:
                    found = [t for t in desk.tickets.values()
                             if t["external_id"] == fingerprint]
                self._answer(200, {"tickets": found})
            elif path.startswith("api/v2/tickets/"):
                ticket_id = int(path.rsplit("/", 1)[1].split(".")[0])
                self._done(self._record(replica, "read"))
                self._answer(200, {"ticket": desk.tickets[ticket_id], "users": []})
            else:
                self._answer(404, {"error": f"no {path}"})

        def do_PUT(self) -> None:
            replica, _, path = urlsplit(self.path).path.lstrip("/").partition("/")
            ticket_id = int(path.rsplit("/", 1)[1].split(".")[0])
            update = self._body()["ticket"]
            self._done(self._record(replica, "update",
                                    fingerprint=desk.tickets[ticket_id]["external_id"],
                                    action=update.get("status", "comment")))
            with desk.lock:
                desk.tickets[ticket_id].update(
                    {k: v for k, v in update.items() if k in ("status", "priority")})
            self._answer(200, {"ticket": desk.tickets[ticket_id]})

    return Handler


@contextmanager
def serving(delay: float) -> Iterator[SlowHelpdesk]:
    """The helpdesk on a free loopback port, stopped (and its port closed) on exit."""
    desk = SlowHelpdesk(delay)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(desk))
    server.daemon_threads = True
    desk.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="slow-helpdesk", daemon=True)
    thread.start()
    try:
        yield desk
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
