"""Zendesk Support tickets through the Tickets API (``/api/v2/tickets``).

Decisions:

- Fingerprint in the ticket's ``external_id`` ("an id you can use to link Zendesk
  Support tickets to local records"), plus a ``patrol`` tag for views. ``find`` lists
  ``GET /api/v2/tickets.json?external_id=...`` (an exact lookup, no search-index
  delay) and keeps the first ticket that is neither solved nor closed.
- Create sends an ``Idempotency-Key`` (the Ticketing API's "retry a ticket creation
  request without the risk of creating duplicate records"): it covers what ``find``
  cannot, a resend while the first request is still being processed (a collector
  replica that died or timed out mid-request).
- Priority: P1 urgent, P2 high, P3 normal, P4 low (the four values Zendesk has).
- Body and comments as private notes: ``comment: {html_body, public: false}``, so
  the requester is not mailed on every update.
- Resolve: ``status: solved``; reopen: ``status: open``. Zendesk closes solved
  tickets by itself after a few days, and a closed ticket can no longer be updated
  (422): reopening one is a PermanentError by the vendor's rules.
- ``status()``: new -> open; open -> open, or acknowledged once assigned; pending or
  hold -> acknowledged; solved -> resolved; closed -> closed. The assignee's name
  comes from sideloading (``?include=users``). Zendesk has no "won't fix" resolution:
  a tag listed in ``wont_fix_statuses`` (e.g. ``wont_fix``) marks it.
- Auth: API token, basic auth as ``{email}/token:{api_token}``. Zendesk rate-limits
  per minute and answers 429 with ``Retry-After``, which the dispatcher honours.
- ``group`` (the route's team or project, else the helpdesk's ``project``) is a
  numeric group id.

Vendor documentation:
https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/
https://developer.zendesk.com/api-reference/ticketing/introduction/#idempotency
https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_comments/
https://developer.zendesk.com/api-reference/introduction/security-and-auth/
https://developer.zendesk.com/api-reference/introduction/rate-limits/
https://developer.zendesk.com/documentation/ticketing/using-the-zendesk-api/side_loading/
https://support.zendesk.com/hc/en-us/articles/4408819890330
"""

from __future__ import annotations

from typing import Any, ClassVar

import requests
from pydantic import Field

from patrol.ticketing_bridge.http import HttpClient, idempotency_key
from patrol.ticketing_bridge.protocol import (
    Destination,
    ExternalRef,
    PermanentError,
    RemoteStatus,
    TicketView,
)
from patrol.ticketing_bridge.settings import AdapterSettings, Secret

PRIORITIES = {"P1": "urgent", "P2": "high", "P3": "normal", "P4": "low"}
STATES = {"new": "open", "open": "open", "pending": "acknowledged", "hold": "acknowledged",
          "solved": "resolved", "closed": "closed"}
DONE = ("solved", "closed")


class Zendesk:
    type: ClassVar[str] = "zendesk"

    class Config(AdapterSettings):
        url: str = Field(description="e.g. https://acme.zendesk.com")
        email: str = Field(description="the agent the API token belongs to")
        token: Secret = Field(description="API token (Admin Center > Apps and integrations)")
        ticket_type: str = "incident"
        tags: list[str] = Field(default_factory=lambda: ["patrol"])

    def __init__(self, config: Config | dict[str, Any], name: str,
                 session: requests.Session | None = None) -> None:
        self.config = config if isinstance(config, Zendesk.Config) \
            else Zendesk.Config.model_validate(config)
        self.name = name
        cfg = self.config
        self.http = HttpClient.for_adapter(
            cfg, cfg.url, name, session, headers={"Accept": "application/json"},
            auth=(f"{cfg.email}/token", cfg.token.get_secret_value()))

    def _ref(self, ticket_id: Any) -> ExternalRef:
        return ExternalRef(self.name, str(ticket_id),
                           f"{self.config.url.rstrip('/')}/agent/tickets/{ticket_id}")

    def _update(self, ref: ExternalRef, ticket: dict[str, Any]) -> None:
        self.http.request("PUT", f"/api/v2/tickets/{ref.id}.json", json={"ticket": ticket},
                          expect=(200,))

    def _priority(self, view: TicketView) -> str:
        return str(self.config.mapped_priority(view.priority, PRIORITIES))

    @staticmethod
    def _note(markdown: str) -> dict[str, Any]:
        from patrol.contract import markup
        return {"html_body": markup.to_html(markdown), "public": False}

    def _group(self, dest: Destination) -> int | None:
        group = dest.team or dest.project or self.config.project
        if group is None:
            return None
        if not str(group).isdigit():
            raise PermanentError(f"{self.name}: group '{group}' must be a Zendesk group id "
                                 "(a number: Admin Center > People > Groups)")
        return int(group)

    # -- protocol -------------------------------------------------------------------------

    def open(self, view: TicketView, dest: Destination) -> ExternalRef:
        ticket: dict[str, Any] = {
            "subject": f"[{view.number}] {view.title}",
            "comment": self._note(view.body),
            "priority": self._priority(view),
            "type": self.config.ticket_type,
            "tags": list(self.config.tags),
            "external_id": view.fingerprint,
        }
        group = self._group(dest)
        if group is not None:
            ticket["group_id"] = group
        if dest.assignee:
            key = "assignee_id" if dest.assignee.isdigit() else "assignee_email"
            ticket[key] = int(dest.assignee) if key == "assignee_id" else dest.assignee
        ticket |= dest.fields
        created = self.http.json(
            "POST", "/api/v2/tickets.json", json={"ticket": ticket}, expect=(201,),
            headers={"Idempotency-Key": idempotency_key(view.fingerprint, ticket)})
        return self._ref(created["ticket"]["id"])

    def find(self, fingerprint: str, dest: Destination) -> ExternalRef | None:
        found = self.http.json("GET", "/api/v2/tickets.json", expect=(200,),
                               params={"external_id": fingerprint})
        for ticket in found.get("tickets") or []:
            if ticket.get("status") not in DONE:
                return self._ref(ticket["id"])
        return None

    def comment(self, ref: ExternalRef, text: str, view: TicketView) -> None:
        self._update(ref, {"comment": self._note(text)})

    def set_priority(self, ref: ExternalRef, view: TicketView, dest: Destination) -> None:
        self._update(ref, {"priority": self._priority(view)})

    def resolve(self, ref: ExternalRef, text: str, view: TicketView,
                dest: Destination) -> None:
        self._update(ref, {"status": "solved"} | ({"comment": self._note(text)} if text else {}))

    def reopen(self, ref: ExternalRef, text: str, view: TicketView,
               dest: Destination) -> None:
        self._update(ref, {"status": "open"} | ({"comment": self._note(text)} if text else {}))

    def status(self, ref: ExternalRef) -> RemoteStatus:
        found = self.http.json("GET", f"/api/v2/tickets/{ref.id}.json", expect=(200,),
                               params={"include": "users"})
        ticket = found["ticket"]
        raw = ticket.get("status") or "new"
        state = STATES.get(raw, "acknowledged")
        assignee = None
        if ticket.get("assignee_id"):
            users = {u.get("id"): u for u in found.get("users") or []}
            user = users.get(ticket["assignee_id"]) or {}
            assignee = user.get("name") or str(ticket["assignee_id"])
            if state == "open":
                state = "acknowledged"
        wont = bool(set(ticket.get("tags") or []) & set(self.config.wont_fix_statuses))
        return RemoteStatus(state, assignee, wont, raw)
