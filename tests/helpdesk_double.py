"""A helpdesk double for end-to-end tests: a loopback HTTP server in its own process
that speaks what Patrol's webhook adapter sends and keeps a durable journal of every
request, so a test can count afterwards what each Patrol ticket received.

Why a separate process: a scale test must be able to kill -9 the helpdesk, restart
it, make it slow or make it fail, exactly as a real one misbehaves. Run it as::

    python -m tests.helpdesk_double --port 8999 --journal hd.jsonl [--idempotent]

Two dialects, both understood by ``ticketing_bridge/webhook.py``:

- ``POST /hook``: the generic webhook. The body is the adapter's rendered template,
  which must carry ``action`` and ``fingerprint`` (``number`` and ``text`` are kept
  when present). An ``open`` answers ``{"id", "dedup_key", ...}``: the adapter takes
  ``dedup_key`` as the external id (``Webhook.open``).
- ``POST /v2/enqueue``: PagerDuty Events v2 (the ``pagerduty`` preset with ``url``
  pointing here). A ``trigger`` on a new ``dedup_key`` opens, on a resolved one
  reopens, on an open one updates; answers ``{"status": "success", "dedup_key"}``.

Idempotency, which decides what a test may assert:

- ``--idempotent`` (a helpdesk that deduplicates by an external key, like PagerDuty's
  ``dedup_key`` or an Opsgenie alias): an ``open`` for a fingerprint that already has
  a ticket returns that ticket (effect ``existing``), so "exactly one ticket per
  Patrol ticket" holds even when an open is delivered twice. PagerDuty's dialect is
  always idempotent by ``dedup_key``, as the real service is.
- without it, every ``open`` creates a ticket: duplicates are possible but each one
  carries the fingerprint, so a test can recognise them ("at-least-once").
- an ``Idempotency-Key`` header, when a client sends one, replays the first answer.
- ``GET /tickets?fingerprint=FP`` looks tickets up by fingerprint, for adapters
  whose ``find`` searches the helpdesk.

The journal (JSON lines, flushed per request: it survives kill -9 of this process)
has one line per request that was processed, including refused ones::

    {"seq", "at", "pid", "dialect", "action", "fingerprint", "number", "replica",
     "status", "effect", "ticket", "idempotency_key", "text"}

``effect`` is what the request did: ``opened``, ``existing``, ``reopened``,
``already_open``, ``resolved``, ``already_resolved``, ``commented``,
``reprioritised``, ``updated``, ``replayed``, ``orphan`` (no ticket for that
fingerprint: an action arrived before its open), or ``failed`` (refused by an
injected fault). ``replica`` is the ``X-Patrol-Replica`` request header, so a test
can tell which collector sent what. A request still in its delay when the process
is killed is not journaled: it never reached the helpdesk's database.
On start the state is rebuilt from the journal, so a restarted double remembers its
tickets (and its idempotency) like a real helpdesk.

Knobs at run time: ``POST /admin`` with any of ``{"delay": [min_s, max_s]}``,
``{"fail": {"count": N, "status": 503|500|429, "retry_after": S}}``,
``{"fail_for": {"seconds": S, "status": 503}}``, ``{"die": true}`` (exit at once,
answering nothing more). ``GET /admin/state`` shows the knobs and the requests in
flight (with their replica), live.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

# effects that make or change a ticket; replayed from the journal on start
_STATE_AFTER = {"opened": "open", "reopened": "open", "resolved": "resolved"}


@dataclass
class Fault:
    """Refuse requests with ``status``: the next ``count`` of them, or all until
    ``until`` (monotonic seconds)."""

    status: int = 503
    count: int = 0
    until: float = 0.0
    retry_after: float | None = None

    def take(self) -> bool:
        if self.count > 0:
            self.count -= 1
            return True
        return time.monotonic() < self.until


@dataclass
class Ticket:
    id: str
    fingerprint: str
    number: str
    status: str = "open"


@dataclass
class Request:
    """One parsed request: what Patrol asked for, in either dialect."""

    dialect: str
    action: str
    fingerprint: str
    number: str = ""
    text: str = ""
    replica: str = ""
    idempotency_key: str = ""


@dataclass
class Desk:
    """The helpdesk's state and journal; every method holds ``lock``."""

    journal_path: Path
    idempotent: bool
    delay: tuple[float, float] = (0.0, 0.0)
    fault: Fault = field(default_factory=Fault)
    tickets: dict[str, Ticket] = field(default_factory=dict)
    by_fingerprint: dict[str, str] = field(default_factory=dict)  # -> its first ticket
    replies: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    in_flight: dict[int, Request] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.seq = 0
        for entry in read_journal(self.journal_path):
            self._replay(entry)
        self._journal = open(self.journal_path, "a", encoding="utf-8")  # noqa: SIM115
        self._ids = itertools.count(len(self.tickets) + 1)

    def _replay(self, entry: dict[str, Any]) -> None:
        self.seq = max(self.seq, entry["seq"])
        ticket_id = entry.get("ticket")
        if entry["effect"] in _STATE_AFTER and ticket_id:
            ticket = self.tickets.setdefault(ticket_id, Ticket(
                ticket_id, entry["fingerprint"], entry.get("number", "")))
            ticket.status = _STATE_AFTER[entry["effect"]]
            self.by_fingerprint.setdefault(ticket.fingerprint, ticket_id)
        if entry.get("idempotency_key") and entry["status"] < 500 and "reply" in entry:
            self.replies[entry["idempotency_key"]] = (entry["status"], entry["reply"])

    # -- processing -------------------------------------------------------------------

    def process(self, request: Request) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Apply ``request`` and journal it; returns (status, body, headers)."""
        with self.lock:
            if request.idempotency_key in self.replies:
                status, body = self.replies[request.idempotency_key]
                self._write(request, status, "replayed", body.get("id"), body)
                return status, body, {}
            if self.fault.take():
                headers = {}
                if self.fault.retry_after is not None:
                    headers["Retry-After"] = str(int(self.fault.retry_after))
                self._write(request, self.fault.status, "failed", None, None)
                return self.fault.status, {"error": "injected fault"}, headers
            status, effect, ticket = self._apply(request)
            body = self._answer(request, ticket, effect)
            self._write(request, status, effect, ticket.id if ticket else None, body)
            if request.idempotency_key and status < 500:
                self.replies[request.idempotency_key] = (status, body)
            return status, body, {}

    def _apply(self, request: Request) -> tuple[int, str, Ticket | None]:
        action = request.action
        known = self.tickets.get(self.by_fingerprint.get(request.fingerprint, ""))
        if request.dialect == "pagerduty" and action == "trigger":
            if known is None:
                action = "open"
            else:
                action = "reopen" if known.status == "resolved" else "update"
        if action == "open":
            if known is not None and (self.idempotent or request.dialect == "pagerduty"):
                return 200, "existing", known
            ticket = Ticket(f"HD-{next(self._ids)}", request.fingerprint, request.number)
            self.tickets[ticket.id] = ticket
            self.by_fingerprint.setdefault(ticket.fingerprint, ticket.id)
            return 201, "opened", ticket
        if known is None:
            return (202 if request.dialect == "pagerduty" else 404), "orphan", None
        if action == "resolve":
            if known.status == "resolved":
                return 200, "already_resolved", known
            known.status = "resolved"
            return 200, "resolved", known
        if action == "reopen":
            if known.status == "open":
                return 200, "already_open", known
            known.status = "open"
            return 200, "reopened", known
        effect = {"comment": "commented", "priority": "reprioritised"}.get(action, "updated")
        return 200, effect, known

    @staticmethod
    def _answer(request: Request, ticket: Ticket | None, effect: str) -> dict[str, Any]:
        if request.dialect == "pagerduty":
            return {"status": "success", "message": "Event processed",
                    "dedup_key": request.fingerprint}
        if ticket is None:
            return {"error": f"no ticket with fingerprint {request.fingerprint}"}
        return {"id": ticket.id, "dedup_key": ticket.id, "fingerprint": ticket.fingerprint,
                "status": ticket.status, "effect": effect}

    def _write(self, request: Request, status: int, effect: str, ticket: str | None,
               reply: dict[str, Any] | None) -> None:
        self.seq += 1
        entry = {"seq": self.seq, "at": time.time(), "pid": os.getpid(),
                 "dialect": request.dialect, "action": request.action,
                 "fingerprint": request.fingerprint, "number": request.number,
                 "replica": request.replica, "status": status, "effect": effect,
                 "ticket": ticket, "idempotency_key": request.idempotency_key,
                 "text": request.text[:500]}
        if request.idempotency_key and reply is not None:
            entry["reply"] = reply
        self._journal.write(json.dumps(entry) + "\n")
        self._journal.flush()  # in the OS's hands: survives kill -9 of this process

    # -- lookups and knobs ------------------------------------------------------------

    def find(self, fingerprint: str) -> list[dict[str, Any]]:
        with self.lock:
            return [vars(t).copy() for t in self.tickets.values()
                    if t.fingerprint == fingerprint]

    def configure(self, knobs: dict[str, Any]) -> None:
        with self.lock:
            if "delay" in knobs:
                low, high = (knobs["delay"], knobs["delay"]) if isinstance(
                    knobs["delay"], int | float) else knobs["delay"]
                self.delay = (float(low), float(high))
            if "fail" in knobs:
                spec = knobs["fail"]
                self.fault = Fault(int(spec.get("status", 503)), int(spec["count"]),
                                   retry_after=spec.get("retry_after"))
            if "fail_for" in knobs:
                spec = knobs["fail_for"]
                self.fault = Fault(int(spec.get("status", 503)), 0,
                                   time.monotonic() + float(spec["seconds"]),
                                   spec.get("retry_after"))

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {"pid": os.getpid(), "delay": list(self.delay), "idempotent": self.idempotent,
                    "fault": vars(self.fault).copy(), "tickets": len(self.tickets),
                    "in_flight": [vars(r).copy() for r in self.in_flight.values()]}

    def pause(self) -> float:
        low, high = self.delay
        return random.uniform(low, high) if high > 0 else 0.0


def parse(path: str, body: dict[str, Any], headers: Any) -> Request:
    """The request in either dialect; ValueError when it says too little to act on."""
    replica = headers.get("X-Patrol-Replica", "")
    key = headers.get("Idempotency-Key", "")
    if path == "/v2/enqueue":
        fingerprint = body.get("dedup_key")
        action = body.get("event_action")
        details = (body.get("payload") or {}).get("custom_details") or {}
        if not fingerprint or action not in ("trigger", "acknowledge", "resolve"):
            raise ValueError("PagerDuty event without dedup_key or a known event_action")
        return Request("pagerduty", action, str(fingerprint), str(details.get("ticket", "")),
                       str(details.get("note", "")), replica, key)
    fingerprint, action = body.get("fingerprint"), body.get("action")
    if not fingerprint or not action:
        raise ValueError("the webhook body needs 'action' and 'fingerprint'")
    return Request("generic", str(action), str(fingerprint), str(body.get("number", "")),
                   str(body.get("text", "")), replica, key)


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Every complete journal line (a line cut short by kill -9 is skipped)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    return entries


def effects(entries: Iterable[dict[str, Any]]) -> dict[str, Counter[str]]:
    """Per fingerprint, how many requests had each effect."""
    out: dict[str, Counter[str]] = {}
    for entry in entries:
        out.setdefault(entry["fingerprint"], Counter())[entry["effect"]] += 1
    return out


class Handler(BaseHTTPRequestHandler):
    server_version = "HelpdeskDouble/1"
    desk: Desk  # set on the subclass made by ``serve``

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the journal is the log

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client went away (a killed collector): the journal has it

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"null")

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/healthz":
            self._send(200, {"ok": True})
        elif url.path == "/admin/state":
            self._send(200, self.desk.state())
        elif url.path == "/tickets":
            fingerprint = parse_qs(url.query).get("fingerprint", [""])[0]
            self._send(200, {"tickets": self.desk.find(fingerprint)})
        else:
            self._send(404, {"error": f"no such page {url.path}"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        try:
            body = self._body()
        except ValueError:
            self._send(400, {"error": "the body is not JSON"})
            return
        if path == "/admin":
            self._admin(body if isinstance(body, dict) else {})
            return
        if path not in ("/hook", "/v2/enqueue"):
            self._send(404, {"error": f"no such endpoint {path}"})
            return
        try:
            request = parse(path, body if isinstance(body, dict) else {}, self.headers)
        except ValueError as exc:
            self._send(400, {"error": str(exc)})
            return
        key = id(request)
        with self.desk.lock:
            self.desk.in_flight[key] = request
        try:
            time.sleep(self.desk.pause())  # "processing": a kill -9 now loses the request
            status, answer, headers = self.desk.process(request)
        finally:
            with self.desk.lock:
                self.desk.in_flight.pop(key, None)
        self._send(status, answer, headers)

    do_PUT = do_PATCH = do_POST  # the webhook's ``method`` may be PUT or PATCH

    def _admin(self, knobs: dict[str, Any]) -> None:
        self.desk.configure(knobs)
        self._send(200, self.desk.state())
        if knobs.get("die"):
            self.wfile.flush()
            os._exit(3)  # a crash: no cleanup, connections in flight are cut


def serve(port: int, journal: Path, idempotent: bool, delay: tuple[float, float]) -> None:
    desk = Desk(journal, idempotent, delay)
    handler = type("BoundHandler", (Handler,), {"desk": desk})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    print(f"helpdesk double on 127.0.0.1:{port}, journal {journal}", flush=True)
    server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--journal", type=Path, required=True)
    parser.add_argument("--idempotent", action="store_true",
                        help="an open for a known fingerprint returns the existing ticket")
    parser.add_argument("--delay", type=float, nargs=2, default=(0.0, 0.0),
                        metavar=("MIN", "MAX"), help="seconds each request takes")
    args = parser.parse_args(argv)
    serve(args.port, args.journal, args.idempotent, tuple(args.delay))


if __name__ == "__main__":
    sys.exit(main())
