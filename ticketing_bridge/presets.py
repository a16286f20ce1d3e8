"""Request bodies for the webhook presets, each in its vendor's documented format, and
how each vendor says "refused" in a 200 answer.

- **PagerDuty Events API v2** (developer.pagerduty.com, "Send an Alert Event"):
  ``POST https://events.pagerduty.com/v2/enqueue`` with ``routing_key`` (the 32
  character integration key), ``event_action`` (``trigger``/``acknowledge``/
  ``resolve``), ``dedup_key`` (<= 255 chars) and, for a trigger, ``payload`` with
  the required ``summary`` (<= 1024 chars), ``source`` and ``severity``
  (``critical``/``error``/``warning``/``info``) and the optional ``component``,
  ``group``, ``class``, ``custom_details``; ``links`` [{href, text}]. Answers 202
  ``{"status": "success", "dedup_key": ...}``, 400 for an invalid event, 429 when
  throttled.
- **DingTalk custom robot** (open.dingtalk.com, "自定义机器人发送群消息"):
  ``{"msgtype": "markdown", "markdown": {"title", "text"}}``; with 加签 (sign) the
  URL gets ``timestamp`` (ms) and ``sign`` = base64(HMAC-SHA256(key=secret,
  msg=f"{timestamp}\\n{secret}")). Answers 200 ``{"errcode": 0, "errmsg": "ok"}``;
  a nonzero ``errcode`` is a refusal (310000 sign/keyword/IP, 130101 too fast).
- **WeCom (企业微信) group robot** (developer.work.weixin.qq.com, "群机器人配置说明"):
  ``{"msgtype": "markdown", "markdown": {"content"}}``, content <= 4096 bytes UTF-8.
  Answers ``{"errcode": 0, "errmsg": "ok"}``; 45009 is the rate limit, 93000 a bad key.
- **Feishu / Lark custom bot** (open.feishu.cn, "自定义机器人使用指南"):
  ``{"msg_type": "interactive", "card": {...}}`` with a ``lark_md`` div; with
  签名校验 the body gets ``timestamp`` (s, string) and ``sign`` =
  base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b"")). Answers
  ``{"code": 0, "msg": "success"}``; 19021 bad signature, 9499 bad request, 11232
  too frequent.
- **Slack incoming webhook** (api.slack.com/messaging/webhooks, Block Kit): ``text``
  (the notification fallback) and ``blocks`` (a ``header`` <= 150 chars, a
  ``section`` with ``mrkdwn`` <= 3000 chars). Answers 200 ``ok``; errors as HTTP
  statuses (400 invalid_payload, 403, 404 channel_not_found, 410, 429).

Chat messages are a short summary (ticket, priority, severity, host, what happened,
a link), not the whole body: a chat is where people notice, the ticket is where
they read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

from patrol.contract.markup import to_text
from patrol.ticketing_bridge.protocol import PermanentError, TemporaryError, TicketView

PD_SEVERITIES = ("critical", "error", "warning", "info")
CHAT_LIMIT = 3000


@dataclass(frozen=True)
class Event:
    """One thing to tell the webhook: ``action`` is open, comment, priority, resolve or
    reopen; ``text`` the comment / resolution note (Markdown)."""

    action: str
    view: TicketView
    text: str = ""


@dataclass(frozen=True)
class Outgoing:
    """The request a preset wants sent: JSON body and extra query parameters."""

    body: Any
    params: dict[str, str] = field(default_factory=dict)


def _sign(key: bytes, message: bytes) -> str:
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's ``sign`` (before URL-encoding, which ``requests`` does)."""
    return _sign(secret.encode(), f"{timestamp_ms}\n{secret}".encode())


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu's ``sign``: the key is timestamp and secret, the message empty."""
    return _sign(f"{timestamp_s}\n{secret}".encode(), b"")


_HEADLINE = {"open": "Opened", "comment": "Comment", "priority": "Priority changed",
             "resolve": "Resolved", "reopen": "Reopened"}


def headline(event: Event) -> str:
    return f"{_HEADLINE.get(event.action, event.action)}: [{event.view.number}] " \
           f"{event.view.title}"


def _facts(view: TicketView) -> str:
    return f"{view.priority} · {view.severity} · {view.host} · {view.category}"


def _note(event: Event) -> str:
    return to_text(event.text).strip() if event.text else ""


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _utf8_cut(text: str, limit: int) -> str:
    data = text.encode()
    return text if len(data) <= limit else data[: limit - 3].decode(errors="ignore") + "…"


def _markdown(event: Event) -> str:
    """Chat Markdown (DingTalk, WeCom, Feishu lark_md): bold and links, no tables."""
    view = event.view
    lines = [f"**{headline(event)}**", "", _facts(view)]
    if note := _note(event):
        lines += ["", note]
    if view.url:
        lines += ["", f"[Open {view.number} in Patrol]({view.url})"]
    return "\n".join(lines)


def pagerduty(event: Event, routing_key: str, source: str | None = None) -> Outgoing:
    """Trigger (open, reopen, priority, comment) or resolve; ``dedup_key`` is the
    fingerprint, so PagerDuty folds every event of a ticket into one alert."""
    view = event.view
    body: dict[str, Any] = {"routing_key": routing_key, "dedup_key": view.fingerprint[:255],
                            "event_action": "resolve" if event.action == "resolve"
                            else "trigger"}
    if event.action == "resolve":
        return Outgoing(body)
    details: dict[str, Any] = {"ticket": view.number, "priority": view.priority,
                               "category": view.category, "check": view.check,
                               "status": view.status, "labels": dict(view.labels)}
    if view.hosts:
        details["hosts"] = list(view.hosts)
    if note := _note(event):
        details["note"] = _cut(note, 2000)
    details["body"] = _cut(to_text(view.body), 16000)
    body["payload"] = {
        "summary": _cut(f"[{view.number}] {view.title}", 1024),
        "source": source or view.host,
        "severity": view.severity if view.severity in PD_SEVERITIES else "error",
        "component": view.check, "group": view.category, "class": view.check_type,
        "custom_details": details}
    body["client"] = "Patrol"
    if view.url:
        body["client_url"] = view.url
        body["links"] = [{"href": view.url, "text": f"Patrol ticket {view.number}"}]
    return Outgoing(body)


def dingtalk(event: Event, secret: str | None, now: float) -> Outgoing:
    body = {"msgtype": "markdown",
            "markdown": {"title": _cut(headline(event), 200), "text": _markdown(event)}}
    if not secret:
        return Outgoing(body)
    timestamp = int(now * 1000)
    return Outgoing(body, {"timestamp": str(timestamp), "sign": dingtalk_sign(secret, timestamp)})


def wecom(event: Event) -> Outgoing:
    return Outgoing({"msgtype": "markdown",
                     "markdown": {"content": _utf8_cut(_markdown(event), 4096)}})


def feishu(event: Event, secret: str | None, now: float) -> Outgoing:
    colour = {"P1": "red", "P2": "orange", "P3": "yellow"}.get(event.view.priority, "blue")
    if event.action == "resolve":
        colour = "green"
    body: dict[str, Any] = {"msg_type": "interactive", "card": {
        "config": {"wide_screen_mode": True},
        "header": {"title": {"tag": "plain_text", "content": _cut(headline(event), 100)},
                   "template": colour},
        "elements": [{"tag": "div", "text": {"tag": "lark_md",
                                             "content": _cut(_markdown(event), CHAT_LIMIT)}}]}}
    if secret:
        timestamp = int(now)
        body = {"timestamp": str(timestamp), "sign": feishu_sign(secret, timestamp), **body}
    return Outgoing(body)


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack(event: Event) -> Outgoing:
    view = event.view
    lines = [f"*{_slack_escape(_facts(view))}*"]
    if note := _note(event):
        lines.append(_slack_escape(note))
    if view.url:
        lines.append(f"<{view.url}|Open {view.number} in Patrol>")
    return Outgoing({
        "text": _cut(headline(event), CHAT_LIMIT),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": _cut(headline(event), 150)}},
            {"type": "section", "text": {"type": "mrkdwn",
                                         "text": _cut("\n".join(lines), CHAT_LIMIT)}}]})


# Vendor refusals inside a 200 answer: (field, codes that mean "slow down")
_CODES = {"dingtalk": ("errcode", {130101, 660026}), "wecom": ("errcode", {45009, -1}),
          "feishu": ("code", {11232, 11233})}


def check_answer(preset: str, answer: Any, name: str) -> None:
    """Raise if a chat robot refused the message in a 200 answer (it says so in JSON)."""
    if preset not in _CODES:
        return
    key, slow = _CODES[preset]
    if not isinstance(answer, dict) or key not in answer:
        raise TemporaryError(f"{name}: {preset} answered without '{key}': {answer!r:.200}")
    code = answer[key]
    if code == 0:
        return
    message = f"{name}: {preset} refused the message: {key} {code} " \
              f"{answer.get('errmsg') or answer.get('msg') or ''}".rstrip()
    if code in slow:
        raise TemporaryError(message + " (rate limited)", 429, 60.0)
    raise PermanentError(message)
