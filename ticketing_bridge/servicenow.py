"""ServiceNow incidents through the Table API (``/api/now/table/incident``).

Decisions:

- Fingerprint in ``correlation_id`` (meant for an external system's id; 100
  characters, queryable): ``find`` asks for
  ``correlation_id=<fp>^active=true^state!=6``, i.e. neither Resolved nor Closed or
  Canceled (both of those set ``active=false``).
- Priority is not written: ServiceNow derives it from **impact x urgency** through
  its priority lookup rules. Defaults pick the out-of-the-box matrix cell that yields
  the same number: P1 -> 1/1 (1 - Critical), P2 -> 1/2 (2 - High), P3 -> 2/2
  (3 - Moderate), P4 -> 3/2 (4 - Low); 3/3 would be 5 - Planning. Values are the
  strings "1".."3", as the choice lists store them. Override per priority with
  ``priority_map: {P2: {impact: "2", urgency: "1"}}``.
- Body as plain text (``description`` is a plain string field); comments go to
  ``work_notes`` (internal), not to ``comments`` (the caller would be mailed).
- Resolve: ``state=6`` with ``close_code`` and ``close_notes``, mandatory for
  Resolved by the out-of-the-box data policy (a Data Policy Exception otherwise).
  The default close code, "Solution provided", exists since Utah; older instances
  use e.g. "Solved (Permanently)": set ``close_code``. Reopen: ``state=2``.
- ``assignment_group`` / ``assigned_to`` / ``caller_id`` are references: names are
  resolved to sys_ids (``sys_user_group.name``, ``sys_user.user_name``) once and
  cached, so an unknown group is a clear PermanentError instead of a reference the
  instance silently leaves empty.
- ``status()``: 1 New -> open (acknowledged once ``assigned_to`` is set), 2 In
  Progress / 3 On Hold -> acknowledged, 6 Resolved -> resolved, 7 Closed -> closed,
  8 Canceled -> closed and ``wont_fix`` (also when ``close_code`` is in
  ``wont_fix_statuses``).
- Auth: basic (``username``/``password``) or an OAuth access token (``token``).

Vendor documentation:
https://www.servicenow.com/docs/bundle/yokohama-api-reference/page/integrate/inbound-rest/concept/c_TableAPI.html
https://developer.servicenow.com/dev.do#!/reference/api/latest/rest/c_TableAPI
https://docs.servicenow.com/bundle/london-it-service-management/page/product/incident-management/concept/c_IncidentManagementStateModel.html
https://www.servicenow.com/docs/r/it-service-management/incident-management/resolve-and-close-an-incident.html
"""

from __future__ import annotations

from typing import Any, ClassVar

import requests
from pydantic import Field, model_validator

from patrol.ticketing_bridge.http import HttpClient, token_or_basic
from patrol.ticketing_bridge.protocol import (
    Destination,
    ExternalRef,
    PermanentError,
    RemoteStatus,
    TicketView,
)
from patrol.ticketing_bridge.settings import AdapterSettings, Secret

PRIORITIES = {"P1": {"impact": "1", "urgency": "1"}, "P2": {"impact": "1", "urgency": "2"},
              "P3": {"impact": "2", "urgency": "2"}, "P4": {"impact": "3", "urgency": "2"}}
STATES = {"1": "open", "2": "acknowledged", "3": "acknowledged", "6": "resolved",
          "7": "closed", "8": "closed"}
RESOLVED, IN_PROGRESS, CANCELED = "6", "2", "8"


class ServiceNow:
    type: ClassVar[str] = "servicenow"

    class Config(AdapterSettings):
        url: str = Field(description="instance URL, e.g. https://acme.service-now.com")
        username: str | None = None
        password: Secret | None = None
        token: Secret | None = Field(default=None, description="OAuth access token")
        table: str = "incident"
        category: str | None = Field(default=None, description="default incident category")
        caller: str | None = Field(default=None, description="caller_id: a user_name")
        close_code: str = "Solution provided"

        @model_validator(mode="after")
        def _one_auth(self) -> ServiceNow.Config:
            if bool(self.token) == bool(self.username and self.password):
                raise ValueError("set either 'username' and 'password' (basic auth) or "
                                 "'token' (OAuth access token)")
            return self

    def __init__(self, config: Config | dict[str, Any], name: str,
                 session: requests.Session | None = None) -> None:
        self.config = config if isinstance(config, ServiceNow.Config) \
            else ServiceNow.Config.model_validate(config)
        self.name = name
        cfg = self.config
        headers, auth = token_or_basic(cfg.token, "Bearer", cfg.username, cfg.password)
        self.http = HttpClient.for_adapter(cfg, cfg.url, name, session, auth=auth,
                                           headers={"Accept": "application/json", **headers})
        self.path = f"/api/now/table/{cfg.table}"
        self._sys_ids: dict[tuple[str, str], str] = {}

    # -- helpers --------------------------------------------------------------------------

    def _lookup(self, table: str, field: str, value: str, what: str) -> str:
        """sys_id of the ``table`` row whose ``field`` is ``value`` (a sys_id passes)."""
        if len(value) == 32 and all(c in "0123456789abcdef" for c in value):
            return value
        key = (table, value)
        if key not in self._sys_ids:
            rows = self.http.json("GET", f"/api/now/table/{table}", expect=(200,), params={
                "sysparm_query": f"{field}={value}", "sysparm_fields": "sys_id",
                "sysparm_limit": 1})["result"]
            if not rows:
                raise PermanentError(f"{self.name}: unknown {what} '{value}' (no {table} "
                                     f"with {field}={value})")
            self._sys_ids[key] = rows[0]["sys_id"]
        return self._sys_ids[key]

    def _ref(self, sys_id: str) -> ExternalRef:
        return ExternalRef(self.name, sys_id, f"{self.config.url.rstrip('/')}/"
                                              f"{self.config.table}.do?sys_id={sys_id}")

    def _update(self, ref: ExternalRef, fields: dict[str, Any]) -> None:
        self.http.request("PATCH", f"{self.path}/{ref.id}", json=fields, expect=(200,),
                          params={"sysparm_fields": "sys_id"})

    def _priority(self, view: TicketView) -> dict[str, str]:
        mapped = self.config.mapped_priority(view.priority, PRIORITIES)
        return {"impact": str(mapped["impact"]), "urgency": str(mapped["urgency"])}

    @staticmethod
    def _text(markdown: str) -> str:
        from patrol.contract import markup
        return markup.to_text(markdown)

    # -- protocol -------------------------------------------------------------------------

    def open(self, view: TicketView, dest: Destination) -> ExternalRef:
        cfg = self.config
        fields: dict[str, Any] = {
            "short_description": f"[{view.number}] {view.title}"[:160],
            "description": self._text(view.body),
            "correlation_id": view.fingerprint,
            "correlation_display": "Patrol",
            **self._priority(view),
        }
        category = cfg.category_map.get(view.category, cfg.category)
        if category:
            fields["category"] = str(category)
        group = dest.team or dest.project or cfg.project
        if group:
            fields["assignment_group"] = self._lookup("sys_user_group", "name", group,
                                                      "assignment group")
        if dest.assignee:
            fields["assigned_to"] = self._lookup("sys_user", "user_name", dest.assignee,
                                                 "user")
        if cfg.caller:
            fields["caller_id"] = self._lookup("sys_user", "user_name", cfg.caller, "caller")
        fields |= {k: str(v) for k, v in dest.fields.items()}
        created = self.http.json("POST", self.path, json=fields, expect=(201,),
                                 params={"sysparm_fields": "sys_id,number"})
        return self._ref(created["result"]["sys_id"])

    def find(self, fingerprint: str, dest: Destination) -> ExternalRef | None:
        escaped = fingerprint.replace("^", "^^")  # '^' separates encoded-query terms
        rows = self.http.json("GET", self.path, expect=(200,), params={
            "sysparm_query": f"correlation_id={escaped}^active=true^state!={RESOLVED}",
            "sysparm_fields": "sys_id,number", "sysparm_limit": 1})["result"]
        return self._ref(rows[0]["sys_id"]) if rows else None

    def comment(self, ref: ExternalRef, text: str, view: TicketView) -> None:
        self._update(ref, {"work_notes": self._text(text)})

    def set_priority(self, ref: ExternalRef, view: TicketView, dest: Destination) -> None:
        self._update(ref, self._priority(view))

    def resolve(self, ref: ExternalRef, text: str, view: TicketView,
                dest: Destination) -> None:
        self._update(ref, {"state": RESOLVED, "close_code": self.config.close_code,
                           "close_notes": self._text(text) or "Resolved by Patrol: the check "
                                                              "recovered."})

    def reopen(self, ref: ExternalRef, text: str, view: TicketView,
               dest: Destination) -> None:
        fields = {"state": IN_PROGRESS}
        if text:
            fields["work_notes"] = self._text(text)
        self._update(ref, fields)

    def status(self, ref: ExternalRef) -> RemoteStatus:
        row = self.http.json("GET", f"{self.path}/{ref.id}", expect=(200,), params={
            "sysparm_fields": "state,assigned_to,close_code",
            "sysparm_display_value": "all"})["result"]

        def value(name: str, key: str = "value") -> str:
            cell = row.get(name) or {}
            return str(cell.get(key) or "") if isinstance(cell, dict) else str(cell)

        state_value = value("state")
        state = STATES.get(state_value, "acknowledged")
        assignee = value("assigned_to", "display_value") or None
        if assignee and state == "open":
            state = "acknowledged"
        wont = state_value == CANCELED or value("close_code") in self.config.wont_fix_statuses
        return RemoteStatus(state, assignee, wont, value("state", "display_value"))
