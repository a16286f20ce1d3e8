"""GLPI tickets through the legacy REST API (``apirest.php``) with session tokens.

Every call carries ``Session-Token`` (from ``GET initSession`` with
``Authorization: user_token <token>``) and the API client's ``App-Token``. A session
the server dropped (401 ``ERROR_SESSION_TOKEN_INVALID``: expiry, restart) is opened
again once and the call retried; ``close()`` kills the session.

Decisions:

- Fingerprint in the ticket's **name**, as a ``[patrol:<fingerprint>]`` suffix:
  GLPI has no external-id field on tickets and plugin fields are not guaranteed;
  ``find`` uses the search engine on search option 1 (name) ``contains`` the marker
  AND option 12 (status) ``equals notold`` (neither solved nor closed), displaying
  option 2 (id).
- Priority: P1 -> urgency 5 / impact 5 / priority 5 (Very high), P2 -> 4/4/4 (High),
  P3 -> 3/3/3 (Medium), P4 -> 2/2/2 (Low); priority is sent explicitly so a custom
  matrix cannot disagree with Patrol. 6 (Major) is left to people.
- ``type: 1`` (incident); ``project`` is the ``entities_id``, ``team`` the assigned
  group (``_groups_id_assign``), ``assignee`` the technician (``_users_id_assign``),
  all numeric ids; ``category_map`` maps Patrol categories to ``itilcategories_id``.
- Comments are private ``ITILFollowup`` items; resolve adds an ``ITILSolution``
  (GLPI then sets status 5, solved; a ticket already solved or closed is left as is,
  because GLPI refuses a second solution); reopen sets status 2 (processing,
  assigned; ``reopen_status``; GLPI itself turns it into 1, new, when nobody is
  assigned) and adds the text as a followup.
- ``status()``: 1 new -> open, 2/3 processing and 4 pending -> acknowledged, 5 solved
  -> resolved, 6 closed -> closed; an assigned technician (``Ticket_User`` type 2)
  also means acknowledged. GLPI has no won't-fix resolution in the core.

Vendor documentation:
https://github.com/glpi-project/glpi/blob/10.0/bugfixes/apirest.md
(Init session, Kill session, Get an item, Get sub items, Search items, Add item(s),
Update item(s), Errors), and the ticket status constants in src/CommonITILObject.php.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import requests
from pydantic import Field

from patrol.ticketing_bridge.http import HttpClient
from patrol.ticketing_bridge.protocol import (
    Destination,
    ExternalRef,
    PermanentError,
    RemoteStatus,
    TicketView,
)
from patrol.ticketing_bridge.settings import AdapterSettings, Secret

PRIORITIES = {"P1": {"urgency": 5, "impact": 5, "priority": 5},
              "P2": {"urgency": 4, "impact": 4, "priority": 4},
              "P3": {"urgency": 3, "impact": 3, "priority": 3},
              "P4": {"urgency": 2, "impact": 2, "priority": 2}}
STATES = {1: "open", 2: "acknowledged", 3: "acknowledged", 4: "acknowledged", 5: "resolved",
          6: "closed"}
SOLVED, CLOSED = 5, 6
INCIDENT, ASSIGNED_ACTOR = 1, 2
NAME, ID, STATUS = 1, 2, 12  # search options of Ticket


def marker(fingerprint: str) -> str:
    return f"[patrol:{fingerprint}]"


def _id(value: Any, what: str, name: str) -> int:
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    raise PermanentError(f"{name}: GLPI {what} must be a numeric id, got '{value}'")


class Glpi:
    type: ClassVar[str] = "glpi"

    class Config(AdapterSettings):
        url: str = Field(description="GLPI root, e.g. https://glpi.example.com")
        api_path: str = "apirest.php"
        user_token: Secret = Field(description="the API user's remote access key")
        app_token: Secret | None = Field(default=None, description="the API client's token")
        reopen_status: int = Field(default=2, ge=1, le=4)

    def __init__(self, config: Config | dict[str, Any], name: str,
                 session: requests.Session | None = None) -> None:
        self.config = config if isinstance(config, Glpi.Config) \
            else Glpi.Config.model_validate(config)
        self.name = name
        cfg = self.config
        headers = {"Accept": "application/json"}
        if cfg.app_token is not None:
            headers["App-Token"] = cfg.app_token.get_secret_value()
        self.http = HttpClient.for_adapter(
            cfg, f"{cfg.url.rstrip('/')}/{cfg.api_path.strip('/')}", name, session,
            headers=headers)
        self._session: str | None = None
        self._lock = threading.Lock()

    # -- session --------------------------------------------------------------------------

    def _token(self, stale: str | None = None) -> str:
        with self._lock:
            if self._session is None or self._session == stale:
                token = self.config.user_token.get_secret_value()
                opened = self.http.json("GET", "initSession", expect=(200,),
                                        headers={"Authorization": f"user_token {token}"})
                self._session = opened["session_token"]
            return self._session

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        token = self._token()
        for attempt in (1, 2):
            try:
                return self.http.json(method, path, headers={"Session-Token": token}, **kwargs)
            except PermanentError as exc:
                if attempt == 2 or exc.status != 401 or \
                        "ERROR_SESSION_TOKEN_INVALID" not in str(exc):
                    raise
                token = self._token(stale=token)
        raise AssertionError("unreachable")

    def close(self) -> None:
        """End the session on the server (sessions otherwise live until GLPI's timeout)."""
        with self._lock:
            if self._session is not None:
                try:
                    self.http.request("GET", "killSession", expect=(200,),
                                      headers={"Session-Token": self._session})
                finally:
                    self._session = None

    # -- helpers --------------------------------------------------------------------------

    def _ref(self, ticket_id: Any) -> ExternalRef:
        return ExternalRef(self.name, str(ticket_id), f"{self.config.url.rstrip('/')}/front/"
                                                      f"ticket.form.php?id={ticket_id}")

    @staticmethod
    def _html(markdown: str) -> str:
        from patrol.contract import markup
        return markup.to_html(markdown)

    def _priority(self, view: TicketView) -> dict[str, int]:
        mapped = self.config.mapped_priority(view.priority, PRIORITIES)
        return {k: int(mapped[k]) for k in ("urgency", "impact", "priority") if k in mapped}

    def _update(self, ref: ExternalRef, fields: dict[str, Any]) -> None:
        results = self._call("PUT", f"Ticket/{ref.id}", json={"input": fields},
                             expect=(200, 207))
        for result in results or []:
            if isinstance(result, dict) and result.get(str(ref.id)) is False:
                raise PermanentError(f"{self.name}: GLPI refused to update ticket {ref.id}: "
                                     f"{result.get('message') or 'no reason given'}")

    def _add(self, itemtype: str, fields: dict[str, Any]) -> Any:
        return self._call("POST", itemtype, json={"input": fields}, expect=(201,))

    # -- protocol -------------------------------------------------------------------------

    def open(self, view: TicketView, dest: Destination) -> ExternalRef:
        cfg = self.config
        suffix = f" {marker(view.fingerprint)}"
        fields: dict[str, Any] = {
            "name": f"[{view.number}] {view.title}"[: 255 - len(suffix)] + suffix,
            "content": self._html(view.body),
            "type": INCIDENT,
            **self._priority(view),
        }
        entity = dest.project or cfg.project
        if entity is not None:
            fields["entities_id"] = _id(entity, "entity", self.name)
        category = cfg.category_map.get(view.category)
        if category is not None:
            fields["itilcategories_id"] = _id(category, "category", self.name)
        if dest.team:
            fields["_groups_id_assign"] = _id(dest.team, "group", self.name)
        if dest.assignee:
            fields["_users_id_assign"] = _id(dest.assignee, "user", self.name)
        fields |= dest.fields
        created = self._add("Ticket", fields)
        return self._ref(created["id"])

    def find(self, fingerprint: str, dest: Destination) -> ExternalRef | None:
        params = {
            "criteria[0][field]": NAME, "criteria[0][searchtype]": "contains",
            "criteria[0][value]": marker(fingerprint),
            "criteria[1][link]": "AND", "criteria[1][field]": STATUS,
            "criteria[1][searchtype]": "equals", "criteria[1][value]": "notold",
            "forcedisplay[0]": ID, "range": "0-9"}
        found = self._call("GET", "search/Ticket", params=params, expect=(200, 206))
        rows = (found or {}).get("data") or []
        return self._ref(rows[0][str(ID)]) if rows else None

    def comment(self, ref: ExternalRef, text: str, view: TicketView) -> None:
        self._add("ITILFollowup", {"itemtype": "Ticket", "items_id": int(ref.id),
                                   "content": self._html(text), "is_private": 1})

    def set_priority(self, ref: ExternalRef, view: TicketView, dest: Destination) -> None:
        self._update(ref, self._priority(view))

    def resolve(self, ref: ExternalRef, text: str, view: TicketView,
                dest: Destination) -> None:
        ticket = self._call("GET", f"Ticket/{ref.id}", expect=(200,))
        if ticket.get("status") in (SOLVED, CLOSED):
            return  # a retried delivery: GLPI refuses a second solution
        self._add("ITILSolution", {"itemtype": "Ticket", "items_id": int(ref.id),
                                   "content": self._html(text or "Resolved by Patrol: the "
                                                                 "check recovered.")})

    def reopen(self, ref: ExternalRef, text: str, view: TicketView,
               dest: Destination) -> None:
        self._update(ref, {"status": self.config.reopen_status})
        if text:
            self.comment(ref, text, view)

    def status(self, ref: ExternalRef) -> RemoteStatus:
        ticket = self._call("GET", f"Ticket/{ref.id}", expect=(200,))
        code = int(ticket.get("status") or 1)
        actors = self._call("GET", f"Ticket/{ref.id}/Ticket_User", expect=(200, 206),
                            params={"expand_dropdowns": "true"}) or []
        assigned = [a for a in actors if int(a.get("type", 0)) == ASSIGNED_ACTOR]
        state = STATES.get(code, "acknowledged")
        assignee = str(assigned[0].get("users_id")) if assigned else None
        if assignee and state == "open":
            state = "acknowledged"
        return RemoteStatus(state, assignee, False, str(code))
