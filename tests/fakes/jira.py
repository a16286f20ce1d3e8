"""A fake Jira (Cloud REST v3 or Server/Data Center REST v2) for the adapter's tests.

Checks what the vendor documents
(https://developer.atlassian.com/cloud/jira/platform/rest/v3/intro/ and the Data
Center REST reference): basic auth ``email:api_token`` on Cloud, ``Bearer <PAT>`` on
Data Center; ``fields.project.key``, ``summary`` (one line, <= 255), ``issuetype``,
``priority`` by a name the instance has, ``labels`` without spaces; on v3 every rich
text (description, comment body) must be an ADF document (``type: doc``,
``version: 1``, ``content`` list), on v2 a string. Search: ``POST
/rest/api/3/search/jql`` on Cloud (the old ``/rest/api/3/search`` answers 410 Gone,
as Cloud does since 2025), ``GET /rest/api/2/search`` on Data Center. Errors use
Jira's ``{"errorMessages": [...], "errors": {...}}`` body.

Workflow: To Do (new) -> In Progress (indeterminate) -> Done (done), with a
"Reopen" transition back to To Do; Done sets resolution "Done".
"""

from __future__ import annotations

import base64
import re
from typing import Any

from tests.fakes import FakeServer, Reply, Request, expect_type

STATUSES = {
    "To Do": {"id": "10000", "name": "To Do", "statusCategory": {"id": 2, "key": "new"}},
    "In Progress": {"id": "3", "name": "In Progress",
                    "statusCategory": {"id": 4, "key": "indeterminate"}},
    "Done": {"id": "10001", "name": "Done", "statusCategory": {"id": 3, "key": "done"}},
}
TRANSITIONS = {  # from status: [(id, name, to)]
    "To Do": [("11", "Start Progress", "In Progress"), ("31", "Done", "Done")],
    "In Progress": [("21", "Stop Progress", "To Do"), ("31", "Done", "Done")],
    "Done": [("41", "Reopen", "To Do")],
}
JQL = re.compile(r'^labels = "([^"]+)" AND statusCategory != Done$')


def error(status: int, messages: list[str] | None = None,
          errors: dict[str, str] | None = None) -> Reply:
    return Reply(status, {"errorMessages": messages or [], "errors": errors or {}})


def is_adf(doc: Any) -> bool:
    return (isinstance(doc, dict) and doc.get("type") == "doc" and doc.get("version") == 1
            and isinstance(doc.get("content"), list))


class FakeJira(FakeServer):
    vendor = "jira"

    def __init__(self, api_version: int = 3, email: str = "bot@example.com",
                 token: str = "api-token-1", projects: tuple[str, ...] = ("OPS",),
                 priorities: tuple[str, ...] = ("Highest", "High", "Medium", "Low", "Lowest"),
                 issue_types: tuple[str, ...] = ("Task", "Incident", "Bug")) -> None:
        super().__init__()
        self.api_version = api_version
        self.email, self.token = email, token
        self.projects = set(projects)
        self.priorities = set(priorities)
        self.issue_types = set(issue_types)
        self.issues: dict[str, dict[str, Any]] = {}
        self.comments: dict[str, list[Any]] = {}

    # -- helpers for tests ----------------------------------------------------------------

    def assign(self, key: str, who: str = "Ada Lovelace") -> None:
        """What an agent does in Jira's UI: take the issue."""
        with self.lock:
            self.issues[key]["fields"]["assignee"] = {"accountId": "5b10ac8d82e05b22cc7d4ef5",
                                                      "name": "ada", "displayName": who}

    def resolve_as(self, key: str, resolution: str) -> None:
        with self.lock:
            fields = self.issues[key]["fields"]
            fields["status"], fields["resolution"] = STATUSES["Done"], {"name": resolution}

    # -- routing --------------------------------------------------------------------------

    def authorised(self, req: Request) -> bool:
        header = req.headers.get("authorization", "")
        if self.api_version == 3:
            good = "Basic " + base64.b64encode(f"{self.email}:{self.token}".encode()).decode()
        else:
            good = f"Bearer {self.token}"
        return header == good

    def not_found(self, req: Request) -> Reply:
        return error(404, ["The requested resource does not exist."])

    def route(self, req: Request) -> Reply | None:
        api = f"/rest/api/{self.api_version}"
        if not req.path.startswith(api + "/"):
            return None
        if not self.authorised(req):
            return Reply(401, {"errorMessages": ["You are not authenticated. Authentication "
                                                 "required to perform this operation."],
                               "errors": {}})
        rest = req.path[len(api):]
        if rest == "/issue" and req.method == "POST":
            return self.create(req)
        if rest == "/search/jql" and self.api_version == 3:
            return self.search(req, req.body or {}) if req.method == "POST" else None
        if rest == "/search":
            if self.api_version == 3:
                self.violation(req, "GET/POST /rest/api/3/search was removed; use "
                                    "POST /rest/api/3/search/jql")
                return error(410, ["The requested API has been removed. Please migrate to "
                                   "the /rest/api/3/search/jql API."])
            if req.method == "GET":
                return self.search(req, {"jql": req.arg("jql"),
                                         "maxResults": int(req.arg("maxResults", "50"))})
            return None
        match = re.fullmatch(r"/issue/([A-Z]+-\d+)(/comment|/transitions)?", rest)
        if not match:
            return None
        key, sub = match.groups()
        issue = self.issues.get(key)
        if issue is None:
            return error(404, ["Issue does not exist or you do not have permission to see it."])
        if sub is None and req.method == "GET":
            return Reply(200, issue)
        if sub is None and req.method == "PUT":
            return self.edit(req, issue)
        if sub == "/comment" and req.method == "POST":
            return self.comment(req, key)
        if sub == "/transitions" and req.method == "GET":
            status = issue["fields"]["status"]["name"]
            return Reply(200, {"expand": "transitions", "transitions": [
                {"id": tid, "name": name, "to": STATUSES[to], "isAvailable": True}
                for tid, name, to in TRANSITIONS[status]]})
        if sub == "/transitions" and req.method == "POST":
            return self.transition(req, issue)
        return None

    # -- endpoints ------------------------------------------------------------------------

    def rich_text_ok(self, req: Request, value: Any, what: str) -> bool:
        if self.api_version == 3 and not is_adf(value):
            self.violation(req, f"{what} must be an ADF document on REST v3")
            return False
        if self.api_version == 2 and not isinstance(value, str):
            self.violation(req, f"{what} must be a wiki-markup string on REST v2")
            return False
        return True

    def create(self, req: Request) -> Reply:
        fields = (req.body or {}).get("fields")
        if not isinstance(fields, dict):
            self.violation(req, "body must be {'fields': {...}}")
            return error(400, ["Issue must have 'fields'."])
        bad: dict[str, str] = {}
        project = (fields.get("project") or {}).get("key")
        if project not in self.projects:
            bad["project"] = "valid project is required"
        summary = fields.get("summary")
        if not isinstance(summary, str) or not summary or "\n" in summary or len(summary) > 255:
            self.violation(req, "summary must be one line of at most 255 characters")
            bad["summary"] = "You must specify a summary of the issue."
        if (fields.get("issuetype") or {}).get("name") not in self.issue_types:
            bad["issuetype"] = "Specify an issue type"
        if "description" in fields and not self.rich_text_ok(req, fields["description"],
                                                              "description"):
            bad["description"] = "Operation value must be an Atlassian Document"
        if "priority" in fields and (fields["priority"] or {}).get("name") not in self.priorities:
            bad["priority"] = "Specify a valid value for priority"
        labels = fields.get("labels", [])
        if not isinstance(labels, list) or any(not isinstance(x, str) or " " in x
                                               for x in labels):
            self.violation(req, "labels must be strings without spaces")
            bad["labels"] = "The label '...' contains spaces which is invalid."
        if "assignee" in fields:
            field = "accountId" if self.api_version == 3 else "name"
            if not isinstance(fields["assignee"], dict) or \
                    not isinstance(fields["assignee"].get(field), str):
                self.violation(req, f"assignee must be {{'{field}': ...}} on "
                                    f"v{self.api_version}")
        if bad:
            return error(400, [], bad)
        key = f"{project}-{len(self.issues) + 1}"
        issue_id = str(10000 + len(self.issues) + 1)
        self.issues[key] = {
            "id": issue_id, "key": key, "self": f"{self.url}/rest/api/{self.api_version}/"
                                                f"issue/{issue_id}",
            "fields": {"summary": summary, "description": fields.get("description"),
                       "priority": {"name": fields.get("priority", {}).get("name", "Medium")},
                       "labels": list(labels), "issuetype": fields["issuetype"],
                       "project": {"key": project}, "status": STATUSES["To Do"],
                       "assignee": fields.get("assignee"), "resolution": None}}
        self.comments[key] = []
        return Reply(201, {"id": issue_id, "key": key, "self": self.issues[key]["self"]})

    def search(self, req: Request, body: dict[str, Any]) -> Reply:
        jql = body.get("jql")
        match = JQL.match(jql or "")
        if not match:
            self.violation(req, f"the fake understands only the adapter's JQL, got {jql!r}")
            return error(400, [f"Error in the JQL Query: {jql!r}"])
        if self.api_version == 3 and not isinstance(body.get("fields"), list):
            self.violation(req, "search/jql returns only ids unless 'fields' (a list) is given")
        label = match.group(1)
        hits = [{"id": i["id"], "key": k, "self": i["self"], "fields": {}}
                for k, i in self.issues.items() if label in i["fields"]["labels"]
                and i["fields"]["status"]["statusCategory"]["key"] != "done"]
        hits = hits[: int(body.get("maxResults") or 50)]
        if self.api_version == 3:
            return Reply(200, {"issues": hits, "isLast": True})
        return Reply(200, {"startAt": 0, "maxResults": 50, "total": len(hits), "issues": hits})

    def edit(self, req: Request, issue: dict[str, Any]) -> Reply:
        fields = (req.body or {}).get("fields") or {}
        if "priority" in fields:
            name = (fields["priority"] or {}).get("name")
            if name not in self.priorities:
                return error(400, [], {"priority": "Specify a valid value for priority"})
            issue["fields"]["priority"] = {"name": name}
        return Reply(204)

    def comment(self, req: Request, key: str) -> Reply:
        body = (req.body or {}).get("body")
        if not self.rich_text_ok(req, body, "comment body"):
            return error(400, [], {"comment": "Comment body can not be empty!"})
        self.comments[key].append(body)
        return Reply(201, {"id": str(10000 + len(self.comments[key])), "body": body})

    def transition(self, req: Request, issue: dict[str, Any]) -> Reply:
        tid = ((req.body or {}).get("transition") or {}).get("id")
        if not expect_type(self, req, (req.body or {}).get("transition") or {}, "id", str):
            return error(400, ["Missing transition id"])
        status = issue["fields"]["status"]["name"]
        for candidate, _name, to in TRANSITIONS[status]:
            if candidate == tid:
                issue["fields"]["status"] = STATUSES[to]
                issue["fields"]["resolution"] = {"name": "Done"} if to == "Done" else None
                return Reply(204)
        return error(400, [f"Transition id '{tid}' is not valid for this issue."])
