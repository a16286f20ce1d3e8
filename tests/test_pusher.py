"""The pusher against a real HTTP collector stand-in on 127.0.0.1.

The stand-in validates every payload with ``patrol.contract.wire``, is idempotent on
``event_id`` like the real collector, and can be told to answer 503, 429 with
``Retry-After``, 401, or to be down (port closed).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import ValidationError

from patrol.agent.delivery_metrics import DeliveryCollector
from patrol.agent.events import Emitter
from patrol.agent.identity import agent_id
from patrol.agent.outbox import Outbox
from patrol.agent.pusher import Pusher, Target, retry_after_seconds
from patrol.agent.state import CheckInfo, CheckView, StateTable, Transition
from patrol.checks.base import Result, Status
from patrol.checks.config import Sustain
from patrol.contract.wire import EventBatch, Heartbeat
from tests.certs import ServerCert, issue, make_ca
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "s3cret-token"
FAST = {"backoff_base": 0.05, "backoff_cap": 0.2}


class StandIn:
    """A collector double: records what it accepted, answers what it is told."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.script: list[tuple[int, dict[str, str]]] = []  # answers before the 2xx ones
        self.refuse: int | None = None  # answer this status to everything
        self.events: dict[str, dict] = {}  # event_id -> payload, first delivery
        self.order: list[str] = []
        self.posts: Counter[str] = Counter()  # event_id -> times received
        self.heartbeats: list[Heartbeat] = []
        self.requests: list[tuple[float, str, int]] = []  # (monotonic, path, status)
        self.cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None

    def up(self, tls: ServerCert | None = None) -> StandIn:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls.cert_path, tls.key_path)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.url = f"https://127.0.0.1:{self.port}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait(self, predicate, timeout: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout)

    def _answer(self, path: str, body: bytes, auth: str | None) -> tuple[int, dict, str]:
        if self.script:
            status, headers = self.script.pop(0)
            return status, headers, "try later"
        if self.refuse is not None:
            return self.refuse, {}, '{"detail": "invalid token for agent"}'
        if auth != f"Bearer {TOKEN}":
            return 401, {}, "no token"
        try:
            if path == "/api/v1/events":
                for event in EventBatch.model_validate_json(body).events:
                    self.posts[event.event_id] += 1
                    if event.event_id not in self.events:  # idempotent on event_id
                        self.events[event.event_id] = event.model_dump(mode="json")
                        self.order.append(event.event_id)
            elif path == "/api/v1/heartbeats":
                self.heartbeats.append(Heartbeat.model_validate_json(body))
            else:
                return 404, {}, "no such path"
        except ValidationError as exc:
            return 422, {}, exc.json()[:2000]
        return 202, {}, '{"accepted": true}'

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with stand_in.cond:
                    status, headers, text = stand_in._answer(
                        self.path, body, self.headers.get("Authorization"))
                    stand_in.requests.append((time.monotonic(), self.path, status))
                    stand_in.cond.notify_all()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text.encode())

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def sequences(self) -> list[int]:
        return [self.events[i]["sequence"] for i in self.order]


def eventually(predicate, timeout: float = 2.0) -> bool:
    """Poll: the agent acknowledges a row just after the stand-in has recorded it."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def drained(outbox: Outbox) -> bool:
    return eventually(lambda: outbox.backlog().count == 0)


@pytest.fixture
def collector():
    stand_in = StandIn()
    yield stand_in
    stand_in.down()


@pytest.fixture
def make(tmp_path):
    """Outbox + emitter + pusher on tmp_path; everything started is stopped after."""
    made: list[tuple[Outbox, Pusher]] = []

    def make(*collectors: StandIn, token: str = TOKEN, state_dir: Path | None = None,
             ca_file: Path | None = None, **options) -> tuple[Outbox, Emitter, Pusher]:
        state = state_dir or tmp_path / "state"
        outbox = Outbox(state, [c.url for c in collectors])
        pusher = Pusher(outbox, [Target(c.url, token, ca_file) for c in collectors],
                        **{**FAST, **options})
        made.append((outbox, pusher))
        return outbox, Emitter(outbox, "web-01", {"env": "test"}, agent_id(state)), pusher

    yield make
    for outbox, pusher in made:
        pusher.stop()
        outbox.close()


def breach(emitter: Emitter, n: int = 0, status: Status = Status.CRITICAL):
    """Queue the event of check ``check-n`` changing hard state to ``status``."""
    info = CheckInfo(f"check-{n}", "tcp")
    view = CheckView(info, status, result=Result(status, f"port 5432 check {n} on web-01"))
    return emitter(view, Transition(info.name, Status.OK, status))


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_collector_ca_file_wins_over_a_ca_bundle_in_the_environment(
        collector, make, tmp_path, monkeypatch, variable):
    """Issue 9: with REQUESTS_CA_BUNDLE (or CURL_CA_BUNDLE) pointing at another bundle,
    the agent verified the collector against that one and ignored ``ca_file``: every
    delivery failed with a certificate error."""
    ca = make_ca(tmp_path, "Collector CA")
    collector.up(tls=issue(ca, tmp_path))
    monkeypatch.setenv(variable, str(make_ca(tmp_path, "Unrelated CA").cert_path))
    outbox, emitter, pusher = make(collector, ca_file=ca.cert_path)
    pusher.start()
    for n in range(3):
        breach(emitter, n)
    assert collector.wait(lambda: len(collector.events) == 3)
    assert drained(outbox)
    assert pusher.failed == 0


@pytest.mark.slow
def test_event_reaches_a_live_collector_within_milliseconds(collector, make):
    collector.up()
    outbox, emitter, pusher = make(collector)
    pusher.start()
    time.sleep(0.05)  # the lanes are idle, waiting (60 s) for a put to wake them
    started = time.monotonic()
    breach(emitter)
    assert collector.wait(lambda: collector.order, timeout=2)
    assert collector.requests[0][0] - started < 0.25
    assert collector.sequences() == [1]
    assert drained(outbox)
    assert pusher.delivered == 1


@pytest.mark.slow
def test_outage_delays_events_then_delivers_all_in_order_exactly_once(collector, make):
    outbox, emitter, pusher = make(collector)  # collector not up: port closed
    pusher.start()
    for n in range(30):
        breach(emitter, n, Status.CRITICAL if n % 2 else Status.WARNING)
    time.sleep(0.3)
    assert outbox.backlog().count == 30 and pusher.failed > 0
    collector.up()
    assert collector.wait(lambda: len(collector.order) == 30)
    assert collector.sequences() == list(range(1, 31))
    assert set(collector.posts.values()) == {1}
    assert drained(outbox) and pusher.delivered == 30


@pytest.mark.slow
def test_retry_after_is_honoured(collector, make):
    collector.script = [(429, {"Retry-After": "1"})]
    collector.up()
    _, emitter, pusher = make(collector)
    pusher.start()
    breach(emitter)
    assert collector.wait(lambda: collector.order, timeout=4)
    (first, _, refused), (second, _, accepted) = collector.requests
    assert (refused, accepted) == (429, 202)
    assert 1.0 <= second - first < 1.5  # not the 0.05 s backoff, not much more either


@pytest.mark.slow
def test_server_errors_back_off_exponentially_then_deliver(collector, make):
    collector.script = [(503, {}), (503, {}), (503, {})]
    collector.up()
    outbox, emitter, pusher = make(collector, backoff_base=0.1, backoff_cap=10.0,
                                   rng=lambda: 1.0)
    pusher.start()
    breach(emitter)
    assert collector.wait(lambda: collector.order, timeout=4)
    times = [t for t, _, _ in collector.requests]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) == 3
    assert all(want <= gap < want + 0.08 for gap, want in zip(gaps, [0.1, 0.2, 0.4],
                                                              strict=True)), gaps
    assert pusher.failed == 3 and drained(outbox)


@pytest.mark.slow
@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_is_retried_with_backoff_and_logged_once(collector, make, caplog,
                                                                  status):
    collector.refuse = status
    collector.up()
    outbox, emitter, pusher = make(collector)
    for n in range(3):
        breach(emitter, n)
    with caplog.at_level(logging.ERROR, logger="patrol.pusher"):
        pusher.start()
        assert collector.wait(lambda: len(collector.requests) >= 3)  # tried again
    assert {s for _, _, s in collector.requests} == {status}
    assert [(r.sequence, r.dead) for r in outbox.rows(collector.url)
            if r.kind == "event"] == [(1, False), (2, False), (3, False)]
    assert pusher.dead_lettered == 0
    assert [r.getMessage() for r in caplog.records] == [
        f"collector {collector.url}/api/v1/events refuses this agent's token with HTTP "
        f'{status}: {{"detail": "invalid token for agent"}}; retrying with backoff until '
        "the token is fixed on either side (nothing is dropped meanwhile)"]
    # Once the token is fixed, everything queued arrives, in order, with no operator.
    collector.refuse = None
    assert collector.wait(lambda: len(collector.order) == 3)
    assert collector.sequences() == [1, 2, 3]
    assert drained(outbox)


@pytest.mark.slow
def test_one_malformed_event_in_a_batch_is_dead_lettered_alone(collector, make):
    collector.up()
    outbox, emitter, pusher = make(collector)
    breach(emitter, 0)
    outbox.put("event", {"event_id": "broken-event", "sequence": 2}, "broken-event")
    outbox.next_sequence()
    breach(emitter, 2)
    pusher.start()
    assert collector.wait(lambda: len(collector.order) == 2)
    assert collector.sequences() == [1, 3]
    assert eventually(lambda: len(outbox.rows()) == 1)
    assert [(r.key, r.dead) for r in outbox.rows()] == [("broken-event", True)]
    assert "Field required" in outbox.rows()[0].last_error
    registry = CollectorRegistry()
    registry.register(DeliveryCollector(lambda: pusher))
    exposed = generate_latest(registry).decode().splitlines()
    assert "patrol_outbox_dead_lettered_total 1.0" in exposed
    assert 'patrol_outbox_events{kind="event",state="dead"} 1.0' in exposed


@pytest.mark.slow
def test_heartbeats_coalesce_while_the_collector_is_down(collector, make):
    outbox, emitter, pusher = make(collector)
    pusher.start()
    for n in range(20):
        info = CheckInfo("disk", "disk")
        emitter.heartbeat([CheckView(info, result=Result(Status.OK, f"run {n}"))], 30.0)
    time.sleep(0.2)
    assert outbox.counts()[("heartbeat", "pending")] == 1
    collector.up()
    assert collector.wait(lambda: collector.heartbeats)
    time.sleep(0.3)
    assert [h.checks[0].summary for h in collector.heartbeats] == ["run 19"]


@pytest.mark.slow
def test_heartbeat_carries_the_table_every_interval(collector, make):
    collector.up()
    table = StateTable([CheckInfo("disk", "disk"), CheckInfo("cpu", "cpu")])
    table.record("cpu", Result(Status.CRITICAL, "CPU 99% busy on web-01"), Sustain(count=1),
                 time.time(), 0.1)
    holder: dict[str, Emitter] = {}
    _, emitter, pusher = make(
        collector, heartbeat_interval=0.2,
        heartbeat=lambda: holder["emitter"].heartbeat(table.snapshot(), 0.2))
    holder["emitter"] = emitter
    pusher.start()
    assert collector.wait(lambda: len(collector.heartbeats) >= 3, timeout=2)
    beat = collector.heartbeats[-1]
    assert [(c.check, c.status) for c in beat.checks] == [("disk", "OK"), ("cpu", "CRITICAL")]
    assert beat.source == "web-01" and beat.interval_seconds == 0.2
    times = [t for t, path, _ in collector.requests if path == "/api/v1/heartbeats"]
    assert all(0.15 < b - a < 0.4 for a, b in itertools.pairwise(times))


@pytest.mark.slow
def test_each_collector_gets_every_event_even_when_one_is_down(make):
    live, dead = StandIn().up(), StandIn()
    try:
        outbox, emitter, pusher = make(live, dead)
        pusher.start()
        for n in range(5):
            breach(emitter, n)
        assert live.wait(lambda: len(live.order) == 5, timeout=2)
        assert outbox.backlog(dead.url).count == 5
        dead.up()
        assert dead.wait(lambda: len(dead.order) == 5)
        assert dead.sequences() == live.sequences() == [1, 2, 3, 4, 5]
    finally:
        live.down()
        dead.down()


@pytest.mark.slow
def test_stop_gives_up_on_a_hung_collector_within_two_seconds(make):
    hung = socket.socket()  # accepts connections (the kernel does), never answers
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)
    stand_in = StandIn()
    stand_in.url = f"http://127.0.0.1:{hung.getsockname()[1]}"
    try:
        outbox, emitter, pusher = make(stand_in)
        pusher.start()
        breach(emitter)
        time.sleep(0.2)  # the POST is now waiting for an answer (read timeout 10 s)
        started = time.monotonic()
        pusher.stop()
        assert time.monotonic() - started < 2.3
        assert outbox.backlog().count == 1  # not acknowledged, so kept for next time
    finally:
        hung.close()


_KILLED_AGENT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from patrol.agent.events import Emitter
    from patrol.agent.identity import agent_id
    from patrol.agent.outbox import Outbox
    from patrol.agent.pusher import Pusher, Target
    from patrol.agent.state import CheckInfo, CheckView, Transition
    from patrol.checks.base import Result, Status

    state, url = Path(sys.argv[1]), sys.argv[2]
    outbox = Outbox(state, [url])
    Pusher(outbox, [Target(url, "s3cret-token")], backoff_base=0.05).start()
    emitter = Emitter(outbox, "web-01", {}, agent_id(state))
    for n in range(50):
        status = Status.CRITICAL if n % 2 == 0 else Status.OK
        info = CheckInfo("db", "postgres")
        view = CheckView(info, status, result=Result(status, f"run {n} on web-01"))
        emitter(view, Transition("db", Status.OK if status else Status.CRITICAL, status))
    print("queued", flush=True)
    time.sleep(60)
""")


@pytest.mark.slow
def test_events_survive_sigkill_and_sequence_continues(collector, make, tmp_path):
    state = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_AGENT, str(state), collector.url],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        assert proc.stdout.readline().strip() == "queued"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    identity = agent_id(state)
    collector.up()
    outbox, emitter, pusher = make(collector, state_dir=state)
    assert outbox.backlog().count == 50
    pusher.start()
    assert collector.wait(lambda: len(collector.order) == 50)
    assert collector.sequences() == list(range(1, 51))
    assert [collector.events[i]["action"] for i in collector.order[:2]] == ["trigger",
                                                                            "resolve"]
    assert {collector.events[i]["agent"]["id"] for i in collector.order} == {identity}
    assert breach(emitter)["sequence"] == 51  # the queued JSON event


@pytest.mark.parametrize(("header", "expected"), [
    ("7", 7.0), ("100000", 600.0), (None, None), ("soon", None),
    ("Wed, 01 May 2024 12:00:30 GMT", 30.0),
], ids=["seconds", "capped", "absent", "garbage", "http-date"])
def test_retry_after_header_parsing(header, expected):
    assert retry_after_seconds(header, 1714564800.0) == expected


def test_target_name_ignores_a_trailing_slash():
    assert Target("https://c.example:8443/").name == "https://c.example:8443"
    assert json.dumps(Target("http://x").name) == '"http://x"'
