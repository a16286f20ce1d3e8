"""Zammad tickets through its REST API (``/api/v1``).

Decisions:

- Fingerprint as a ticket **tag** (``patrol-...``), given in the create request's
  ``tags`` so ticket and tag are one transaction; ``find`` searches
  ``tags:"<tag>"`` (``/api/v1/tickets/search``, needs Zammad's Elasticsearch, as
  every production install has) with ``expand=true`` to get state names, and keeps
  the first ticket not closed, merged or removed.
- Priority by id: P1 and P2 -> 3 high, P3 -> 2 normal, P4 -> 1 low (Zammad ships
  three priorities).
- Body and comments as internal notes: ``article: {type: note, internal: true,
  content_type: text/html}``, so the customer is not mailed.
- The customer is required on create; ``customer_id: "guess:<email>"`` finds (or
  creates) that user without a lookup call.
- Resolve: ``state: closed`` (``resolve_state``; some teams use "pending close").
  Reopen: ``state: open``. The note rides along in the same update.
- ``status()``: new -> open; open, pending reminder -> acknowledged, as is any ticket
  with an owner (``owner_id`` 1 is Zammad's "nobody"); pending close -> resolved;
  closed, merged, removed -> closed. A tag listed in ``wont_fix_statuses`` sets
  ``wont_fix`` (read from ``/api/v1/tags`` only when that list is configured).
- Auth: ``Authorization: Token token=<access token>``.

Vendor documentation:
https://docs.zammad.org/en/latest/api/intro.html
https://docs.zammad.org/en/latest/api/ticket/index.html
https://docs.zammad.org/en/latest/api/ticket/articles.html
https://docs.zammad.org/en/latest/api/ticket/tags.html
https://docs.zammad.org/en/latest/api/ticket/states.html
"""

from __future__ import annotations

import re
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

PRIORITIES = {"P1": 3, "P2": 3, "P3": 2, "P4": 1}
STATES = {"new": "open", "open": "acknowledged", "pending reminder": "acknowledged",
          "pending close": "resolved", "closed": "closed", "merged": "closed",
          "removed": "closed"}
CLOSED = ("closed", "merged", "removed")
NOBODY = 1


def tag_for(fingerprint: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", fingerprint).strip("-")
    return slug if slug.startswith("patrol-") else f"patrol-{slug}"


class Zammad:
    type: ClassVar[str] = "zammad"

    class Config(AdapterSettings):
        url: str = Field(description="e.g. https://helpdesk.example.com")
        token: Secret = Field(description="access token with ticket.agent permission")
        customer: str = Field(description="email of the customer tickets are opened for")
        tags: list[str] = Field(default_factory=lambda: ["patrol"])
        resolve_state: str = "closed"
        reopen_state: str = "open"

    def __init__(self, config: Config | dict[str, Any], name: str,
                 session: requests.Session | None = None) -> None:
        self.config = config if isinstance(config, Zammad.Config) \
            else Zammad.Config.model_validate(config)
        self.name = name
        cfg = self.config
        self.http = HttpClient.for_adapter(cfg, cfg.url, name, session, headers={
            "Authorization": f"Token token={cfg.token.get_secret_value()}",
            "Accept": "application/json"})

    def _ref(self, ticket_id: Any) -> ExternalRef:
        return ExternalRef(self.name, str(ticket_id),
                           f"{self.config.url.rstrip('/')}/#ticket/zoom/{ticket_id}")

    def _note(self, markdown: str, subject: str | None = None) -> dict[str, Any]:
        from patrol.contract import markup
        note: dict[str, Any] = {"body": markup.to_html(markdown), "type": "note",
                                "internal": True, "content_type": "text/html"}
        if subject:
            note["subject"] = subject
        return note

    def _update(self, ref: ExternalRef, fields: dict[str, Any]) -> None:
        self.http.request("PUT", f"/api/v1/tickets/{ref.id}", json=fields, expect=(200,))

    def _priority(self, view: TicketView) -> int:
        return int(self.config.mapped_priority(view.priority, PRIORITIES))

    # -- protocol -------------------------------------------------------------------------

    def open(self, view: TicketView, dest: Destination) -> ExternalRef:
        group = dest.team or dest.project or self.config.project
        if not group:
            raise PermanentError(f"{self.name}: no Zammad group: set 'project' on the "
                                 "helpdesk or 'team'/'project' on the route")
        title = f"[{view.number}] {view.title}"
        ticket: dict[str, Any] = {
            "title": title, "group": group,
            "customer_id": f"guess:{self.config.customer}",
            "priority_id": self._priority(view),
            "tags": ", ".join([tag_for(view.fingerprint), *self.config.tags]),
            "article": self._note(view.body, title),
        }
        if dest.assignee:
            ticket["owner"] = dest.assignee
        ticket |= dest.fields
        created = self.http.json("POST", "/api/v1/tickets", json=ticket, expect=(201,))
        return self._ref(created["id"])

    def find(self, fingerprint: str, dest: Destination) -> ExternalRef | None:
        found = self.http.json("GET", "/api/v1/tickets/search", expect=(200,), params={
            "query": f'tags:"{tag_for(fingerprint)}"', "expand": "true", "limit": 10})
        for ticket in found or []:
            if ticket.get("state") not in CLOSED:
                return self._ref(ticket["id"])
        return None

    def comment(self, ref: ExternalRef, text: str, view: TicketView) -> None:
        article = self._note(text) | {"ticket_id": int(ref.id)}
        self.http.request("POST", "/api/v1/ticket_articles", json=article, expect=(201,))

    def set_priority(self, ref: ExternalRef, view: TicketView, dest: Destination) -> None:
        self._update(ref, {"priority_id": self._priority(view)})

    def resolve(self, ref: ExternalRef, text: str, view: TicketView,
                dest: Destination) -> None:
        self._update(ref, {"state": self.config.resolve_state}
                     | ({"article": self._note(text)} if text else {}))

    def reopen(self, ref: ExternalRef, text: str, view: TicketView,
               dest: Destination) -> None:
        self._update(ref, {"state": self.config.reopen_state}
                     | ({"article": self._note(text)} if text else {}))

    def status(self, ref: ExternalRef) -> RemoteStatus:
        ticket = self.http.json("GET", f"/api/v1/tickets/{ref.id}", expect=(200,),
                                params={"expand": "true"})
        raw = ticket.get("state") or "new"
        state = STATES.get(raw, "acknowledged")
        assignee = None
        if ticket.get("owner_id") not in (None, NOBODY):
            assignee = ticket.get("owner") or str(ticket["owner_id"])
            if state == "open":
                state = "acknowledged"
        wont = False
        if self.config.wont_fix_statuses and state in ("resolved", "closed"):
            tags = self.http.json("GET", "/api/v1/tags", expect=(200,),
                                  params={"object": "Ticket", "o_id": ref.id})
            wont = bool(set(tags.get("tags") or []) & set(self.config.wont_fix_statuses))
        return RemoteStatus(state, assignee, wont, raw)
