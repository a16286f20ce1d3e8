"""The webhook adapter and its presets against a local receiver on 127.0.0.1 that checks
each request against the vendor's documented format and answers as the vendor does."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import ValidationError

from patrol.ticketing_bridge.presets import PD_SEVERITIES, dingtalk_sign, feishu_sign
from patrol.ticketing_bridge.protocol import (
    Destination,
    ExternalRef,
    Helpdesk,
    PermanentError,
    RemoteStatus,
    TemporaryError,
    TicketView,
)
from patrol.ticketing_bridge.webhook import Webhook
from tests.conftest import free_port

ROUTING_KEY = "R0UT1NGKEY0123456789abcdef012345"  # 32 characters, as PagerDuty issues
DING_SECRET = "SEC0123456789abcdef"
FEISHU_SECRET = "feishu-secret"
VIEW = TicketView(
    number="TS20261122001", fingerprint="patrol-TS20261122001",
    title="/var is 96.2% full on db-01 (critical at 95%)",
    body="## Problem\n\n- **Symptom**: /var is 96.2% full\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
    priority="P1", severity="critical", status="new", category="capacity", host="db-01",
    check="var-disk", check_type="disk", labels={"env": "prod"}, respond_by=1700000000.0,
    url="https://patrol.example.com/tickets/TS20261122001")
DEST = Destination("hook")
pytestmark = pytest.mark.slow  # most tests start the local receiver


def _problems_pagerduty(body: dict) -> list[str]:
    problems = []
    if not (isinstance(body.get("routing_key"), str) and len(body["routing_key"]) == 32):
        problems.append("routing_key must be a 32 character string")
    if body.get("event_action") not in ("trigger", "acknowledge", "resolve"):
        problems.append("event_action must be trigger, acknowledge or resolve")
    key = body.get("dedup_key")
    if key is not None and not (isinstance(key, str) and 0 < len(key) <= 255):
        problems.append("dedup_key must be a string of at most 255 characters")
    if body.get("event_action") != "trigger":
        if key is None:
            problems.append("dedup_key is required to acknowledge or resolve")
        return problems
    payload = body.get("payload")
    if not isinstance(payload, dict):
        return [*problems, "payload is required for a trigger"]
    summary = payload.get("summary")
    if not (isinstance(summary, str) and 0 < len(summary) <= 1024):
        problems.append("payload.summary must be 1..1024 characters")
    if not (isinstance(payload.get("source"), str) and payload["source"]):
        problems.append("payload.source is required")
    if payload.get("severity") not in PD_SEVERITIES:
        problems.append("payload.severity must be critical, error, warning or info")
    for name in ("component", "group", "class"):
        if name in payload and not isinstance(payload[name], str):
            problems.append(f"payload.{name} must be a string")
    if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
        problems.append("payload.custom_details must be an object")
    for link in body.get("links", []):
        if not (isinstance(link, dict) and isinstance(link.get("href"), str)):
            problems.append("links[].href must be a string")
    return problems


@dataclass
class Receiver:
    """Records requests; ``script`` answers the next ones instead of the vendor logic."""

    port: int
    requests: list[dict[str, Any]] = field(default_factory=list)
    script: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def vendor(self, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if path == "/v2/enqueue":
            problems = _problems_pagerduty(body)
            if problems:
                return 400, {"status": "invalid event", "message": "Event object is invalid",
                             "errors": problems}
            return 202, {"status": "success", "message": "Event processed",
                         "dedup_key": body["dedup_key"]}
        if path == "/robot/send":
            if query.get("access_token") != "dtoken":
                return 200, {"errcode": 300001, "errmsg": "token is not exist"}
            stamp = query.get("timestamp", "0")
            if (not stamp.isdigit() or abs(int(stamp) / 1000 - time.time()) > 3600
                    or query.get("sign") != dingtalk_sign(DING_SECRET, int(stamp))):
                return 200, {"errcode": 310000, "errmsg": "sign not match"}
            md = body.get("markdown", {})
            if body.get("msgtype") != "markdown" or not (md.get("title") and md.get("text")):
                return 200, {"errcode": 40035, "errmsg": "missing parameter"}
            return 200, {"errcode": 0, "errmsg": "ok"}
        if path == "/cgi-bin/webhook/send":
            if query.get("key") != "wkey":
                return 200, {"errcode": 93000, "errmsg": "invalid webhook url"}
            content = body.get("markdown", {}).get("content")
            if body.get("msgtype") != "markdown" or not isinstance(content, str) \
                    or len(content.encode()) > 4096:
                return 200, {"errcode": 40058, "errmsg": "markdown.content exceed max length"}
            return 200, {"errcode": 0, "errmsg": "ok"}
        if path.startswith("/open-apis/bot/v2/hook/"):
            stamp = body.get("timestamp", "")
            if (not isinstance(stamp, str) or not stamp.isdigit()
                    or abs(int(stamp) - time.time()) > 3600
                    or body.get("sign") != feishu_sign(FEISHU_SECRET, int(stamp))):
                return 200, {"code": 19021, "msg": "sign match fail or timestamp is not "
                                                   "within one hour from current time"}
            card = body.get("card", {})
            if body.get("msg_type") != "interactive" or not card.get("elements"):
                return 200, {"code": 9499, "msg": "Bad Request", "data": {}}
            return 200, {"code": 0, "msg": "success", "data": {}}
        if path.startswith("/services/"):
            blocks = body.get("blocks", [])
            ok = isinstance(body.get("text"), str) and len(blocks) <= 50 and all(
                b.get("type") in ("header", "section") for b in blocks) and all(
                len(b["text"]["text"]) <= (150 if b["type"] == "header" else 3000)
                and b["text"]["type"] == ("plain_text" if b["type"] == "header" else "mrkdwn")
                for b in blocks)
            return (200, "ok") if ok else (400, "invalid_payload")
        if path == "/generic":
            return 204, None
        return 404, "no_service"


class _Handler(BaseHTTPRequestHandler):
    receiver: Receiver

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.loads(raw) if raw else None
        self.receiver.requests.append({"method": self.command, "path": parts.path,
                                       "query": query, "headers": dict(self.headers),
                                       "body": body})
        if self.receiver.script:
            status, headers, data = self.receiver.script.pop(0)
        else:
            status, answer = self.receiver.vendor(parts.path, query, body)
            headers = {"Content-Type": "application/json" if not isinstance(answer, str)
                       else "text/plain"}
            data = b"" if answer is None else (
                answer.encode() if isinstance(answer, str) else json.dumps(answer).encode())
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_PUT = _serve

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver(free_port())
    handler = type("Handler", (_Handler,), {"receiver": rec})
    server = ThreadingHTTPServer(("127.0.0.1", rec.port), handler)
    thread = threading.Thread(target=server.serve_forever,
                              kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()


def hook(**raw: Any) -> Webhook:
    return Webhook(Webhook.Config.model_validate({"type": "webhook", **raw}), "hook")


def pagerduty(receiver: Receiver, **more: Any) -> Webhook:
    return hook(preset="pagerduty", url=receiver.url("/v2/enqueue"), routing_key=ROUTING_KEY,
                **more)


def test_pagerduty_contract(receiver) -> None:
    pd = pagerduty(receiver)
    assert isinstance(pd, Helpdesk)
    assert pd.find(VIEW.fingerprint, DEST) == ExternalRef("hook", "patrol-TS20261122001")
    ref = pd.open(VIEW, DEST)
    assert ref == ExternalRef("hook", "patrol-TS20261122001", VIEW.url)
    pd.comment(ref, "looking", VIEW)
    pd.set_priority(ref, replace(VIEW, priority="P2", severity="error"), DEST)
    pd.resolve(ref, "verified fixed", VIEW, DEST)
    pd.reopen(ref, "came back", VIEW, DEST)
    assert pd.status(ref) == RemoteStatus("open")
    bodies = [r["body"] for r in receiver.requests]
    assert [b["event_action"] for b in bodies] == [
        "trigger", "trigger", "trigger", "resolve", "trigger"]
    assert {b["dedup_key"] for b in bodies} == {"patrol-TS20261122001"}
    assert {r["headers"]["Content-Type"] for r in receiver.requests} == {"application/json"}
    first = bodies[0]
    assert first["payload"] | {"custom_details": None} == {
        "summary": "[TS20261122001] /var is 96.2% full on db-01 (critical at 95%)",
        "source": "db-01", "severity": "critical", "component": "var-disk",
        "group": "capacity", "class": "disk", "custom_details": None}
    details = first["payload"]["custom_details"]
    assert (details["ticket"], details["priority"], details["labels"]) == (
        "TS20261122001", "P1", {"env": "prod"})
    assert details["body"].startswith("Problem\n-------\n\n- Symptom: /var is 96.2% full")
    assert first["links"] == [{"href": VIEW.url, "text": "Patrol ticket TS20261122001"}]
    assert bodies[1]["payload"]["custom_details"]["note"] == "looking"
    assert bodies[2]["payload"]["severity"] == "error"
    assert bodies[3] == {"routing_key": ROUTING_KEY, "dedup_key": "patrol-TS20261122001",
                         "event_action": "resolve"}


def test_pagerduty_pages_only_p1_p2_but_always_resolves(receiver) -> None:
    pd = pagerduty(receiver)
    low = replace(VIEW, priority="P3", severity="warning")
    ref = pd.open(low, DEST)
    pd.comment(ref, "x", low)
    assert receiver.requests == [] and ref.id == "patrol-TS20261122001"
    pd.set_priority(ref, replace(low, priority="P2"), DEST)  # escalated: pages now
    pd.resolve(ref, "", replace(low, priority="P3"), DEST)
    assert [r["body"]["event_action"] for r in receiver.requests] == ["trigger", "resolve"]
    pagerduty(receiver, min_priority="P4").open(low, DEST)
    assert len(receiver.requests) == 3


def test_pagerduty_summary_is_cut_to_1024_characters(receiver) -> None:
    pagerduty(receiver).open(replace(VIEW, title="x" * 2000, severity="bogus"), DEST)
    payload = receiver.requests[0]["body"]["payload"]
    assert len(payload["summary"]) == 1024 and payload["summary"].endswith("…")
    assert payload["severity"] == "error"


@pytest.mark.parametrize(("script", "error", "status", "retry_after"), [
    ([(429, {"Retry-After": "30"}, b'{"status":"throttle event"}')], TemporaryError, 429, 30.0),
    ([(500, {}, b"oops")], TemporaryError, 500, None),
    ([(202, {"Content-Type": "application/json"}, b'{"status":"queued?"}')], PermanentError,
     None, None),
], ids=["throttled-429", "server-error", "not-success"])
def test_pagerduty_error_mapping(receiver, script, error, status, retry_after) -> None:
    receiver.script = list(script)
    with pytest.raises(error) as caught:
        pagerduty(receiver).open(VIEW, DEST)
    assert type(caught.value) is error and caught.value.status == status
    if error is TemporaryError:
        assert caught.value.retry_after == retry_after


def test_pagerduty_invalid_key_is_refused_with_the_vendors_reason(receiver) -> None:
    with pytest.raises(PermanentError, match="routing_key must be a 32 character string") as e:
        hook(preset="pagerduty", url=receiver.url("/v2/enqueue"), routing_key="short").open(
            VIEW, DEST)
    assert e.value.status == 400


def test_connection_refused_is_temporary() -> None:
    with pytest.raises(TemporaryError, match="cannot connect"):
        hook(preset="slack", url=f"http://127.0.0.1:{free_port()}/services/T/B/X").open(
            VIEW, DEST)


def test_dingtalk_signed_markdown(receiver) -> None:
    ding = hook(preset="dingtalk", url=receiver.url("/robot/send?access_token=dtoken"),
                secret=DING_SECRET)
    ding.open(VIEW, DEST)
    ding.resolve(ExternalRef("hook", "x"), "verified **fixed**", VIEW, DEST)
    first, second = receiver.requests
    assert first["query"]["access_token"] == "dtoken"
    assert first["query"]["sign"] == dingtalk_sign(DING_SECRET, int(first["query"]["timestamp"]))
    assert first["body"] == {"msgtype": "markdown", "markdown": {
        "title": "Opened: [TS20261122001] /var is 96.2% full on db-01 (critical at 95%)",
        "text": "**Opened: [TS20261122001] /var is 96.2% full on db-01 (critical at 95%)**\n\n"
                "P1 · critical · db-01 · capacity\n\n"
                f"[Open TS20261122001 in Patrol]({VIEW.url})"}}
    assert "\n\nverified fixed\n\n" in second["body"]["markdown"]["text"]


@pytest.mark.parametrize(("secret", "url", "error", "words"), [
    ("SECwrong", "/robot/send?access_token=dtoken", PermanentError, "310000 sign not match"),
    (DING_SECRET, "/robot/send?access_token=nope", PermanentError, "300001"),
], ids=["wrong-secret", "unknown-token"])
def test_dingtalk_refusals(receiver, secret, url, error, words) -> None:
    with pytest.raises(error, match=words):
        hook(preset="dingtalk", url=receiver.url(url), secret=secret).open(VIEW, DEST)


def test_dingtalk_rate_limit_is_temporary(receiver) -> None:
    receiver.script = [(200, {}, b'{"errcode":130101,"errmsg":"send too fast"}')]
    with pytest.raises(TemporaryError, match="130101 send too fast") as caught:
        hook(preset="dingtalk", url=receiver.url("/robot/send?access_token=dtoken"),
             secret=DING_SECRET).open(VIEW, DEST)
    assert caught.value.retry_after == 60.0


def test_wecom_markdown_is_cut_to_4096_bytes(receiver) -> None:
    wecom = hook(preset="wecom", url=receiver.url("/cgi-bin/webhook/send?key=wkey"))
    wecom.comment(ExternalRef("hook", "x"), "磁盘已满" * 2000, VIEW)
    content = receiver.requests[0]["body"]["markdown"]["content"]
    assert 4000 < len(content.encode()) <= 4096 and content.startswith("**Comment: [TS2026")
    with pytest.raises(PermanentError, match="93000 invalid webhook url"):
        hook(preset="wecom", url=receiver.url("/cgi-bin/webhook/send?key=bad")).open(VIEW, DEST)


def test_feishu_signed_card(receiver) -> None:
    url = receiver.url("/open-apis/bot/v2/hook/abc")
    hook(preset="feishu", url=url, secret=FEISHU_SECRET).open(VIEW, DEST)
    body = receiver.requests[0]["body"]
    assert body["sign"] == feishu_sign(FEISHU_SECRET, int(body["timestamp"]))
    assert body["msg_type"] == "interactive"
    assert body["card"]["header"] == {"title": {"tag": "plain_text", "content": (
        "Opened: [TS20261122001] /var is 96.2% full on db-01 (critical at 95%)")},
        "template": "red"}
    assert body["card"]["elements"][0]["text"]["tag"] == "lark_md"
    with pytest.raises(PermanentError, match="19021"):
        hook(preset="feishu", url=url, secret="wrong").open(VIEW, DEST)


def test_slack_blocks_and_statuses(receiver) -> None:
    url = receiver.url("/services/T0/B0/XX")
    hook(preset="slack", url=url).comment(ExternalRef("hook", "x"), "a <b> & c", VIEW)
    body = receiver.requests[0]["body"]
    assert body["text"] == "Comment: [TS20261122001] /var is 96.2% full on db-01 (critical at 95%)"
    assert body["blocks"][1]["text"] == {"type": "mrkdwn", "text": (
        "*P1 · critical · db-01 · capacity*\na &lt;b&gt; &amp; c\n"
        f"<{VIEW.url}|Open TS20261122001 in Patrol>")}
    receiver.script = [(429, {"Retry-After": "7"}, b"rate_limited")]
    with pytest.raises(TemporaryError) as caught:
        hook(preset="slack", url=url).open(VIEW, DEST)
    assert caught.value.retry_after == 7.0
    with pytest.raises(PermanentError, match="404: no_service"):
        hook(preset="slack", url=receiver.url("/nowhere")).open(VIEW, DEST)


def test_chat_robots_post_p1_p2_by_default(receiver) -> None:
    slack = hook(preset="slack", url=receiver.url("/services/T/B/X"))
    slack.open(replace(VIEW, priority="P3"), DEST)
    slack.resolve(ExternalRef("hook", "x"), "", replace(VIEW, priority="P3"), DEST)
    assert receiver.requests == []
    slack.set_priority(ExternalRef("hook", "x"), replace(VIEW, priority="P2"), DEST)
    assert len(receiver.requests) == 1
    assert slack.find(VIEW.fingerprint, DEST) is None


def test_generic_template_fills_typed_values_and_secret_headers(receiver) -> None:
    generic = hook(url=receiver.url("/generic"), method="PUT",
                   headers={"Authorization": "Bearer t0ken"},
                   template={"id": "{number}", "subject": "[{number}] {title} ({labels[env]})",
                             "labels": "{labels}", "due": "{respond_by}",
                             "due_iso": "{respond_by_iso}", "braces": "{{literal}}",
                             "team": "{team}", "list": ["{action}", 1, None]})
    ref = generic.open(VIEW, Destination("hook", team="dba"))
    assert ref == ExternalRef("hook", "patrol-TS20261122001", VIEW.url)
    [request] = receiver.requests
    assert request["method"] == "PUT"
    assert request["headers"]["Authorization"] == "Bearer t0ken"
    assert request["body"] == {
        "id": "TS20261122001", "subject": f"[TS20261122001] {VIEW.title} (prod)",
        "labels": {"env": "prod"}, "due": 1700000000.0, "due_iso": "2023-11-14T22:13:20Z",
        "braces": "{literal}", "team": "dba", "list": ["open", 1, None]}
    generic.set_priority(ref, replace(VIEW, priority="P4"), DEST)  # generic: every ticket
    assert len(receiver.requests) == 2


@pytest.mark.parametrize(("raw", "message"), [
    ({"url": "http://x", "template": {"a": ["{titel}"]}},
     "template.a[0]: unknown placeholder '{titel}'; did you mean '{title}'?"),
    ({"url": "http://x", "template": "{title"}, "template: expected '}' before end of string"),
    ({"url": "http://x", "template": "{host.name}"}, "'{host.name}': only {labels[name]}"),
    ({"url": "http://x"}, "set a template, or a preset"),
    ({"preset": "pagerduty"}, "preset pagerduty needs routing_key"),
    ({"preset": "slack", "url": "http://x", "secret": "s"}, "secret (request signing) applies"),
    ({"preset": "slack", "url": "http://x", "template": "{title}"},
     "template and preset 'slack' exclude each other"),
    ({"preset": "teams", "url": "http://x"}, "Input should be 'pagerduty', 'dingtalk'"),
], ids=["unknown-placeholder", "unclosed-brace", "attribute", "nothing-to-send",
        "pagerduty-without-key", "secret-for-slack", "template-and-preset", "unknown-preset"])
def test_config_errors(raw, message) -> None:
    with pytest.raises(ValidationError) as caught:
        Webhook.Config.model_validate({"type": "webhook", **raw})
    assert message in str(caught.value)


def test_secrets_never_show_in_the_config_repr() -> None:
    config = Webhook.Config.model_validate({"type": "webhook", "preset": "pagerduty",
                                            "routing_key": ROUTING_KEY,
                                            "headers": {"X-Token": "t0ken"}})
    assert ROUTING_KEY not in repr(config) and "t0ken" not in repr(config)
