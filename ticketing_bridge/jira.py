"""Jira Software / Jira Service Management, through the Jira platform REST API.

Two dialects, chosen by ``api_version``:

- ``3`` (Jira Cloud): ``/rest/api/3``, basic auth ``email:api_token``, description and
  comments in Atlassian Document Format (``markup.to_adf``), assignee by
  ``accountId``, search with ``POST /rest/api/3/search/jql`` (the enhanced search;
  ``GET/POST /rest/api/3/search`` were deprecated on 2024-10-31 and removed in 2025).
- ``2`` (Server / Data Center): ``/rest/api/2``, ``Authorization: Bearer <PAT>``,
  wiki markup (``markup.to_jira_wiki``), assignee by user ``name``, search with
  ``GET /rest/api/2/search``.

Decisions:

- The fingerprint is an issue **label** (``patrol-...``; labels cannot hold spaces),
  found with ``labels = "<label>" AND statusCategory != Done``.
- Priority by name: P1 Highest, P2 High, P3 Medium, P4 Low (``priority_map``).
- Resolve and reopen are workflow **transitions**, looked up by name on
  ``GET /issue/{key}/transitions`` (matching the transition's name or its target
  status's name, case-insensitively, in the configured order): workflows differ
  per project, transition ids differ per instance.
- ``status()``: statusCategory ``new`` -> open, ``indeterminate`` -> acknowledged,
  ``done`` -> resolved; an assignee also means acknowledged. A resolution named in
  ``wont_fix_statuses`` (default: Won't Do, Won't Fix, Declined, Duplicate, Cannot
  Reproduce) sets ``wont_fix``.
- For JSM projects set ``issue_type: Incident`` (or the request type's issue type);
  the platform API creates the issue, so no portal request type is required.

Vendor documentation:
https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/
https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-search/#api-rest-api-3-search-jql-post
https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-comments/
https://developer.atlassian.com/cloud/jira/platform/basic-auth-for-rest-apis/
https://developer.atlassian.com/server/jira/platform/rest/v10000/ (Data Center, PATs)
https://community.atlassian.com/forums/Jira-articles/Avoiding-Pitfalls-A-Guide-to-Smooth-Migration-to-Enhanced-JQL/ba-p/2985433
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

import requests
from pydantic import BeforeValidator, Field, model_validator

from patrol.ticketing_bridge.http import HttpClient
from patrol.ticketing_bridge.protocol import (
    Destination,
    ExternalRef,
    PermanentError,
    RemoteStatus,
    TicketView,
)
from patrol.ticketing_bridge.settings import AdapterSettings, Secret

PRIORITIES = {"P1": "Highest", "P2": "High", "P3": "Medium", "P4": "Low"}
WONT_FIX = ("Won't Do", "Won't Fix", "Declined", "Duplicate", "Cannot Reproduce")
STATE_BY_CATEGORY = {"new": "open", "indeterminate": "acknowledged", "done": "resolved"}


def _names(raw: Any) -> Any:
    return [raw] if isinstance(raw, str) else raw


Names = Annotated[list[str], BeforeValidator(_names)]


def label_for(fingerprint: str) -> str:
    """The fingerprint as a Jira label: no spaces, and always ``patrol-``-prefixed."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", fingerprint).strip("-")
    return slug if slug.startswith("patrol-") else f"patrol-{slug}"


class Jira:
    type: ClassVar[str] = "jira"

    class Config(AdapterSettings):
        url: str = Field(description="site URL, e.g. https://example.atlassian.net")
        api_version: Literal[2, 3] = 3
        email: str | None = Field(default=None, description="Cloud: the API token's owner")
        token: Secret = Field(description="Cloud: API token; Server/DC: personal access token")
        issue_type: str = "Task"
        resolve_transition: Names = Field(default_factory=lambda: ["Done", "Resolve"])
        reopen_transition: Names = Field(default_factory=lambda: ["Reopen", "To Do"])

        @model_validator(mode="after")
        def _cloud_needs_email(self) -> Jira.Config:
            if self.api_version == 3 and not self.email:
                raise ValueError("api_version 3 (Jira Cloud) authenticates with 'email' and "
                                 "an API token: set 'email', or api_version: 2 for a "
                                 "Server/Data Center personal access token")
            return self

    def __init__(self, config: Config | dict[str, Any], name: str,
                 session: requests.Session | None = None) -> None:
        self.config = config if isinstance(config, Jira.Config) \
            else Jira.Config.model_validate(config)
        self.name = name
        cfg = self.config
        token = cfg.token.get_secret_value()
        if cfg.api_version == 3:
            auth, headers = (cfg.email or "", token), {}
        else:
            auth, headers = None, {"Authorization": f"Bearer {token}"}
        headers |= {"Accept": "application/json"}
        self.http = HttpClient.for_adapter(cfg, cfg.url, name, session, headers=headers,
                                           auth=auth)
        self.api = f"/rest/api/{cfg.api_version}"

    # -- formatting -----------------------------------------------------------------------

    def _doc(self, markdown: str) -> Any:
        from patrol.contract import markup
        return markup.to_adf(markdown) if self.config.api_version == 3 \
            else markup.to_jira_wiki(markdown)

    def _ref(self, key: str) -> ExternalRef:
        return ExternalRef(self.name, key, f"{self.config.url.rstrip('/')}/browse/{key}")

    def _priority(self, view: TicketView) -> dict[str, str]:
        return {"name": str(self.config.mapped_priority(view.priority, PRIORITIES))}

    # -- protocol -------------------------------------------------------------------------

    def open(self, view: TicketView, dest: Destination) -> ExternalRef:
        project = dest.project or self.config.project
        if not project:
            raise PermanentError(f"{self.name}: no Jira project key: set 'project' on the "
                                 "helpdesk or on the route")
        fields: dict[str, Any] = {
            "project": {"key": project},
            "summary": f"[{view.number}] {view.title}"[:255],
            "issuetype": {"name": self.config.issue_type},
            "description": self._doc(view.body),
            "priority": self._priority(view),
            "labels": [label_for(view.fingerprint)],
        }
        if dest.assignee:
            fields["assignee"] = {"accountId": dest.assignee} if self.config.api_version == 3 \
                else {"name": dest.assignee}
        fields |= dest.fields
        created = self.http.json("POST", f"{self.api}/issue", json={"fields": fields},
                                 expect=(201,))
        return self._ref(created["key"])

    def find(self, fingerprint: str, dest: Destination) -> ExternalRef | None:
        jql = f'labels = "{label_for(fingerprint)}" AND statusCategory != Done'
        if self.config.api_version == 3:
            found = self.http.json("POST", f"{self.api}/search/jql", expect=(200,),
                                   json={"jql": jql, "fields": ["key"], "maxResults": 1})
        else:
            found = self.http.json("GET", f"{self.api}/search", expect=(200,),
                                   params={"jql": jql, "fields": "key", "maxResults": 1})
        issues = found.get("issues") or []
        return self._ref(issues[0]["key"]) if issues else None

    def comment(self, ref: ExternalRef, text: str, view: TicketView) -> None:
        self.http.request("POST", f"{self.api}/issue/{ref.id}/comment",
                          json={"body": self._doc(text)}, expect=(201,))

    def set_priority(self, ref: ExternalRef, view: TicketView, dest: Destination) -> None:
        self.http.request("PUT", f"{self.api}/issue/{ref.id}",
                          json={"fields": {"priority": self._priority(view)}}, expect=(204,))

    def resolve(self, ref: ExternalRef, text: str, view: TicketView,
                dest: Destination) -> None:
        if text:
            self.comment(ref, text, view)
        self._transition(ref, self.config.resolve_transition, "resolve")

    def reopen(self, ref: ExternalRef, text: str, view: TicketView,
               dest: Destination) -> None:
        self._transition(ref, self.config.reopen_transition, "reopen")
        if text:
            self.comment(ref, text, view)

    def status(self, ref: ExternalRef) -> RemoteStatus:
        issue = self.http.json("GET", f"{self.api}/issue/{ref.id}", expect=(200,),
                               params={"fields": "status,assignee,resolution"})
        fields = issue.get("fields") or {}
        status = fields.get("status") or {}
        category = (status.get("statusCategory") or {}).get("key", "new")
        state = STATE_BY_CATEGORY.get(category, "open")
        who = fields.get("assignee") or None
        assignee = None
        if who:
            assignee = who.get("displayName") or who.get("accountId") or who.get("name")
            if state == "open":
                state = "acknowledged"
        resolution = (fields.get("resolution") or {}).get("name")
        wont = {s.casefold() for s in (self.config.wont_fix_statuses or WONT_FIX)}
        return RemoteStatus(state, assignee, bool(resolution and resolution.casefold() in wont),
                            status.get("name"))

    # -- transitions ----------------------------------------------------------------------

    def _transition(self, ref: ExternalRef, wanted: list[str], what: str) -> None:
        listed = self.http.json("GET", f"{self.api}/issue/{ref.id}/transitions", expect=(200,))
        transitions = listed.get("transitions") or []
        for name in wanted:
            for t in transitions:
                target = (t.get("to") or {}).get("name", "")
                if name.casefold() in (t.get("name", "").casefold(), target.casefold()):
                    self.http.request("POST", f"{self.api}/issue/{ref.id}/transitions",
                                      json={"transition": {"id": str(t["id"])}},
                                      expect=(204,))
                    return
        done = self.status(ref).state in ("resolved", "closed")
        if done == (what == "resolve"):
            return  # already there: a retried delivery after a crash or a timeout
        offered = ", ".join(t.get("name", "?") for t in transitions) or "none"
        raise PermanentError(f"{self.name}: cannot {what} {ref.id}: no transition named "
                             f"{' or '.join(wanted)} (the workflow offers: {offered}); set "
                             f"'{what}_transition'")
