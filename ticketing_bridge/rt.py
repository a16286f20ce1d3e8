"""Request Tracker 5 through REST2 (built into RT 5; tested against Debian's 5.0.3).

Auth: ``Authorization: token <token>`` (an auth token: user preferences -> Auth Tokens),
or basic auth with ``username``/``password``. Each request costs RT a bcrypt check
(~250 ms on a small machine), so this adapter keeps calls few: the queue is checked once
per instance, and a resolve or reopen with a note is ONE call (the comment endpoint
accepts ticket fields such as ``Status`` alongside the content).

Decisions:

- The fingerprint lives in a ticket **custom field** (default "Alert fingerprint",
  "Enter one value", applied to the queue); ``find()`` asks TicketSQL for
  ``Queue = '<queue>' AND 'CF.{<field>}' = '<fingerprint>' AND Status = '__Active__'``
  (new, open, stalled and any other active status of the queue's lifecycle).
- The queue is checked before the first use (``GET /queue/<name>``): an unknown queue is
  a :class:`PermanentError` naming it (RT's own answer to creating in an unknown queue is
  a misleading 403 "No permission"), and so is a fingerprint field not applied to it
  (RT would silently drop the value and ``find()`` could never match).
- Priority is RT's number: P1 90, P2 70, P3 50, P4 30 (``priority_map``).
- Body and comments are HTML (``markup.to_html``), or plain text with
  ``body_format: text``. Comments are internal (``/comment``), never mailed to requestors.
- Resolve sets ``resolved_status`` (default "resolved"), reopen ``reopen_status``
  (default "open").
- ``status()``: a status in ``wont_fix_statuses`` (default "rejected") -> closed +
  wont_fix; "deleted" -> closed; ``resolved_status`` or "resolved" -> resolved; any other
  (new, open, stalled) -> acknowledged when the ticket has an Owner other than Nobody,
  else open. RT moves a ticket from new to open by itself on a reply, and this adapter's
  reopen sets open too, so the status alone does not say a person took it: the owner does.
- ``resolve_by`` becomes the ticket's Due date (UTC).

Vendor documentation: https://docs.bestpractical.com/rt/5.0.3/RT/REST2.html ,
https://docs.bestpractical.com/rt/5.0.3/query_builder.html (TicketSQL).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import html
import re
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from urllib.parse import quote

import requests
from pydantic import Field, model_validator

from patrol.contract import markup
from patrol.ticketing_bridge.http import HttpClient, token_or_basic
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

PRIORITIES = {"P1": 90, "P2": 70, "P3": 50, "P4": 30}
NOBODY = "Nobody"
SUBJECT_MAX = 200  # RT's Tickets.Subject column


NOTE_LOOKBACK = 5  # transactions read back for a person's note, newest first


def _attachment_text(part: dict[str, Any]) -> str:
    """A message part's text: ``Content`` of text/plain, or text/html with the
    tags dropped; "" for anything else (a file, a signature)."""
    kind = str(part.get("ContentType") or "")
    if kind not in ("text/plain", "text/html") or not part.get("Content"):
        return ""
    text = str(part["Content"])
    # REST2 sends binary parts in base64, text as text
    with contextlib.suppress(binascii.Error, UnicodeDecodeError):
        text = base64.b64decode(text, validate=True).decode("utf-8")
    if kind == "text/html":
        text = html.unescape(re.sub(r"<br\s*/?>|</p>", "\n", text))
        text = re.sub(r"<[^>]+>", "", text)
    return text.strip()


def sql_string(value: str) -> str:
    """A TicketSQL string literal: RT's parser honours backslash escapes inside quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class RequestTracker:
    type: ClassVar[str] = "rt"

    class Config(AdapterSettings):
        url: str = Field(description="RT's base URL (WebBaseURL + WebPath), e.g. "
                                     "https://rt.example.com/rt")
        token: Secret | None = None
        username: str | None = None
        password: Secret | None = None
        queue: str = Field(default="Monitoring",
                           description="default queue; 'project' (or a route) overrides it")
        fingerprint_field: str = "Alert fingerprint"
        body_format: Literal["html", "text"] = "html"
        resolved_status: str = "resolved"
        reopen_status: str = "open"
        wont_fix_statuses: list[str] = Field(default_factory=lambda: ["rejected"])

        @model_validator(mode="after")
        def _credentials(self) -> RequestTracker.Config:
            if self.token is None and not (self.username and self.password):
                raise ValueError("set 'token' (an RT auth token) or 'username' and "
                                 "'password'")
            return self

    def __init__(self, config: Config | dict[str, Any], name: str,
                 session: requests.Session | None = None) -> None:
        self.config = config if isinstance(config, RequestTracker.Config) \
            else RequestTracker.Config.model_validate(config)
        self.name = name
        cfg = self.config
        headers, auth = token_or_basic(cfg.token, "token", cfg.username, cfg.password)
        self.http = HttpClient.for_adapter(cfg, f"{cfg.url.rstrip('/')}/REST/2.0", name, session,
                                           headers={"Accept": "application/json", **headers},
                                           auth=auth)
        self._checked: set[str] = set()

    # -- protocol -------------------------------------------------------------------------

    def open(self, view: TicketView, dest: Destination) -> ExternalRef:
        queue = self._queue(dest)
        prefix = f"[{view.number}]"
        subject = view.title if view.title.startswith(prefix) else f"{prefix} {view.title}"
        ticket: dict[str, Any] = {
            "Queue": queue,
            "Subject": subject[:SUBJECT_MAX],
            "Priority": self._priority(view),
            "CustomFields": {self.config.fingerprint_field: view.fingerprint},
            **self._content(view.body),
        }
        if dest.assignee:
            ticket["Owner"] = dest.assignee
        if view.resolve_by > 0:  # Create parses it as ISO, in UTC
            ticket["Due"] = datetime.fromtimestamp(view.resolve_by, UTC) \
                .strftime("%Y-%m-%d %H:%M:%S")
        ticket |= dest.fields
        created = self.http.json("POST", "/ticket", json=ticket, expect=(201,))
        return self._ref(created["id"])

    def find(self, fingerprint: str, dest: Destination) -> ExternalRef | None:
        queue = self._queue(dest)
        query = (f"Queue = {sql_string(queue)} AND "
                 f"'CF.{{{self.config.fingerprint_field}}}' = {sql_string(fingerprint)} "
                 "AND Status = '__Active__'")
        found = self.http.json("GET", "/tickets", expect=(200,), params={
            "query": query, "fields": "Status", "orderby": "id", "order": "DESC",
            "per_page": "1"})
        items = found.get("items") or []
        return self._ref(items[0]["id"]) if items else None

    def comment(self, ref: ExternalRef, text: str, view: TicketView) -> None:
        self.http.request("POST", f"/ticket/{ref.id}/comment", json=self._content(text),
                          expect=(200, 201))

    def set_priority(self, ref: ExternalRef, view: TicketView, dest: Destination) -> None:
        self.http.request("PUT", f"/ticket/{ref.id}", json={"Priority": self._priority(view)},
                          expect=(200,))

    def resolve(self, ref: ExternalRef, text: str, view: TicketView,
                dest: Destination) -> None:
        self._set_status(ref, self.config.resolved_status, text)

    def reopen(self, ref: ExternalRef, text: str, view: TicketView,
               dest: Destination) -> None:
        self._set_status(ref, self.config.reopen_status, text)

    def status(self, ref: ExternalRef) -> RemoteStatus:
        ticket = self.http.json("GET", f"/ticket/{ref.id}", expect=(200,))
        raw = str(ticket.get("Status", ""))
        owner = str((ticket.get("Owner") or {}).get("id") or NOBODY)
        who = None if owner == NOBODY else owner
        fold = raw.casefold()
        if fold in {s.casefold() for s in self.config.wont_fix_statuses}:
            return RemoteStatus("closed", who, True, raw, *self._person_note(ref))
        if fold == "deleted":
            return RemoteStatus("closed", who, False, raw)
        if fold in {self.config.resolved_status.casefold(), "resolved"}:
            return RemoteStatus("resolved", who, False, raw, *self._person_note(ref))
        return RemoteStatus("acknowledged" if who else "open", who, False, raw)

    def attach(self, ref: ExternalRef, attachment: Attachment, note: str) -> None:
        """A comment carrying the file (REST2 takes base64 ``Attachments`` inline)."""
        self.http.request("POST", f"/ticket/{ref.id}/comment", json={
            **self._content(note or attachment.filename),
            "Attachments": [{"FileName": attachment.filename,
                             "FileType": attachment.content_type,
                             "FileContent": base64.b64encode(attachment.data).decode("ascii")}],
        }, expect=(200, 201))

    def _person_note(self, ref: ExternalRef) -> tuple[str | None, str | None]:
        """The latest reply or comment a person wrote and its author, for the knowledge
        archive: the ticket's newest Comment/Correspond transactions, newest first, until
        one whose text Patrol did not write (read only once resolved: RT is slow)."""
        history = self.http.json("GET", f"/ticket/{ref.id}/history", expect=(200,), params={
            "fields": "Type,Creator", "orderby": "id", "order": "DESC", "per_page": "20"})
        notes = [t for t in history.get("items") or []
                 if t.get("Type") in ("Comment", "Correspond")][:NOTE_LOOKBACK]
        for transaction in notes:
            found = self.http.json(
                "GET", f"/transaction/{transaction['id']}/attachments", expect=(200,),
                params={"fields": "Content,ContentType"})
            for part in found.get("items") or []:
                text = _attachment_text(part)
                if text and not is_patrol_note(text):
                    return text, str((transaction.get("Creator") or {}).get("id") or "") \
                        or None
        return None, None

    # -- helpers --------------------------------------------------------------------------

    def _ref(self, ticket_id: Any) -> ExternalRef:
        return ExternalRef(self.name, str(ticket_id),
                           f"{self.config.url.rstrip('/')}/Ticket/Display.html?id={ticket_id}")

    def _priority(self, view: TicketView) -> int:
        return int(self.config.mapped_priority(view.priority, PRIORITIES))

    def _content(self, markdown: str) -> dict[str, str]:
        if self.config.body_format == "text":
            return {"Content": markup.to_text(markdown), "ContentType": "text/plain"}
        return {"Content": markup.to_html(markdown), "ContentType": "text/html"}

    def _set_status(self, ref: ExternalRef, status: str, text: str) -> None:
        if text:  # one request: the note and the status change together
            self.http.request("POST", f"/ticket/{ref.id}/comment",
                              json={**self._content(text), "Status": status}, expect=(200, 201))
        else:
            self.http.request("PUT", f"/ticket/{ref.id}", json={"Status": status},
                              expect=(200,))

    def _queue(self, dest: Destination) -> str:
        """The destination queue, checked once: it exists and carries the fingerprint field."""
        queue = dest.project or self.config.project or self.config.queue
        if queue in self._checked:
            return queue
        response = self.http.request("GET", f"/queue/{quote(queue, safe='')}",
                                     expect=(200, 404))
        if response.status_code == 404:
            raise PermanentError(f"{self.name}: RT queue '{queue}' does not exist or this "
                                 "account cannot see it", 404)
        fields = {str(cf.get("name")) for cf in response.json().get("TicketCustomFields") or []}
        if self.config.fingerprint_field not in fields:
            raise PermanentError(f"{self.name}: custom field '{self.config.fingerprint_field}'"
                                 f" is not applied to RT queue '{queue}' (it has: "
                                 f"{', '.join(sorted(fields)) or 'none'}); apply it or set "
                                 "'fingerprint_field'")
        self._checked.add(queue)
        return queue
