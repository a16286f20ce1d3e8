"""Redmine (4.1+, tested against Debian's 5.0.4) through its REST API.

Auth: the ``X-Redmine-API-Key`` header (``api_key``; "My account" -> API access key; the
REST API must be enabled in Administration -> Settings -> API).

Decisions:

- The fingerprint lives in an issue **custom field** (default name "Alert fingerprint",
  string format, "Used as a filter" ticked). Its id is looked up by name on
  ``GET /custom_fields.json``, which only administrators may call: a non-admin account
  configures ``fingerprint_field`` as the numeric id instead. ``find()`` filters with the
  full query syntax (``f[]/op[]/v[][]``) so a fingerprint starting with ``!``, ``~`` or
  ``*`` or containing ``|`` is never read as an operator, among **open** statuses only.
- Names are resolved to ids once per adapter instance (priorities, trackers, statuses,
  users, the project with its trackers and categories); a name that does not exist is a
  :class:`PermanentError` listing the names that do.
- Priorities: P1 Immediate, P2 Urgent, P3 High, P4 Normal (``priority_map``: names or ids).
- Resolve sets ``resolved_status`` (default "Closed": Redmine's "Resolved" is *not* a
  closed status, so ``status_id=open`` lookups would still find it); reopen sets
  ``reopen_status`` (default "New": the issue is open and untouched again; "In Progress"
  would read back as acknowledged). The note travels in the same ``PUT``.
- ``status()``: a status in ``wont_fix_statuses`` (default "Rejected") -> closed + wont_fix;
  any other closed status (``is_closed``) -> closed; ``resolved_status`` or "Resolved"
  -> resolved; a status in ``acknowledged_statuses`` (default "In Progress", "Feedback") or
  an assignee -> acknowledged; else open.
- ``resolve_by`` becomes the issue's due date (UTC), with today as start date.
- Body and notes are Textile (``markup.to_textile``), Redmine's default text formatting.

Vendor documentation: https://www.redmine.org/projects/redmine/wiki/Rest_api (Issues,
Projects, Custom Fields, Enumerations, Issue Statuses, Trackers, Users).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import requests
from pydantic import Field

from patrol.contract import markup
from patrol.ticketing_bridge.http import HttpClient
from patrol.ticketing_bridge.protocol import (
    Attachment,
    Destination,
    ExternalRef,
    PermanentError,
    RemoteStatus,
    TicketView,
    is_patrol_note,
)
from patrol.ticketing_bridge.settings import AdapterSettings, Secret

PRIORITIES = {"P1": "Immediate", "P2": "Urgent", "P3": "High", "P4": "Normal"}
SUBJECT_MAX = 255


def title(view: TicketView) -> str:
    """``[TS20261122001] <title>``, cut to Redmine's 255 characters."""
    prefix = f"[{view.number}]"
    text = view.title if view.title.startswith(prefix) else f"{prefix} {view.title}"
    return text[:SUBJECT_MAX]


class Redmine:
    type: ClassVar[str] = "redmine"

    class Config(AdapterSettings):
        url: str = Field(description="Redmine's base URL, e.g. https://redmine.example.com")
        api_key: Secret
        tracker: str | int = "Support"
        fingerprint_field: str | int = Field(
            default="Alert fingerprint",
            description="issue custom field (name, or id when the account is not admin)")
        resolved_status: str | int = "Closed"
        reopen_status: str | int = "New"
        acknowledged_statuses: list[str] = Field(
            default_factory=lambda: ["In Progress", "Feedback"])
        wont_fix_statuses: list[str] = Field(default_factory=lambda: ["Rejected"])

    def __init__(self, config: Config | dict[str, Any], name: str,
                 session: requests.Session | None = None) -> None:
        self.config = config if isinstance(config, Redmine.Config) \
            else Redmine.Config.model_validate(config)
        self.name = name
        cfg = self.config
        self.http = HttpClient.for_adapter(
            cfg, cfg.url, name, session,
            headers={"X-Redmine-API-Key": cfg.api_key.get_secret_value(),
                     "Accept": "application/json"})
        self._lists: dict[str, list[dict[str, Any]]] = {}
        self._projects: dict[str, dict[str, Any]] = {}
        self._users: dict[str, int] = {}
        self._field_id: int | None = None

    # -- protocol -------------------------------------------------------------------------

    def open(self, view: TicketView, dest: Destination) -> ExternalRef:
        project = self._project(dest)
        issue: dict[str, Any] = {
            "project_id": project["id"],
            "tracker_id": self._tracker(project),
            "subject": title(view),
            "description": markup.to_textile(view.body),
            "priority_id": self._priority(view),
            "custom_fields": [{"id": self._fingerprint_field(), "value": view.fingerprint}],
        }
        if dest.assignee:
            issue["assigned_to_id"] = self._user(dest.assignee)
        category = self._category(project, view)
        if category is not None:
            issue["category_id"] = category
        if view.resolve_by > 0:
            today = datetime.now(UTC).date()
            issue["start_date"] = today.isoformat()
            issue["due_date"] = max(today, datetime.fromtimestamp(view.resolve_by, UTC).date()
                                    ).isoformat()
        issue |= dest.fields
        created = self._send("POST", "/issues.json", {"issue": issue}, expect=(201,))
        return self._ref(created["issue"]["id"])

    def find(self, fingerprint: str, dest: Destination) -> ExternalRef | None:
        project = self._project(dest)
        field = f"cf_{self._fingerprint_field()}"
        params = [("project_id", project["id"]), ("sort", "id:desc"), ("limit", "25"),
                  ("f[]", "status_id"), ("op[status_id]", "o"),
                  ("f[]", field), (f"op[{field}]", "="), (f"v[{field}][]", fingerprint)]
        found = self.http.json("GET", "/issues.json", params=params, expect=(200,))
        for issue in found.get("issues") or []:
            # Redmine's "=" on strings ignores case on some databases: compare exactly
            values = {str(cf.get("value")) for cf in issue.get("custom_fields") or []
                      if cf.get("id") == self._fingerprint_field()}
            if fingerprint in values:
                return self._ref(issue["id"])
        return None

    def comment(self, ref: ExternalRef, text: str, view: TicketView) -> None:
        self._update(ref, {"notes": markup.to_textile(text)})

    def set_priority(self, ref: ExternalRef, view: TicketView, dest: Destination) -> None:
        self._update(ref, {"priority_id": self._priority(view)})

    def resolve(self, ref: ExternalRef, text: str, view: TicketView,
                dest: Destination) -> None:
        self._update(ref, self._with_note(
            {"status_id": self._status_id(self.config.resolved_status)}, text))

    def reopen(self, ref: ExternalRef, text: str, view: TicketView,
               dest: Destination) -> None:
        self._update(ref, self._with_note(
            {"status_id": self._status_id(self.config.reopen_status)}, text))

    def status(self, ref: ExternalRef) -> RemoteStatus:
        issue = self.http.json("GET", f"/issues/{ref.id}.json", expect=(200,))["issue"]
        status = issue.get("status") or {}
        name = str(status.get("name", ""))
        closed = status.get("is_closed")  # in issue JSON since Redmine 5.0
        if closed is None:
            closed = any(s.get("id") == status.get("id") and s.get("is_closed")
                         for s in self._list("/issue_statuses.json", "issue_statuses"))
        who = (issue.get("assigned_to") or {}).get("name")
        fold = name.casefold()
        resolved = {str(self.config.resolved_status).casefold(), "resolved"}
        if fold in {s.casefold() for s in self.config.wont_fix_statuses}:
            return RemoteStatus("closed", who, True, name, *self._person_note(ref))
        if closed:
            return RemoteStatus("closed", who, False, name, *self._person_note(ref))
        if fold in resolved:
            return RemoteStatus("resolved", who, False, name, *self._person_note(ref))
        acknowledged = fold in {s.casefold() for s in self.config.acknowledged_statuses}
        return RemoteStatus("acknowledged" if acknowledged or who else "open", who, False, name)

    def _person_note(self, ref: ExternalRef) -> tuple[str | None, str | None]:
        """The latest note a person wrote on the issue and its author (read only once it
        is resolved or closed: one more request, for the knowledge archive)."""
        issue = self.http.json("GET", f"/issues/{ref.id}.json", params={"include": "journals"},
                               expect=(200,))["issue"]
        for journal in reversed(issue.get("journals") or []):
            notes = str(journal.get("notes") or "").strip()
            if notes and not is_patrol_note(notes):
                return notes, (journal.get("user") or {}).get("name")
        return None, None

    def attach(self, ref: ExternalRef, attachment: Attachment, note: str) -> None:
        """Upload the file (``POST /uploads.json`` answers a token), then attach it to
        the issue with a note in one update."""
        uploaded = self.http.request(
            "POST", "/uploads.json", params={"filename": attachment.filename},
            data=attachment.data, headers={"Content-Type": "application/octet-stream"},
            expect=(201,)).json()
        token = uploaded["upload"]["token"]
        self._update(ref, self._with_note({"uploads": [{
            "token": token, "filename": attachment.filename,
            "content_type": attachment.content_type}]}, note))

    # -- requests -------------------------------------------------------------------------

    def _ref(self, issue_id: Any) -> ExternalRef:
        return ExternalRef(self.name, str(issue_id),
                           f"{self.config.url.rstrip('/')}/issues/{issue_id}")

    @staticmethod
    def _with_note(issue: dict[str, Any], text: str) -> dict[str, Any]:
        return issue | {"notes": markup.to_textile(text)} if text else issue

    def _update(self, ref: ExternalRef, issue: dict[str, Any]) -> None:
        self._send("PUT", f"/issues/{ref.id}.json", {"issue": issue}, expect=(200, 204))

    def _send(self, method: str, path: str, body: dict[str, Any],
              expect: tuple[int, ...]) -> Any:
        """JSON request; Redmine's 422 ``{"errors": [...]}`` becomes its messages."""
        response = self.http.request(method, path, json=body, expect=(*expect, 422))
        if response.status_code == 422:
            try:
                errors = response.json().get("errors") or []
            except ValueError:
                errors = [response.text[:500]]
            raise PermanentError(f"{self.name}: {method} {path} rejected (422): "
                                 f"{'; '.join(map(str, errors))}", 422)
        return response.json() if response.content else None

    # -- names to ids (cached per instance) -----------------------------------------------

    def _list(self, path: str, key: str) -> list[dict[str, Any]]:
        if key not in self._lists:
            self._lists[key] = self.http.json("GET", path, expect=(200,)).get(key) or []
        return self._lists[key]

    def _pick(self, items: list[dict[str, Any]], wanted: str | int, what: str,
              option: str, where: str = "in Redmine") -> dict[str, Any]:
        for item in items:
            if str(item.get("id")) == str(wanted) or \
                    str(item.get("name", "")).casefold() == str(wanted).casefold():
                return item
        known = ", ".join(str(i.get("name")) for i in items) or "none"
        raise PermanentError(f"{self.name}: no {what} '{wanted}' {where} (it has: {known}); "
                             f"fix '{option}'")

    def _project(self, dest: Destination) -> dict[str, Any]:
        identifier = dest.project or self.config.project
        if not identifier:
            raise PermanentError(f"{self.name}: no Redmine project: set 'project' on the "
                                 "helpdesk or on the route")
        if identifier not in self._projects:
            response = self.http.request("GET", f"/projects/{identifier}.json",
                                         params={"include": "trackers,issue_categories"},
                                         expect=(200, 404))
            if response.status_code == 404:
                raise PermanentError(f"{self.name}: Redmine project '{identifier}' does not "
                                     "exist or this account cannot see it", 404)
            self._projects[identifier] = response.json()["project"]
        return self._projects[identifier]

    def _tracker(self, project: dict[str, Any]) -> int:
        return int(self._pick(project.get("trackers") or [], self.config.tracker, "tracker",
                              "tracker", f"enabled in project '{project.get('identifier')}'"
                              )["id"])

    def _priority(self, view: TicketView) -> int:
        wanted = self.config.mapped_priority(view.priority, PRIORITIES)
        items = self._list("/enumerations/issue_priorities.json", "issue_priorities")
        return int(self._pick(items, wanted, "issue priority", "priority_map")["id"])

    def _status(self, wanted: str | int) -> dict[str, Any]:
        items = self._list("/issue_statuses.json", "issue_statuses")
        return self._pick(items, wanted, "issue status", "resolved_status/reopen_status")

    def _status_id(self, wanted: str | int) -> int:
        return int(self._status(wanted)["id"])

    def _fingerprint_field(self) -> int:
        if self._field_id is None:
            wanted = self.config.fingerprint_field
            if isinstance(wanted, int) or str(wanted).isdigit():
                self._field_id = int(wanted)
            else:
                response = self.http.request("GET", "/custom_fields.json", expect=(200, 403))
                if response.status_code == 403:
                    raise PermanentError(f"{self.name}: only Redmine administrators may list "
                                         "custom fields: set 'fingerprint_field' to the id of "
                                         f"'{wanted}'", 403)
                fields = [f for f in response.json().get("custom_fields") or []
                          if f.get("customized_type") == "issue"]
                self._field_id = int(self._pick(fields, wanted, "issue custom field",
                                                "fingerprint_field")["id"])
        return self._field_id

    def _user(self, login: str) -> int:
        if login.isdigit():
            return int(login)
        if login not in self._users:
            found = self.http.json("GET", "/users.json", params={"name": login},
                                   expect=(200,)).get("users") or []
            match = [u for u in found if u.get("login", "").casefold() == login.casefold()]
            if not match:
                raise PermanentError(f"{self.name}: no Redmine user with login '{login}'")
            self._users[login] = int(match[0]["id"])
        return self._users[login]

    def _category(self, project: dict[str, Any], view: TicketView) -> int | None:
        wanted = self.config.category_map.get(view.category)
        if wanted is None:
            return None
        return int(self._pick(project.get("issue_categories") or [], wanted, "issue category",
                              "category_map", f"in project '{project.get('identifier')}'"
                              )["id"])
