"""A generic JSON webhook, or one of the presets in :mod:`ticketing_bridge.presets`
(PagerDuty Events v2, DingTalk, WeCom, Feishu/Lark, Slack).

Generic: ``template`` is any JSON value whose strings may hold ``{placeholders}``
(``{{``/``}}`` for literal braces). A string that is exactly one placeholder takes
the value with its type (``"{labels}"`` becomes an object, ``"{respond_by}"`` a
number); otherwise values are formatted into the string. Placeholders are checked
when the config loads: an unknown one is an error naming it, where it is, and the
closest known name. ``{labels[env]}`` reads one label ("" when absent).

Who is told what (``min_priority``):

- presets default to ``P2``: they interrupt people, so only P1/P2 tickets page or
  post (issue 4: "paging on P1/P2"); the generic webhook defaults to ``P4`` (every
  ticket; it is an integration, let the receiver filter);
- chat robots post every action (open, comment, priority change, resolve, reopen)
  of a ticket whose *current* priority is at or above ``min_priority``; a ticket
  that becomes P1 later is posted from then on;
- PagerDuty triggers on open, reopen, priority change and comment (a repeated
  trigger with the same ``dedup_key`` updates the one alert), and always sends
  ``resolve`` (even for a ticket below the threshold: its priority may have dropped
  after it paged, and resolving an unknown key is a no-op there). Patrol never sends
  ``acknowledge``: people acknowledge in PagerDuty.

Read-back and search: PagerDuty deduplicates by ``dedup_key`` itself, so ``find``
returns a reference built from the fingerprint (a retried open re-triggers the
same alert, never a second one). Chat robots and generic webhooks cannot be
searched: ``find`` returns None (a crash between "posted" and "stored" posts again).
``status`` always answers ``open``: none of these APIs can be read back.

Duplicates: a generic webhook request carries ``X-Patrol-Fingerprint`` (the incident)
and ``Idempotency-Key`` (the same for a resend of the same action and body), so a
receiver can recognise the one resend a crash or a lease takeover can cause (delivery
is at least once). Configured ``headers`` of the same name win.
"""

from __future__ import annotations

import string
import time
from collections.abc import Callable
from difflib import get_close_matches
from typing import Any, ClassVar, Literal

import requests
from pydantic import Field, model_validator

from patrol.contract.markup import to_html, to_text
from patrol.contract.timestamps import iso_z
from patrol.ticketing_bridge import presets
from patrol.ticketing_bridge.http import HttpClient, idempotency_key
from patrol.ticketing_bridge.protocol import (
    Destination,
    ExternalRef,
    PermanentError,
    RemoteStatus,
    TicketView,
)
from patrol.ticketing_bridge.settings import PRIORITIES, AdapterSettings, Secret

PLACEHOLDERS = ("action", "text", "helpdesk", "number", "fingerprint", "title", "body",
                "body_text", "body_html", "priority", "severity", "status", "category",
                "host", "hosts", "check", "check_type", "labels", "respond_by",
                "resolve_by", "respond_by_iso", "resolve_by_iso", "url", "project", "team",
                "assignee")
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"


def template_errors(value: Any, where: str = "template") -> list[str]:
    """Every unknown or malformed placeholder in a template, with its JSON path."""
    if isinstance(value, dict):
        return [e for k, v in value.items() for e in template_errors(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [e for i, v in enumerate(value) for e in template_errors(v, f"{where}[{i}]")]
    if not isinstance(value, str):
        return []
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None]
    except ValueError as exc:
        return [f"{where}: {exc} (write {{{{ and }}}} for literal braces)"]
    errors = []
    for name in fields:
        base = name.split("[", 1)[0].split(".", 1)[0]
        if base not in PLACEHOLDERS:
            hint = get_close_matches(base, PLACEHOLDERS, n=1)
            did = f"did you mean '{{{hint[0]}}}'?" if hint else \
                f"known: {', '.join(PLACEHOLDERS)}"
            errors.append(f"{where}: unknown placeholder '{{{name}}}'; {did}")
        elif name != base and not (base == "labels" and name.count("[") == 1):
            errors.append(f"{where}: '{{{name}}}': only {{labels[name]}} may index")
    return errors


class _Values(string.Formatter):
    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        base, _, rest = field_name.partition("[")
        if rest:
            return kwargs[base].get(rest.rstrip("]"), ""), field_name
        return kwargs[base], field_name


def render(value: Any, values: dict[str, Any]) -> Any:
    """The template with placeholders filled (see the module docstring)."""
    if isinstance(value, dict):
        return {k: render(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, values) for v in value]
    if not isinstance(value, str):
        return value
    parts = list(string.Formatter().parse(value))
    if len(parts) == 1 and parts[0][0] == "" and parts[0][1] and not parts[0][2]:
        return _Values().get_field(parts[0][1], (), values)[0]
    return _Values().vformat(value, (), values)


def _iso(moment: float) -> str:
    return iso_z(moment) if moment else ""


class Webhook:
    """See the module docstring."""

    type: ClassVar[str] = "webhook"

    class Config(AdapterSettings):
        url: str = ""
        method: Literal["POST", "PUT", "PATCH"] = "POST"
        headers: dict[str, Secret] = Field(default_factory=dict)
        template: Any = None
        preset: Literal["pagerduty", "dingtalk", "wecom", "feishu", "slack"] | None = None
        routing_key: Secret | None = Field(default=None, description="PagerDuty")
        secret: Secret | None = Field(default=None, description="DingTalk / Feishu signing")
        source: str | None = Field(default=None, description="PagerDuty payload.source; "
                                                             "default: the ticket's host")
        min_priority: Literal["P1", "P2", "P3", "P4"] | None = None

        @model_validator(mode="after")
        def _consistent(self) -> Webhook.Config:
            problems = template_errors(self.template) if self.template is not None else []
            if self.preset is None and self.template is None:
                problems.append("set a template, or a preset (pagerduty, dingtalk, wecom, "
                                "feishu, slack)")
            if self.preset is not None and self.template is not None:
                problems.append(f"template and preset '{self.preset}' exclude each other")
            if self.preset == "pagerduty" and self.routing_key is None:
                problems.append("preset pagerduty needs routing_key (the integration key)")
            if self.preset != "pagerduty" and not self.url:
                problems.append("url is required")
            if self.secret is not None and self.preset not in ("dingtalk", "feishu"):
                problems.append("secret (request signing) applies to dingtalk and feishu only")
            if problems:
                raise ValueError("; ".join(problems))
            return self

        @property
        def threshold(self) -> str:
            return self.min_priority or ("P4" if self.preset is None else "P2")

    def __init__(self, config: Webhook.Config, name: str,
                 session: requests.Session | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.name = name
        self.clock = clock
        url = config.url or PAGERDUTY_URL
        headers = {k: v.get_secret_value() for k, v in config.headers.items()}
        self.http = HttpClient.for_adapter(config, url, name, session, headers=headers)
        self.url = url

    # -- the protocol ------------------------------------------------------------------

    def open(self, view: TicketView, dest: Destination) -> ExternalRef:
        answer = self._deliver(presets.Event("open", view), dest)
        key = answer.get("dedup_key") if isinstance(answer, dict) else None
        return ExternalRef(self.name, str(key or view.fingerprint), view.url)

    def find(self, fingerprint: str, dest: Destination) -> ExternalRef | None:
        if self.config.preset == "pagerduty":
            return ExternalRef(self.name, fingerprint[:255], None)
        return None

    def comment(self, ref: ExternalRef, text: str, view: TicketView) -> None:
        self._deliver(presets.Event("comment", view, text), Destination(self.name))

    def set_priority(self, ref: ExternalRef, view: TicketView, dest: Destination) -> None:
        self._deliver(presets.Event("priority", view), dest)

    def resolve(self, ref: ExternalRef, text: str, view: TicketView,
                dest: Destination) -> None:
        self._deliver(presets.Event("resolve", view, text), dest)

    def reopen(self, ref: ExternalRef, text: str, view: TicketView,
               dest: Destination) -> None:
        self._deliver(presets.Event("reopen", view, text), dest)

    def status(self, ref: ExternalRef) -> RemoteStatus:
        return RemoteStatus("open")  # nothing to read back: see the module docstring

    # -- delivery ----------------------------------------------------------------------

    def wanted(self, event: presets.Event) -> bool:
        """Whether this event is sent at all (see "Who is told what")."""
        if self.config.preset == "pagerduty" and event.action == "resolve":
            return True
        if event.view.priority not in PRIORITIES:
            return True  # an unknown priority is never silently dropped
        return PRIORITIES.index(event.view.priority) <= PRIORITIES.index(
            self.config.threshold)

    def outgoing(self, event: presets.Event, dest: Destination) -> presets.Outgoing:
        """The request for ``event`` (public for tests and previews)."""
        c, now = self.config, self.clock()
        secret = c.secret.get_secret_value() if c.secret else None
        if c.preset == "pagerduty":
            assert c.routing_key is not None
            return presets.pagerduty(event, c.routing_key.get_secret_value(), c.source)
        if c.preset == "dingtalk":
            return presets.dingtalk(event, secret, now)
        if c.preset == "feishu":
            return presets.feishu(event, secret, now)
        if c.preset == "wecom":
            return presets.wecom(event)
        if c.preset == "slack":
            return presets.slack(event)
        return presets.Outgoing(render(c.template, self._values(event, dest)))

    def _values(self, event: presets.Event, dest: Destination) -> dict[str, Any]:
        view = event.view
        return {"action": event.action, "text": event.text, "helpdesk": self.name,
                "number": view.number, "fingerprint": view.fingerprint, "title": view.title,
                "body": view.body, "body_text": to_text(view.body),
                "body_html": to_html(view.body), "priority": view.priority,
                "severity": view.severity, "status": view.status, "category": view.category,
                "host": view.host, "hosts": list(view.hosts), "check": view.check,
                "check_type": view.check_type, "labels": dict(view.labels),
                "respond_by": view.respond_by, "resolve_by": view.resolve_by,
                "respond_by_iso": _iso(view.respond_by), "resolve_by_iso": _iso(view.resolve_by),
                "url": view.url or "", "project": dest.project or self.config.project or "",
                "team": dest.team or "", "assignee": dest.assignee or ""}

    def _deliver(self, event: presets.Event, dest: Destination) -> Any:
        if not self.wanted(event):
            return None
        out = self.outgoing(event, dest)
        headers = None
        if self.config.preset is None:  # see "Duplicates" in the module docstring
            configured = {name.lower() for name in self.config.headers}
            headers = {name: value for name, value in (
                ("X-Patrol-Fingerprint", event.view.fingerprint),
                ("Idempotency-Key", idempotency_key(event.view.fingerprint,
                                                    [event.action, out.body])))
                if name.lower() not in configured}
        response = self.http.request(self.config.method, self.url, json=out.body,
                                     params=out.params or None, headers=headers,
                                     expect=(200, 201, 202, 204))
        answer: Any = None
        if response.content:
            try:
                answer = response.json()
            except ValueError:
                answer = response.text
        if self.config.preset is not None:
            presets.check_answer(self.config.preset, answer, self.name)
        if self.config.preset == "pagerduty" and not (
                isinstance(answer, dict) and answer.get("status") == "success"):
            raise PermanentError(f"{self.name}: PagerDuty did not accept the event: "
                                 f"{answer!r:.300}")
        return answer
