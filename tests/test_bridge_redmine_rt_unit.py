"""Redmine and RT adapters against a recording transport: the exact requests they send,
and the answers a real server cannot be made to give on demand (429, 503)."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from requests.adapters import BaseAdapter

from patrol.ticketing_bridge.protocol import Destination, PermanentError, TemporaryError
from patrol.ticketing_bridge.redmine import Redmine
from patrol.ticketing_bridge.rt import RequestTracker

DEST = Destination("hd")


class Canned(BaseAdapter):
    """Answers every request with the next canned (status, body, headers); records them."""

    def __init__(self, *answers: tuple[int, object, dict[str, str]]) -> None:
        super().__init__()
        self.answers, self.sent = list(answers), []

    def send(self, request, **kwargs):  # type: ignore[no-untyped-def]
        self.sent.append(request)
        status, body, headers = self.answers.pop(0)
        response = requests.Response()
        response.status_code, response.headers = status, requests.structures.CaseInsensitiveDict(
            headers)
        response._content = json.dumps(body).encode() if body is not None else b""
        response.url, response.request = request.url, request
        return response

    def close(self) -> None:
        pass


def session(*answers: tuple[int, object, dict[str, str]]) -> tuple[requests.Session, Canned]:
    s, canned = requests.Session(), Canned(*answers)
    s.mount("http://", canned)
    return s, canned


def redmine(*answers: tuple[int, object, dict[str, str]]) -> tuple[Redmine, Canned]:
    s, canned = session(*answers)
    return Redmine({"type": "redmine", "url": "http://rm.test", "api_key": "K" * 40,
                    "project": "monitoring", "fingerprint_field": 7}, "hd", s), canned


def rt(*answers: tuple[int, object, dict[str, str]]) -> tuple[RequestTracker, Canned]:
    s, canned = session(*answers)
    return RequestTracker({"type": "rt", "url": "http://rt.test/rt", "token": "1-2-abc"},
                          "hd", s), canned


PROJECT = (200, {"project": {"id": 3, "identifier": "monitoring", "trackers": []}}, {})
QUEUE = (200, {"TicketCustomFields": [{"name": "Alert fingerprint"}]}, {})


def test_redmine_find_uses_the_full_filter_syntax() -> None:
    adapter, canned = redmine(PROJECT, (200, {"issues": [
        {"id": 9, "custom_fields": [{"id": 7, "value": "A|b"}]},
        {"id": 8, "custom_fields": [{"id": 7, "value": "!a|b"}]}]}, {}))
    assert adapter.find("!a|b", DEST).id == "8"  # the exact value, not the case-folded match
    sent = canned.sent[1]
    assert sent.headers["X-Redmine-API-Key"] == "K" * 40
    assert urlsplit(sent.url).path == "/issues.json"
    assert parse_qsl(urlsplit(sent.url).query) == [
        ("project_id", "3"), ("sort", "id:desc"), ("limit", "25"),
        ("f[]", "status_id"), ("op[status_id]", "o"),
        ("f[]", "cf_7"), ("op[cf_7]", "="), ("v[cf_7][]", "!a|b")]


def test_rt_find_sends_escaped_ticketsql() -> None:
    adapter, canned = rt(QUEUE, (200, {"items": [{"id": "12"}]}, {}))
    ref = adapter.find("it's\\x", DEST)
    assert (ref.id, ref.url) == ("12", "http://rt.test/rt/Ticket/Display.html?id=12")
    sent = canned.sent[1]
    assert sent.headers["Authorization"] == "token 1-2-abc"
    assert urlsplit(sent.url).path == "/rt/REST/2.0/tickets"
    assert dict(parse_qsl(urlsplit(sent.url).query))["query"] == (
        "Queue = 'Monitoring' AND 'CF.{Alert fingerprint}' = 'it\\'s\\\\x' "
        "AND Status = '__Active__'")


@pytest.mark.parametrize("make", [redmine, rt], ids=["redmine", "rt"])
def test_429_retry_after_is_temporary_with_the_wait(make) -> None:  # type: ignore[no-untyped-def]
    adapter, _ = make((429, {"message": "slow down"}, {"Retry-After": "30"}))
    with pytest.raises(TemporaryError) as caught:
        adapter.status(adapter._ref("5"))
    assert (caught.value.status, caught.value.retry_after) == (429, 30.0)


@pytest.mark.parametrize("make", [redmine, rt], ids=["redmine", "rt"])
def test_5xx_is_temporary(make) -> None:  # type: ignore[no-untyped-def]
    adapter, _ = make((503, None, {}))
    with pytest.raises(TemporaryError) as caught:
        adapter.status(adapter._ref("5"))
    assert caught.value.status == 503


def test_rt_fingerprint_field_missing_on_queue_is_permanent() -> None:
    adapter, _ = rt((200, {"TicketCustomFields": [{"name": "Other"}]}, {}))
    with pytest.raises(PermanentError, match="'Alert fingerprint' is not applied to RT queue "
                                             "'Monitoring' \\(it has: Other\\)"):
        adapter.find("x", DEST)
