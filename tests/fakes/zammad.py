"""A fake Zammad: tickets (create, show, update, search), ticket articles and tags.

Checks what docs.zammad.org documents: ``Authorization: Token token=...``; a new
ticket needs ``title``, ``group`` (a name that exists, else 422 "No lookup value
found for 'group'"), a customer (``customer_id`` as an id or ``guess:<email>``) and
an ``article`` (``body``; ``type`` note/email/phone/web; ``internal`` boolean;
``content_type`` text/plain or text/html); ``priority_id`` 1..3; ``tags`` a
comma-separated string. Search understands the adapter's ``tags:"..."`` query and
answers the documented ``{"tickets", "tickets_count", "assets"}`` or, with
``expand=true``, a list of tickets with association names (``state``, ``owner``...).
Errors: ``{"error": ..., "error_human": ...}``.

Default data as a fresh install has it: states 1 new, 2 open, 3 pending reminder,
4 closed, 5 merged, 7 pending close; priorities 1 low, 2 normal, 3 high; user 1 is
"-" (nobody).
"""

from __future__ import annotations

import re
from typing import Any

from tests.fakes import FakeServer, Reply, Request, expect_type

STATES = {1: "new", 2: "open", 3: "pending reminder", 4: "closed", 5: "merged",
          7: "pending close"}
PRIORITIES = {1: "1 low", 2: "2 normal", 3: "3 high"}
ARTICLE_TYPES = {"note", "email", "phone", "web"}
CONTENT_TYPES = {"text/plain", "text/html"}
TICKET_FIELDS = {"title", "group", "group_id", "customer", "customer_id", "article",
                 "priority", "priority_id", "state", "state_id", "owner", "owner_id", "tags",
                 "note"}


def fail(status: int, message: str) -> Reply:
    return Reply(status, {"error": message, "error_human": message})


class FakeZammad(FakeServer):
    vendor = "zammad"

    def __init__(self, token: str = "zammad-token-1") -> None:
        super().__init__()
        self.token = token
        self.groups = {1: "Users", 2: "Operations"}
        self.users = {1: "-", 3: "ada@example.com", 10: "monitoring@example.com"}
        self.tickets: dict[int, dict[str, Any]] = {}
        self.articles: dict[int, list[dict[str, Any]]] = {}
        self.tags: dict[int, list[str]] = {}

    # -- helpers for tests ----------------------------------------------------------------

    def assign(self, ticket_id: str, user_id: int = 3) -> None:
        with self.lock:
            self.tickets[int(ticket_id)]["owner_id"] = user_id

    def expanded(self, ticket: dict[str, Any]) -> dict[str, Any]:
        return ticket | {"state": STATES[ticket["state_id"]],
                         "priority": PRIORITIES[ticket["priority_id"]],
                         "group": self.groups[ticket["group_id"]],
                         "owner": self.users[ticket["owner_id"]],
                         "customer": self.users[ticket["customer_id"]]}

    # -- routing --------------------------------------------------------------------------

    def not_found(self, req: Request) -> Reply:
        return fail(404, f"No route matches [{req.method}] \"{req.path}\"")

    def route(self, req: Request) -> Reply | None:
        if not req.path.startswith("/api/v1/"):
            return None
        if req.headers.get("authorization") != f"Token token={self.token}":
            return fail(401, "Invalid token!")
        if req.path == "/api/v1/tickets" and req.method == "POST":
            return self.create(req)
        if req.path == "/api/v1/tickets/search" and req.method == "GET":
            return self.search(req)
        if req.path == "/api/v1/ticket_articles" and req.method == "POST":
            body = req.body or {}
            if not expect_type(self, req, body, "ticket_id", int):
                return fail(422, "Need ticket_id")
            if body["ticket_id"] not in self.tickets:
                return fail(404, f"Couldn't find Ticket with 'id'={body['ticket_id']}")
            refused = self.check_article(req, body)
            if refused is None:
                self.articles[body["ticket_id"]].append(body)
                return Reply(201, {"id": 100 + len(self.articles[body["ticket_id"]]),
                                   **body})
            return refused
        if req.path == "/api/v1/tags" and req.method == "GET":
            o_id = int(req.arg("o_id", "0"))
            if req.arg("object") != "Ticket" or o_id not in self.tickets:
                self.violation(req, "tags are listed with object=Ticket&o_id=<ticket id>")
            return Reply(200, {"tags": self.tags.get(o_id, [])})
        match = re.fullmatch(r"/api/v1/tickets/(\d+)", req.path)
        if not match:
            return None
        ticket = self.tickets.get(int(match.group(1)))
        if ticket is None:
            return fail(404, f"Couldn't find Ticket with 'id'={match.group(1)}")
        if req.method == "GET":
            expand = req.arg("expand") == "true"
            return Reply(200, self.expanded(ticket) if expand else ticket)
        if req.method == "PUT":
            return self.update(req, ticket)
        return None

    # -- endpoints ------------------------------------------------------------------------

    def check_article(self, req: Request, article: Any) -> Reply | None:
        if not isinstance(article, dict):
            self.violation(req, "article must be an object")
            return fail(422, "article must be an object")
        if not expect_type(self, req, article, "body", str):
            return fail(422, "Need at least article: { body: \"some text\" }")
        if article.get("type", "note") not in ARTICLE_TYPES:
            return fail(422, f"No lookup value found for 'type': {article['type']!r}")
        expect_type(self, req, article, "internal", bool, required=False)
        if article.get("content_type", "text/plain") not in CONTENT_TYPES:
            self.violation(req, f"content_type {article['content_type']!r}")
        return None

    def lookup_state(self, req: Request, body: dict[str, Any]) -> int | None:
        if "state" in body:
            for sid, name in STATES.items():
                if name == body["state"]:
                    return sid
            return -1
        return body.get("state_id")

    def create(self, req: Request) -> Reply:
        body = req.body or {}
        for name in body:
            if name not in TICKET_FIELDS:
                self.violation(req, f"tickets have no '{name}' attribute")
        if not expect_type(self, req, body, "title", str):
            return fail(422, "Title can't be blank")
        group = body.get("group")
        group_id = next((k for k, v in self.groups.items() if v == group), None)
        if group_id is None:
            return fail(422, f"No lookup value found for 'group': {group!r}")
        customer = body.get("customer_id")
        if isinstance(customer, str) and customer.startswith("guess:"):
            email = customer[len("guess:"):]
            customer = next((k for k, v in self.users.items() if v == email), None)
            if customer is None:
                customer = max(self.users) + 1
                self.users[customer] = email
        if customer not in self.users:
            self.violation(req, "customer_id must be a user id or 'guess:<email>'")
            return fail(422, "Customer can't be blank")
        if "article" not in body:
            self.violation(req, "a new ticket needs its first article")
        elif (refused := self.check_article(req, body["article"])) is not None:
            return refused
        priority = body.get("priority_id", 2)
        if priority not in PRIORITIES:
            return fail(422, f"No lookup value found for 'priority_id': {priority!r}")
        tags = body.get("tags", "")
        if not isinstance(tags, str):
            self.violation(req, "tags are given as one comma-separated string")
            tags = ""
        owner = 1
        if "owner" in body:
            owner = next((k for k, v in self.users.items() if v == body["owner"]), -1)
            if owner == -1:
                return fail(422, f"No lookup value found for 'owner': {body['owner']!r}")
        ticket_id = 1 + len(self.tickets)
        ticket = {"id": ticket_id, "number": f"{31000 + ticket_id}", "title": body["title"],
                  "group_id": group_id, "state_id": 1, "priority_id": priority,
                  "owner_id": owner, "customer_id": customer, "article_count": 1}
        self.tickets[ticket_id] = ticket
        self.articles[ticket_id] = [body.get("article")]
        self.tags[ticket_id] = [t.strip() for t in tags.split(",") if t.strip()]
        return Reply(201, ticket)

    def search(self, req: Request) -> Reply:
        query = req.arg("query", "")
        match = re.fullmatch(r'tags:"?([^"]+)"?', query)
        if not match:
            self.violation(req, f"the fake understands only tags:\"...\" queries: {query!r}")
            return Reply(200, [] if req.arg("expand") == "true" else {"tickets": []})
        hits = [t for tid, t in self.tickets.items() if match.group(1) in self.tags[tid]]
        hits = hits[: int(req.arg("limit", "10"))]
        if req.arg("expand") == "true":
            return Reply(200, [self.expanded(t) for t in hits])
        return Reply(200, {"tickets": [t["id"] for t in hits], "tickets_count": len(hits),
                           "assets": {"Ticket": {str(t["id"]): t for t in hits}}})

    def update(self, req: Request, ticket: dict[str, Any]) -> Reply:
        body = req.body or {}
        for name in body:
            if name not in TICKET_FIELDS:
                self.violation(req, f"tickets have no '{name}' attribute")
        state = self.lookup_state(req, body)
        if state == -1:
            return fail(422, f"No lookup value found for 'state': {body['state']!r}")
        if "priority_id" in body and body["priority_id"] not in PRIORITIES:
            return fail(422, f"No lookup value found for 'priority_id': {body['priority_id']!r}")
        if "article" in body:
            refused = self.check_article(req, body["article"])
            if refused is not None:
                return refused
            self.articles[ticket["id"]].append(body["article"])
        if state is not None:
            ticket["state_id"] = state
        if "priority_id" in body:
            ticket["priority_id"] = body["priority_id"]
        return Reply(200, ticket)
