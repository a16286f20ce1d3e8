"""A fake GLPI ``apirest.php``: sessions, Ticket, ITILFollowup, ITILSolution,
Ticket_User, and the search engine for the adapter's criteria.

Checks what GLPI's apirest.md documents: ``initSession`` with ``Authorization:
user_token <token>`` (or basic) and the ``App-Token``; every other call with a live
``Session-Token`` and the ``App-Token``; GET requests with an empty body; writes as
``{"input": {...}}``. Tickets: ``name`` required, ``urgency``/``impact`` 1..5,
``priority`` 1..6, ``type`` 1 (incident) or 2 (request), ``status`` 1..6, dropdown ids
that exist. Errors are GLPI's two-element arrays ``["ERROR_CODE", "message"]``:
401 ERROR_SESSION_TOKEN_INVALID / ERROR_GLPI_LOGIN_USER_TOKEN, 400
ERROR_SESSION_TOKEN_MISSING / ERROR_WRONG_APP_TOKEN_PARAMETER / ERROR_GLPI_ADD, 404
ERROR_ITEM_NOT_FOUND.

GLPI's own rules reproduced: a ticket with an assigned technician goes from new (1)
to processing (2); status 2 without one falls back to 1; adding a solution sets
status 5 and a second solution on a solved ticket is refused.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from tests.fakes import FakeServer, Reply, Request, expect_type

TICKET_FIELDS = {"name", "content", "urgency", "impact", "priority", "type", "status",
                 "entities_id", "itilcategories_id", "_users_id_assign", "_groups_id_assign"}


def glpi_error(status: int, code: str, message: str) -> Reply:
    return Reply(status, [code, message])


class FakeGlpi(FakeServer):
    vendor = "glpi"

    def __init__(self, user_token: str = "u" * 40, app_token: str = "a" * 40) -> None:
        super().__init__()
        self.user_token, self.app_token = user_token, app_token
        self.sessions: set[str] = set()
        self.entities = {0: "Root entity", 3: "Datacenter"}
        self.categories = {4: "Storage"}
        self.users = {7: "ada", 8: "bob"}
        self.groups = {2: "Ops"}
        self.tickets: dict[int, dict[str, Any]] = {}
        self.actors: list[dict[str, Any]] = []
        self.followups: dict[int, list[dict[str, Any]]] = {}
        self.solutions: dict[int, list[dict[str, Any]]] = {}

    # -- helpers for tests ----------------------------------------------------------------

    def expire_sessions(self) -> None:
        with self.lock:
            self.sessions.clear()

    def assign(self, ticket_id: str, user_id: int = 7) -> None:
        with self.lock:
            self.add_actor(int(ticket_id), user_id)

    def add_actor(self, ticket_id: int, user_id: int) -> None:
        self.actors.append({"id": len(self.actors) + 1, "tickets_id": ticket_id,
                            "users_id": user_id, "type": 2, "use_notification": 1})
        if self.tickets[ticket_id]["status"] == 1:
            self.tickets[ticket_id]["status"] = 2

    def assigned(self, ticket_id: int) -> bool:
        return any(a["tickets_id"] == ticket_id and a["type"] == 2 for a in self.actors)

    # -- routing --------------------------------------------------------------------------

    def not_found(self, req: Request) -> Reply:
        return glpi_error(400, "ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM",
                          "resource not found or not an instance of CommonDBTM")

    def route(self, req: Request) -> Reply | None:
        if not req.path.startswith("/apirest.php/"):
            return None
        if req.method == "GET" and req.raw:
            self.violation(req, "GET requests must have an empty body")
            return glpi_error(400, "ERROR_JSON_PAYLOAD_FORBIDDEN",
                              "GET Request should not have json payload (http body)")
        if req.headers.get("app-token") != self.app_token:
            return glpi_error(400, "ERROR_WRONG_APP_TOKEN_PARAMETER",
                              "parameter app_token seems wrong")
        rest = req.path[len("/apirest.php/"):].rstrip("/")
        if rest == "initSession" and req.method == "GET":
            return self.init_session(req)
        session = req.headers.get("session-token")
        if session is None:
            self.violation(req, "every call after initSession needs the Session-Token header")
            return glpi_error(400, "ERROR_SESSION_TOKEN_MISSING",
                              "parameter session_token is missing or empty")
        if session not in self.sessions:
            return glpi_error(401, "ERROR_SESSION_TOKEN_INVALID", "session_token seems invalid")
        if rest == "killSession" and req.method == "GET":
            self.sessions.discard(session)
            return Reply(200, {})
        if rest == "search/Ticket" and req.method == "GET":
            return self.search(req)
        if rest in ("Ticket", "ITILFollowup", "ITILSolution") and req.method == "POST":
            payload = (req.body or {}).get("input")
            if not isinstance(payload, dict):
                self.violation(req, "body must be {'input': {...}}")
                return glpi_error(400, "ERROR_BAD_ARRAY", "input parameter must be an array "
                                                          "of objects")
            return {"Ticket": self.create, "ITILFollowup": self.followup,
                    "ITILSolution": self.solution}[rest](req, payload)
        match = re.fullmatch(r"Ticket/(\d+)(/Ticket_User)?", rest)
        if not match:
            return None
        ticket = self.tickets.get(int(match.group(1)))
        if ticket is None:
            return glpi_error(404, "ERROR_ITEM_NOT_FOUND", "Item not found")
        if match.group(2) and req.method == "GET":
            expand = req.arg("expand_dropdowns") == "true"
            return Reply(200, [a | ({"users_id": self.users[a["users_id"]]} if expand else {})
                               for a in self.actors if a["tickets_id"] == ticket["id"]])
        if match.group(2) is None and req.method == "GET":
            return Reply(200, ticket)
        if match.group(2) is None and req.method == "PUT":
            return self.update(req, ticket)
        return None

    # -- endpoints ------------------------------------------------------------------------

    def init_session(self, req: Request) -> Reply:
        auth = req.headers.get("authorization")
        if auth is None:
            return glpi_error(400, "ERROR_LOGIN_PARAMETERS_MISSING",
                              "parameter(s) login, password or user_token are missing")
        if auth != f"user_token {self.user_token}":
            return glpi_error(401, "ERROR_GLPI_LOGIN_USER_TOKEN",
                              "parameter user_token seems invalid")
        token = secrets.token_hex(20)
        self.sessions.add(token)
        return Reply(200, {"session_token": token})

    def check_ticket(self, req: Request, data: dict[str, Any]) -> Reply | None:
        for name in data:
            if name not in TICKET_FIELDS:
                self.violation(req, f"Ticket has no field '{name}'")
            elif name not in ("name", "content"):
                expect_type(self, req, data, name, int)
        ranges = {"urgency": range(1, 6), "impact": range(1, 6), "priority": range(1, 7),
                  "type": range(1, 3), "status": range(1, 7)}
        for name, allowed in ranges.items():
            if name in data and data[name] not in allowed:
                self.violation(req, f"{name} must be in {allowed.start}..{allowed.stop - 1}")
                return glpi_error(400, "ERROR_GLPI_ADD", f"invalid {name}")
        for name, known in (("entities_id", self.entities),
                            ("itilcategories_id", self.categories),
                            ("_users_id_assign", self.users), ("_groups_id_assign", self.groups)):
            if name in data and data[name] not in known:
                return glpi_error(400, "ERROR_GLPI_ADD",
                                  "You don't have permission to perform this action.")
        return None

    def create(self, req: Request, data: dict[str, Any]) -> Reply:
        refused = self.check_ticket(req, data)
        if refused is not None:
            return refused
        if not isinstance(data.get("name"), str) or not data["name"]:
            self.violation(req, "a ticket needs a name")
            return glpi_error(400, "ERROR_GLPI_ADD", "Title is mandatory")
        expect_type(self, req, data, "content", str)
        ticket_id = 1 + len(self.tickets)
        self.tickets[ticket_id] = {
            "id": ticket_id, "name": data["name"], "content": data.get("content", ""),
            "urgency": data.get("urgency", 3), "impact": data.get("impact", 3),
            "priority": data.get("priority", 3), "type": data.get("type", 1), "status": 1,
            "entities_id": data.get("entities_id", 0),
            "itilcategories_id": data.get("itilcategories_id", 0)}
        self.followups[ticket_id], self.solutions[ticket_id] = [], []
        if "_users_id_assign" in data:
            self.add_actor(ticket_id, data["_users_id_assign"])
        return Reply(201, {"id": ticket_id, "message": ""},
                     {"Location": f"{self.url}/apirest.php/Ticket/{ticket_id}"})

    def search(self, req: Request) -> Reply:
        rows = list(self.tickets.values())
        i = 0
        while f"criteria[{i}][field]" in req.query:
            field, kind = req.arg(f"criteria[{i}][field]"), req.arg(f"criteria[{i}][searchtype]")
            value = req.arg(f"criteria[{i}][value]") or ""
            if i and req.arg(f"criteria[{i}][link]") != "AND":
                self.violation(req, f"criteria[{i}] needs link=AND")
            if (field, kind) == ("1", "contains"):
                rows = [t for t in rows if value.lower() in t["name"].lower()]
            elif (field, kind) == ("12", "equals") and value in ("notold", "notclosed"):
                done = (5, 6) if value == "notold" else (6,)
                rows = [t for t in rows if t["status"] not in done]
            else:
                self.violation(req, f"criterion the fake does not know: {field} {kind} {value}")
            i += 1
        if i == 0:
            self.violation(req, "searching every ticket: criteria are missing")
        start, end = (int(x) for x in (req.arg("range") or "0-49").split("-"))
        page = rows[start:end + 1]
        data = [{"2": t["id"], "1": t["name"], "12": t["status"], "80": "Root entity"}
                for t in page]
        headers = {"Content-Range": f"{start}-{start + len(page)}/{len(rows)}",
                   "Accept-Range": "Ticket 1000"}
        body: dict[str, Any] = {"totalcount": len(rows), "count": len(page), "sort": [1],
                                "order": ["ASC"]}
        if page:
            body["data"] = data
        return Reply(206 if len(page) < len(rows) else 200, body, headers)

    def update(self, req: Request, ticket: dict[str, Any]) -> Reply:
        data = (req.body or {}).get("input")
        if not isinstance(data, dict):
            self.violation(req, "body must be {'input': {...}}")
            return glpi_error(400, "ERROR_BAD_ARRAY", "input parameter must be an array")
        refused = self.check_ticket(req, data)
        if refused is not None:
            return refused
        ticket |= data
        if ticket["status"] == 2 and not self.assigned(ticket["id"]):
            ticket["status"] = 1  # GLPI: "processing (assigned)" needs someone assigned
        return Reply(200, [{str(ticket["id"]): True, "message": ""}])

    def child(self, req: Request, data: dict[str, Any]) -> dict[str, Any] | Reply:
        if data.get("itemtype") != "Ticket" or not expect_type(self, req, data, "items_id", int):
            self.violation(req, "needs itemtype 'Ticket' and an integer items_id")
            return glpi_error(400, "ERROR_GLPI_ADD", "Mandatory fields are not filled")
        if not expect_type(self, req, data, "content", str):
            return glpi_error(400, "ERROR_GLPI_ADD", "Mandatory fields are not filled")
        ticket = self.tickets.get(data["items_id"])
        if ticket is None:
            return glpi_error(400, "ERROR_GLPI_ADD", "Item not found")
        return ticket

    def followup(self, req: Request, data: dict[str, Any]) -> Reply:
        ticket = self.child(req, data)
        if isinstance(ticket, Reply):
            return ticket
        expect_type(self, req, data, "is_private", int, required=False)
        self.followups[ticket["id"]].append(data)
        return Reply(201, {"id": sum(map(len, self.followups.values())), "message": ""})

    def solution(self, req: Request, data: dict[str, Any]) -> Reply:
        ticket = self.child(req, data)
        if isinstance(ticket, Reply):
            return ticket
        if ticket["status"] in (5, 6):
            return glpi_error(400, "ERROR_GLPI_ADD", "The item is already solved, did anyone "
                                                     "pushed a solution before you?")
        self.solutions[ticket["id"]].append(data)
        ticket["status"] = 5
        return Reply(201, {"id": sum(map(len, self.solutions.values())), "message": ""})
