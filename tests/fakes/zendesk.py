"""A fake Zendesk Support account: the Tickets API (list by external_id, create,
show with sideloaded users, update).

Checks what Zendesk documents: basic auth ``{email}/token:{api_token}`` (password
auth is refused); ``{"ticket": {...}}`` bodies; ``priority`` in urgent/high/normal/
low, ``type`` in problem/incident/question/task, ``status`` in
new/open/pending/hold/solved/closed; ``comment`` with ``body`` or ``html_body`` and a
boolean ``public``; ``tags`` a list of strings; ``external_id`` a string;
``group_id``/``assignee_id`` integers naming existing records. Errors in Zendesk's
shapes: 401 ``{"error": "Couldn't authenticate you"}``, 404 ``RecordNotFound``,
422 ``RecordInvalid`` with ``details`` per field (also for any update of a closed
ticket).
"""

from __future__ import annotations

import base64
import re
from typing import Any

from tests.fakes import FakeServer, Reply, Request, expect_type

PRIORITIES = {"urgent", "high", "normal", "low"}
TYPES = {"problem", "incident", "question", "task"}
STATUSES = {"new", "open", "pending", "hold", "solved", "closed"}
FIELDS = {"subject", "comment", "priority", "type", "status", "tags", "external_id",
          "group_id", "assignee_id", "assignee_email", "custom_fields", "requester_id"}


def invalid(field: str, description: str) -> Reply:
    return Reply(422, {"error": "RecordInvalid", "description": "Record validation errors",
                       "details": {field: [{"description": description,
                                            "error": "InvalidValue"}]}})


class FakeZendesk(FakeServer):
    vendor = "zendesk"

    def __init__(self, email: str = "bot@example.com", token: str = "zd-token-1") -> None:
        super().__init__()
        self.email, self.token = email, token
        self.groups = {360001: "Operations"}
        self.users = {901: {"id": 901, "name": "Ada Lovelace", "email": "ada@example.com"}}
        self.tickets: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}

    # -- helpers for tests ----------------------------------------------------------------

    def assign(self, ticket_id: str, user_id: int = 901) -> None:
        with self.lock:
            self.tickets[int(ticket_id)]["assignee_id"] = user_id
            self.tickets[int(ticket_id)]["status"] = "open"

    # -- routing --------------------------------------------------------------------------

    def authorised(self, req: Request) -> bool:
        good = base64.b64encode(f"{self.email}/token:{self.token}".encode()).decode()
        return req.headers.get("authorization") == f"Basic {good}"

    def not_found(self, req: Request) -> Reply:
        return Reply(404, {"error": "InvalidEndpoint", "description": "Not found"})

    def route(self, req: Request) -> Reply | None:
        match = re.fullmatch(r"/api/v2/tickets(?:/(\d+))?(?:\.json)?", req.path)
        if not match:
            return None
        if not self.authorised(req):
            return Reply(401, {"error": "Couldn't authenticate you"})
        ticket_id = match.group(1)
        if ticket_id is None and req.method == "GET":
            return self.list(req)
        if ticket_id is None and req.method == "POST":
            return self.create(req)
        if ticket_id is None:
            return None
        ticket = self.tickets.get(int(ticket_id))
        if ticket is None:
            return Reply(404, {"error": "RecordNotFound", "description": "Not found"})
        if req.method == "GET":
            include = req.arg("include")
            body: dict[str, Any] = {"ticket": ticket}
            if include == "users":
                ids = {ticket.get("assignee_id"), ticket.get("requester_id")}
                body["users"] = [u for k, u in self.users.items() if k in ids]
            elif include is not None:
                self.violation(req, f"unexpected sideload {include!r}")
            return Reply(200, body)
        if req.method == "PUT":
            return self.update(req, ticket)
        return None

    # -- endpoints ------------------------------------------------------------------------

    def list(self, req: Request) -> Reply:
        wanted = req.arg("external_id")
        if wanted is None:
            self.violation(req, "the adapter should list by external_id only")
        hits = [t for t in self.tickets.values() if t["external_id"] == wanted]
        return Reply(200, {"tickets": hits, "next_page": None, "previous_page": None,
                           "count": len(hits)})

    def check(self, req: Request, ticket: Any, creating: bool) -> Reply | None:
        if not isinstance(ticket, dict):
            self.violation(req, "body must be {'ticket': {...}}")
            return Reply(400, {"error": "InvalidValue", "description": "ticket is missing"})
        for name in ticket:
            if name not in FIELDS:
                self.violation(req, f"tickets have no '{name}' property")
        if creating and not expect_type(self, req, ticket, "comment", dict):
            return invalid("base", "Description: cannot be blank")
        comment = ticket.get("comment")
        if comment is not None:
            text = comment.get("html_body", comment.get("body"))
            if not isinstance(text, str) or not text:
                self.violation(req, "comment needs a non-empty body or html_body")
                return invalid("comment", "Comment: cannot be blank")
            expect_type(self, req, comment, "public", bool, required=False)
        expect_type(self, req, ticket, "subject", str, required=creating)
        for name, allowed in (("priority", PRIORITIES), ("type", TYPES),
                              ("status", STATUSES)):
            if name in ticket and ticket[name] not in allowed:
                return invalid(name, f"{name.title()}: {ticket[name]} is not valid")
        if "tags" in ticket and (not isinstance(ticket["tags"], list) or
                                 not all(isinstance(t, str) for t in ticket["tags"])):
            self.violation(req, "tags must be a list of strings")
        expect_type(self, req, ticket, "external_id", str, required=False)
        for name, known in (("group_id", self.groups), ("assignee_id", self.users)):
            if name in ticket and expect_type(self, req, ticket, name, int) \
                    and ticket[name] not in known:
                return invalid(name.removesuffix("_id"),
                               f"{name.removesuffix('_id').title()}: is invalid")
        return None

    def create(self, req: Request) -> Reply:
        ticket = (req.body or {}).get("ticket")
        refused = self.check(req, ticket, creating=True)
        if refused is not None:
            return refused
        ticket_id = 1001 + len(self.tickets)
        stored = {"id": ticket_id, "url": f"{self.url}/api/v2/tickets/{ticket_id}.json",
                  "subject": ticket["subject"], "status": ticket.get("status", "new"),
                  "priority": ticket.get("priority"), "type": ticket.get("type"),
                  "tags": sorted(set(ticket.get("tags", []))),
                  "external_id": ticket.get("external_id"), "group_id": ticket.get("group_id"),
                  "assignee_id": ticket.get("assignee_id"), "requester_id": None,
                  "description": ticket["comment"].get("body") or ticket["comment"]["html_body"]}
        self.tickets[ticket_id] = stored
        self.comments[ticket_id] = [ticket["comment"]]
        return Reply(201, {"ticket": stored, "audit": {"ticket_id": ticket_id, "events": []}},
                     {"Location": stored["url"]})

    def update(self, req: Request, stored: dict[str, Any]) -> Reply:
        ticket = (req.body or {}).get("ticket")
        refused = self.check(req, ticket, creating=False)
        if refused is not None:
            return refused
        if stored["status"] == "closed":
            return invalid("status", "Status: closed prevents ticket update")
        if "comment" in ticket:
            self.comments[stored["id"]].append(ticket["comment"])
        stored |= {k: v for k, v in ticket.items() if k != "comment"}
        return Reply(200, {"ticket": stored, "audit": {"ticket_id": stored["id"], "events": []}})
