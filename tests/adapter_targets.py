"""Helpdesks to run the adapter contract against, one per built-in adapter, in the
shape plugins supply theirs (``tests/test_adapter_contract.py``).

A plugin names a function in the ``patrol.ticketing_targets`` entry-point group (see
``ticketing_bridge/registry.py``): it takes an :class:`AdapterLab` and returns a context
manager that yields the target as a mapping of :class:`AdapterTarget`'s fields (or an
object with them), its helpdesk running until the block ends. The built-ins' targets
are here because Patrol does not ship its test servers:

- Redmine and Request Tracker: the REAL servers of ``tests/helpdesk_servers.py``;
- Jira Cloud, ServiceNow, Zendesk, Zammad, GLPI: the fakes of ``tests/fakes/``, which
  check every request against the vendor's documented API;
- email: a real SMTP server (aiosmtpd with STARTTLS and AUTH, ``tests/smtp_server.py``);
- webhook: the helpdesk double (``tests/helpdesk_double.py``), in this process.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from patrol.ticketing_bridge.protocol import ExternalRef
from tests.conftest import free_port, unavailable
from tests.fakes import FakeServer, fake_server


@dataclass(frozen=True)
class AdapterLab:
    """What the suite offers a target: a scratch folder, and (for Patrol's own targets)
    the suite's fixtures, such as the session's real Redmine."""

    directory: Path
    request: pytest.FixtureRequest

    def fixture(self, name: str) -> Any:
        return self.request.getfixturevalue(name)


@dataclass(frozen=True)
class AdapterTarget:
    """One helpdesk an adapter runs against, and how to look at it as a person would.

    ``texts(ref)``: everything a person reads on the ticket (subject, description,
    notes, messages), in the helpdesk's own markup. ``searchable``: ``find`` returns
    the open ticket (False: the helpdesk cannot be searched and ``find`` is always None,
    as the email adapter documents). ``reads_back``: ``status`` follows the ticket
    (False: it always answers ``open``). ``assign(ref)`` takes the ticket in the
    helpdesk as an agent would; ``priority_of(ref)`` reads its priority field, which
    for a P1 ticket is ``p1``. ``refuse()`` / ``overload()`` make the helpdesk refuse
    for good / fail for now and return the settings changes that go with it;
    ``unreachable``: settings changes under which no helpdesk answers. None where a
    helpdesk cannot be made to do that (the test says so as a skip).
    """

    settings: Mapping[str, Any]  # the ``helpdesks:`` entry, ``type`` included
    texts: Callable[[ExternalRef], list[str]]
    destination: Mapping[str, Any] = field(default_factory=dict)  # project, team...
    searchable: bool = True
    reads_back: bool = True
    assign: Callable[[ExternalRef], None] | None = None
    priority_of: Callable[[ExternalRef], Any] | None = None
    p1: Any = None
    refuse: Callable[[], Mapping[str, Any]] | None = None
    overload: Callable[[], Mapping[str, Any]] | None = None
    unreachable: Mapping[str, Any] | None = None


Target = Callable[[AdapterLab], AbstractContextManager[Any]]


def _nowhere() -> dict[str, str]:
    return {"url": f"http://127.0.0.1:{free_port()}"}


def _bodies(fake: FakeServer) -> Callable[[ExternalRef], list[str]]:
    """What reached the fake vendor (it rejects any request off its documented API)."""
    return lambda ref: [json.dumps(r.body) for r in fake.requests if r.body is not None]


def _failing(fake: FakeServer, status: int) -> Callable[[], Mapping[str, Any]]:
    def arm() -> Mapping[str, Any]:
        fake.fail_next(status, {"error": "injected by the contract suite"})
        return {}
    return arm


# --- the SaaS helpdesks, as vendor-faithful fakes ------------------------------------


@contextmanager
def zendesk(lab: AdapterLab) -> Iterator[AdapterTarget]:
    from tests.fakes.zendesk import FakeZendesk

    with fake_server(FakeZendesk()) as fake:
        yield AdapterTarget(
            {"type": "zendesk", "url": fake.url, "email": fake.email, "token": fake.token},
            _bodies(fake), {"team": "360001"}, assign=lambda r: fake.assign(r.id),
            priority_of=lambda r: fake.tickets[int(r.id)]["priority"], p1="urgent",
            refuse=lambda: {"token": "wrong"}, overload=_failing(fake, 503),
            unreachable=_nowhere())


@contextmanager
def jira(lab: AdapterLab) -> Iterator[AdapterTarget]:
    from tests.fakes.jira import FakeJira

    with fake_server(FakeJira(api_version=3)) as fake:
        yield AdapterTarget(
            {"type": "jira", "url": fake.url, "api_version": 3, "email": fake.email,
             "token": fake.token},
            _bodies(fake), {"project": "OPS"}, assign=lambda r: fake.assign(r.id),
            priority_of=lambda r: fake.issues[r.id]["fields"]["priority"]["name"],
            p1="Highest", refuse=lambda: {"token": "wrong"}, overload=_failing(fake, 503),
            unreachable=_nowhere())


@contextmanager
def servicenow(lab: AdapterLab) -> Iterator[AdapterTarget]:
    from tests.fakes.servicenow import FakeServiceNow

    with fake_server(FakeServiceNow()) as fake:
        yield AdapterTarget(
            {"type": "servicenow", "url": fake.url, "username": fake.username,
             "password": fake.password},
            _bodies(fake), {"team": "Database Team"}, assign=lambda r: fake.assign(r.id),
            priority_of=lambda r: fake.tables["incident"][r.id]["priority"], p1="1",
            refuse=lambda: {"password": "wrong"}, overload=_failing(fake, 503),
            unreachable=_nowhere())


@contextmanager
def zammad(lab: AdapterLab) -> Iterator[AdapterTarget]:
    from tests.fakes.zammad import FakeZammad

    with fake_server(FakeZammad()) as fake:
        yield AdapterTarget(
            {"type": "zammad", "url": fake.url, "token": fake.token,
             "customer": "monitoring@example.com"},
            _bodies(fake), {"team": "Operations"}, assign=lambda r: fake.assign(r.id),
            priority_of=lambda r: fake.tickets[int(r.id)]["priority_id"], p1=3,
            refuse=lambda: {"token": "wrong"}, overload=_failing(fake, 503),
            unreachable=_nowhere())


@contextmanager
def glpi(lab: AdapterLab) -> Iterator[AdapterTarget]:
    from tests.fakes.glpi import FakeGlpi

    with fake_server(FakeGlpi()) as fake:
        yield AdapterTarget(
            {"type": "glpi", "url": fake.url, "user_token": fake.user_token,
             "app_token": fake.app_token},
            _bodies(fake), {"project": "3"}, assign=lambda r: fake.assign(r.id),
            priority_of=lambda r: fake.tickets[int(r.id)]["priority"], p1=5,
            refuse=lambda: {"user_token": "wrong"}, overload=_failing(fake, 503),
            unreachable=_nowhere())


# --- the real servers on this machine ------------------------------------------------


@contextmanager
def _balancer_without_backends() -> Iterator[str]:
    """The URL of a load balancer in front of a real helpdesk whose backends are all
    down: every request answers 503, as nginx does then."""

    class Unavailable(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            page = b"<h1>503 Service Unavailable</h1>\n"
            self.send_response(503)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        do_GET = do_POST = do_PUT = do_PATCH = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def redmine(lab: AdapterLab) -> Iterator[AdapterTarget]:
    server = lab.fixture("redmine_server")
    headers = {"X-Redmine-API-Key": server.token}

    def issue(ref: ExternalRef) -> dict[str, Any]:
        reply = requests.get(f"{server.url}/issues/{ref.id}.json", headers=headers,
                             params={"include": "journals"}, timeout=10)
        reply.raise_for_status()
        return reply.json()["issue"]

    def texts(ref: ExternalRef) -> list[str]:
        found = issue(ref)
        return [found["subject"], found["description"],
                *(j["notes"] for j in found["journals"] if j["notes"])]

    def assign(ref: ExternalRef) -> None:
        reply = requests.put(f"{server.url}/issues/{ref.id}.json", headers=headers,
                             json={"issue": {"assigned_to_id": 1}}, timeout=10)
        assert reply.status_code == 204, reply.text

    with _balancer_without_backends() as balancer:
        yield AdapterTarget(
            {"type": "redmine", "url": server.url, "api_key": server.token,
             "project": "monitoring"},
            texts, assign=assign, priority_of=lambda r: issue(r)["priority"]["name"],
            p1="Immediate", refuse=lambda: {"api_key": "0" * 40},
            overload=lambda: {"url": balancer}, unreachable=_nowhere())


@contextmanager
def rt(lab: AdapterLab) -> Iterator[AdapterTarget]:
    server = lab.fixture("rt_server")
    headers = {"Authorization": f"token {server.token}"}

    def call(method: str, path: str, **kwargs: Any) -> Any:
        reply = requests.request(method, f"{server.url}/REST/2.0/{path}", headers=headers,
                                 timeout=20, **kwargs)
        assert reply.status_code in (200, 201), reply.text
        return reply.json()

    def texts(ref: ExternalRef) -> list[str]:
        parts = call("GET", f"ticket/{ref.id}/attachments",
                     params={"fields": "Subject,Content"})["items"]
        return [call("GET", f"ticket/{ref.id}")["Subject"],
                *(p.get("Content") or "" for p in parts)]

    with _balancer_without_backends() as balancer:
        yield AdapterTarget(
            {"type": "rt", "url": server.url, "token": server.token}, texts,
            assign=lambda r: call("PUT", f"ticket/{r.id}", json={"Owner": "root"}),
            priority_of=lambda r: call("GET", f"ticket/{r.id}")["Priority"], p1="90",
            refuse=lambda: {"token": "1-14-0123456789abcdef0123456789abcdef"},
            overload=lambda: {"url": balancer}, unreachable=_nowhere())


# --- email and webhook ---------------------------------------------------------------


@contextmanager
def email(lab: AdapterLab) -> Iterator[AdapterTarget]:
    try:
        from tests.smtp_server import start_smtp
    except ImportError:
        unavailable("aiosmtpd is not installed (pip install aiosmtpd)")
    server = start_smtp(lab.directory)

    def texts(ref: ExternalRef) -> list[str]:
        out = []
        for received in server.messages:
            message = received.message
            if ref.id in (str(message["Message-ID"]), *str(message["References"] or "").split()):
                plain = message.get_body(("plain",))
                out += [str(message["Subject"]), plain.get_content() if plain else ""]
        return out

    def overload() -> Mapping[str, Any]:
        server.recorder.reject_data = "451 4.3.0 Mail server temporarily rejected message"
        return {}

    try:
        yield AdapterTarget(
            {"type": "email", "host": server.host, "port": server.port,
             "ca_file": str(server.ca_file), "username": "patrol", "password": "s3cret",
             "from": "patrol@example.com", "to": ["ops@example.com"]},
            texts, searchable=False, reads_back=False,
            refuse=lambda: {"password": "wrong"}, overload=overload,
            unreachable={"port": free_port()})
    finally:
        server.stop()


@contextmanager
def webhook(lab: AdapterLab) -> Iterator[AdapterTarget]:
    from tests.helpdesk_double import Desk, Handler, read_journal

    journal = lab.directory / "helpdesk-journal.jsonl"
    desk = Desk(journal, idempotent=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 type("BoundHandler", (Handler,), {"desk": desk}))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"

    def texts(ref: ExternalRef) -> list[str]:
        return [e["text"] for e in read_journal(journal) if e["ticket"] == ref.id]

    def failing(status: int) -> Callable[[], Mapping[str, Any]]:
        return lambda: desk.configure({"fail": {"count": 1, "status": status}}) or {}

    try:
        yield AdapterTarget(
            {"type": "webhook", "url": f"{url}/hook",
             "template": {"action": "{action}", "fingerprint": "{fingerprint}",
                          "number": "{number}", "text": "{title} | {priority} | {text}"}},
            texts, searchable=False, reads_back=False,
            refuse=failing(403), overload=failing(503), unreachable=_nowhere())
    finally:
        server.shutdown()
        server.server_close()


BUILTIN: dict[str, Target] = {
    "redmine": redmine, "rt": rt, "jira": jira, "servicenow": servicenow,
    "zendesk": zendesk, "zammad": zammad, "glpi": glpi, "email": email, "webhook": webhook,
}
# Real servers: started once per session, seconds each (RT checks a bcrypt per request).
SLOW = {"redmine", "rt"}
