"""A fake ServiceNow instance: the Table API for ``incident``, ``sys_user`` and
``sys_user_group``.

Checks what the Table API documents: basic or ``Bearer`` auth; JSON bodies whose
values are strings (choice values such as impact and urgency are "1".."3"); field
names the incident table has; encoded queries (``a=b^c!=d``); ``sysparm_fields``,
``sysparm_limit``, ``sysparm_display_value`` (false/true/all, references as
``{"link", "value"}``). Answers ``{"result": ...}``; errors as
``{"error": {"message", "detail"}, "status": "failure"}`` (401 not authenticated,
400 invalid table or value, 404 no record, 403 data policy: Resolved requires
close_code and close_notes). Priority is derived from impact x urgency with the
out-of-the-box lookup; ``active`` turns false at Closed (7) and Canceled (8).
"""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

from tests.fakes import FakeServer, Reply, Request

MATRIX = {("1", "1"): "1", ("1", "2"): "2", ("2", "1"): "2", ("1", "3"): "3", ("2", "2"): "3",
          ("3", "1"): "3", ("2", "3"): "4", ("3", "2"): "4", ("3", "3"): "5"}
STATE_NAMES = {"1": "New", "2": "In Progress", "3": "On Hold", "6": "Resolved", "7": "Closed",
               "8": "Canceled"}
WRITABLE = {"short_description", "description", "impact", "urgency", "category", "subcategory",
            "assignment_group", "assigned_to", "caller_id", "correlation_id",
            "correlation_display", "work_notes", "comments", "state", "close_code",
            "close_notes", "contact_type", "cmdb_ci", "business_service"}
REFERENCES = {"assignment_group": "sys_user_group", "assigned_to": "sys_user",
              "caller_id": "sys_user"}
CHOICES = {"impact": {"1", "2", "3"}, "urgency": {"1", "2", "3"}, "state": set(STATE_NAMES)}


def failure(status: int, message: str, detail: str | None = None) -> Reply:
    return Reply(status, {"error": {"message": message, "detail": detail}, "status": "failure"})


class FakeServiceNow(FakeServer):
    vendor = "servicenow"

    def __init__(self, username: str = "patrol.integration", password: str = "s3cret",
                 token: str | None = None) -> None:
        super().__init__()
        self.username, self.password, self.token = username, password, token
        self.tables: dict[str, dict[str, dict[str, str]]] = {
            "incident": {},
            "sys_user_group": {}, "sys_user": {},
        }
        self.work_notes: dict[str, list[str]] = {}
        self.add("sys_user_group", name="Database Team")
        self.add("sys_user", user_name="ada", name="Ada Lovelace")
        self.add("sys_user", user_name="patrol", name="Patrol Integration")

    def add(self, table: str, **fields: str) -> str:
        sys_id = uuid.uuid4().hex
        self.tables[table][sys_id] = {"sys_id": sys_id, **fields}
        return sys_id

    def display(self, table: str, sys_id: str) -> str:
        row = self.tables[table].get(sys_id, {})
        return row.get("name", "")

    # -- helpers for tests ----------------------------------------------------------------

    def assign(self, sys_id: str, user_name: str = "ada") -> None:
        with self.lock:
            user = next(k for k, u in self.tables["sys_user"].items()
                        if u["user_name"] == user_name)
            self.tables["incident"][sys_id]["assigned_to"] = user

    # -- routing --------------------------------------------------------------------------

    def authorised(self, req: Request) -> bool:
        header = req.headers.get("authorization", "")
        if self.token is not None:
            return header == f"Bearer {self.token}"
        basic = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return header == f"Basic {basic}"

    def not_found(self, req: Request) -> Reply:
        return failure(400, "Requested URI does not represent any resource", None)

    def route(self, req: Request) -> Reply | None:
        match = re.fullmatch(r"/api/now/(?:v[12]/)?table/(\w+)(?:/([0-9a-f]{32}))?", req.path)
        if not match:
            return None
        if not self.authorised(req):
            return failure(401, "User Not Authenticated", "Required to provide Auth information")
        table, sys_id = match.groups()
        if table not in self.tables:
            return failure(400, f"Invalid table {table}")
        if req.method == "GET" and sys_id is None:
            return self.query(req, table)
        if req.method == "GET":
            row = self.tables[table].get(sys_id)
            if row is None:
                return failure(404, "No Record found",
                               "Record doesn't exist or ACL restricts the record retrieval")
            return Reply(200, {"result": self.render(req, table, row)})
        if table != "incident":
            return None
        if req.method == "POST" and sys_id is None:
            return self.write(req, None)
        if req.method in ("PATCH", "PUT") and sys_id is not None:
            return self.write(req, sys_id)
        return None

    # -- reading --------------------------------------------------------------------------

    def render(self, req: Request, table: str, row: dict[str, str]) -> dict[str, Any]:
        wanted = req.arg("sysparm_fields")
        names = wanted.split(",") if wanted else list(row)
        mode = req.arg("sysparm_display_value", "false")
        if mode not in ("true", "false", "all"):
            self.violation(req, f"sysparm_display_value must be true, false or all: {mode!r}")
        out: dict[str, Any] = {}
        for name in names:
            value = row.get(name, "")
            ref_table = REFERENCES.get(name)
            shown = STATE_NAMES.get(value, value) if name == "state" else value
            if ref_table:
                shown = self.display(ref_table, value)
            if mode == "all":
                out[name] = {"display_value": shown, "value": value}
                if ref_table and value:
                    out[name]["link"] = f"{self.url}/api/now/table/{ref_table}/{value}"
            elif mode == "true":
                out[name] = shown
            elif ref_table and value:
                out[name] = {"link": f"{self.url}/api/now/table/{ref_table}/{value}",
                             "value": value}
            else:
                out[name] = value
        return out

    def query(self, req: Request, table: str) -> Reply:
        terms = [t for t in re.split(r"(?<!\^)\^(?!\^)", req.arg("sysparm_query", "")) if t]
        rows = list(self.tables[table].values())
        for term in terms:
            match = re.fullmatch(r"(\w+)(!=|=)(.*)", term)
            if not match:
                self.violation(req, f"encoded query term the fake does not know: {term!r}")
                return failure(400, "Invalid query")
            field, op, value = match.groups()
            value = value.replace("^^", "^")
            rows = [r for r in rows if (r.get(field, "") == value) == (op == "=")]
        limit = req.arg("sysparm_limit")
        if limit is not None:
            rows = rows[: int(limit)]
        return Reply(200, {"result": [self.render(req, table, r) for r in rows]},
                     {"X-Total-Count": str(len(rows))})

    # -- writing --------------------------------------------------------------------------

    def write(self, req: Request, sys_id: str | None) -> Reply:
        body = req.body
        if not isinstance(body, dict) or not body:
            self.violation(req, "body must be a JSON object of field values")
            return failure(400, "Exception while reading request", "No request body")
        for name, value in body.items():
            if name not in WRITABLE:
                self.violation(req, f"incident has no field '{name}' (the instance would "
                                    "silently ignore it)")
            if not isinstance(value, str):
                self.violation(req, f"'{name}' must be sent as a string, got {value!r}")
            if name in CHOICES and value not in CHOICES[name]:
                return failure(400, f"Invalid value '{value}' for {name}")
            ref_table = REFERENCES.get(name)
            if ref_table and value not in self.tables[ref_table]:
                self.violation(req, f"'{name}' must be a {ref_table} sys_id")
        incidents = self.tables["incident"]
        if sys_id is None:
            if "short_description" not in body:
                self.violation(req, "short_description is expected on a new incident")
            sys_id = uuid.uuid4().hex
            row = {"sys_id": sys_id, "number": f"INC{10001 + len(incidents):07d}",
                   "state": "1", "impact": "3", "urgency": "3", "active": "true",
                   "assigned_to": "", "close_code": "", "close_notes": ""}
            status = 201
        elif sys_id not in incidents:
            return failure(404, "No Record found",
                           "Record doesn't exist or ACL restricts the record retrieval")
        else:
            row, status = dict(incidents[sys_id]), 200
        notes = body.get("work_notes")
        row |= {k: v for k, v in body.items() if k not in ("work_notes", "comments")}
        if row["state"] == "6" and (not row.get("close_code") or not row.get("close_notes")):
            return failure(403, "Operation Failed", "Data Policy Exception: \n The following "
                           "fields are mandatory: Resolution code, Resolution notes\n")
        row["priority"] = MATRIX[(row["impact"], row["urgency"])]
        row["active"] = "false" if row["state"] in ("7", "8") else "true"
        incidents[sys_id] = row
        if notes:
            self.work_notes.setdefault(sys_id, []).append(notes)
        return Reply(status, {"result": self.render(req, "incident", row)},
                     {"Location": f"{self.url}/api/now/table/incident/{sys_id}"})
