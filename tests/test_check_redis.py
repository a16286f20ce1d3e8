"""Redis clients check: exact parsing with an injected client, then the real Redis at
127.0.0.1:6379 with real named extra clients and a real BLPOP-blocked client."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import pytest
import redis

from patrol.checks.base import CheckError, Status
from patrol.contract.units import format_limit
from tests.conftest import free_port
from tests.helpers import build

SECRET = "Sup3r-S3cret-rd-77d0"
GiB = 1024**3


class FakeClient:
    def __init__(self, clients: dict[str, Any], memory: dict[str, Any]) -> None:
        self.sections = {"clients": clients, "memory": memory}
        self.closed = False

    def ping(self) -> bool:
        return True

    def info(self, section: str) -> dict[str, Any]:
        return self.sections[section]

    def config_get(self, name: str) -> dict[str, str]:
        return {"maxclients": "4064"}

    def close(self) -> None:
        self.closed = True


def _run(clients: dict[str, Any], memory: dict[str, Any], **options: Any) -> Any:
    fake = FakeClient(clients, memory)
    check, ctx = build("redis", url="redis://cache:6379/0",
                       world={"connect": lambda url, **kwargs: fake}, **options)
    result = check.run(ctx)
    assert fake.closed
    return result


@pytest.mark.parametrize(
    ("connected", "blocked", "options", "status", "summary"),
    [
        (100, 0, {}, Status.OK, "Redis clients 100/1000 (10%) on testhost"),
        (850, 2, {}, Status.WARNING,
         "Redis clients 850/1000 (85%) on testhost (warning at 80%); 2 blocked"),
        (950, 0, {}, Status.CRITICAL,
         "Redis clients 950/1000 (95%) on testhost (critical at 90%)"),
        (10, 3, {"thresholds": {"blocked_clients": {"warning": 1}}}, Status.WARNING,
         "Redis clients 10/1000 (1%) on testhost; 3 blocked (warning at 1)"),
    ],
    ids=["ok", "warning", "critical", "blocked-warning"],
)
def test_clients_against_maxclients(connected, blocked, options, status, summary) -> None:
    result = _run(
        {"connected_clients": connected, "maxclients": 1000, "blocked_clients": blocked},
        {"used_memory": 5 * 1024**2, "maxmemory": 0}, **options,
    )
    assert result.status is status
    assert result.summary == summary
    assert result.measurement("used_ratio") == pytest.approx(connected / 1000)
    assert result.measurement("connected_clients") == connected
    assert result.measurement("maxclients") == 1000
    assert result.measurement("blocked_clients") == blocked
    assert result.measurement("used_memory_bytes") == 5 * 1024**2
    assert result.measurement("maxmemory_bytes") == 0
    assert result.measurement("memory_used_ratio") is None  # no maxmemory: no ratio


@pytest.mark.parametrize(
    ("options", "status", "tail"),
    [
        ({}, Status.OK, "; memory 1.5 GiB of 2.0 GiB (75%, noeviction)"),
        ({"thresholds": {"memory_used_ratio": {"warning": "70%"}}}, Status.WARNING,
         "; memory 1.5 GiB of 2.0 GiB (75%, noeviction) (warning at 70%)"),
    ],
    ids=["no-default-threshold", "configured-warning"],
)
def test_memory_ratio_when_maxmemory_is_set(options, status, tail) -> None:
    result = _run(
        {"connected_clients": 5, "blocked_clients": 0},  # pre-7.0: maxclients via CONFIG GET
        {"used_memory": int(1.5 * GiB), "maxmemory": 2 * GiB, "maxmemory_policy": "noeviction"},
        **options,
    )
    assert result.status is status
    assert result.measurement("maxclients") == 4064
    assert result.measurement("memory_used_ratio") == pytest.approx(0.75)
    assert result.summary == f"Redis clients 5/4064 (0.12%) on testhost{tail}"


def test_malformed_url_is_unknown_without_the_password() -> None:
    check, ctx = build("redis", url=f"http://:{SECRET}@127.0.0.1:6379/0")
    with pytest.raises(CheckError) as caught:
        check.run(ctx)
    assert "redis://" in str(caught.value)  # redis-py says which schemes it accepts
    assert SECRET not in str(caught.value)


# -- against the real server ---------------------------------------------------------------


def test_closed_port_is_critical_and_hides_password() -> None:
    port = free_port()
    check, ctx = build("redis", url=f"redis://:{SECRET}@127.0.0.1:{port}/0", connect_timeout="2s")
    result = check.run(ctx)
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(f"cannot connect to Redis at 127.0.0.1:{port} on testhost: ")
    assert "Connection refused" in result.summary
    diagnosis = check.diagnose(result)
    assert "Connection refused" in diagnosis["error"]
    for text in (result.summary, json.dumps(result.as_dict()), json.dumps(diagnosis)):
        assert SECRET not in text


def test_real_server_numbers(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as control:
        maxclients = int(control.config_get("maxclients")["maxclients"])
        maxmemory = int(control.config_get("maxmemory")["maxmemory"])
    check, ctx = build("redis", url=redis_url)
    result = check.run(ctx)
    connected = result.measurement("connected_clients")
    assert result.status is Status.OK
    assert result.measurement("maxclients") == maxclients
    assert result.measurement("maxmemory_bytes") == maxmemory
    assert result.measurement("used_memory_bytes") > 0
    assert connected >= 1  # the check's own connection
    assert result.measurement("used_ratio") == pytest.approx(connected / maxclients)
    assert result.summary.startswith(f"Redis clients {connected:.0f}/{maxclients} (")


@pytest.mark.parametrize(
    ("level", "expected"), [("warning", Status.WARNING), ("critical", Status.CRITICAL)],
    ids=["warning", "critical"],
)
def test_extra_real_clients_breach(redis_url: str, level: str, expected: Status) -> None:
    check, ctx = build("redis", url=redis_url)
    first = check.run(ctx)
    baseline, maxclients = first.measurement("connected_clients"), first.measurement("maxclients")
    name = f"patrol-test-{uuid.uuid4().hex[:8]}"
    clients = [redis.Redis.from_url(redis_url) for _ in range(8)]
    try:
        for client in clients:
            client.client_setname(name)  # also opens the connection
        limit = (baseline + 4) / maxclients  # 8 extra clients: well past it
        options = {"warning": limit, "critical": 0.99} if level == "warning" else {
            "warning": (baseline + 2) / maxclients, "critical": limit}
        check, ctx = build("redis", url=redis_url, **options)
        result = check.run(ctx)
        assert result.status is expected
        assert result.measurement("connected_clients") >= baseline + 8 - 2
        assert f"({level} at {format_limit(limit, 'ratio')})" in result.summary
        diagnosis = check.diagnose(result)
        assert diagnosis["by_name"][name] == 8
        assert diagnosis["by_host"]["127.0.0.1"] >= 8  # client port stripped
        assert "patrol" not in diagnosis["by_name"]  # the check's own connection is left out
        assert diagnosis["info_clients"]["connected_clients"] >= 9
    finally:
        for client in clients:
            client.close()


def test_blocked_client_is_listed(redis_url: str) -> None:
    tag = uuid.uuid4().hex[:8]
    key, name = f"patrol-test-queue-{tag}", f"patrol-blocked-{tag}"
    waiter = redis.Redis.from_url(redis_url, decode_responses=True)
    waiter.client_setname(name)
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(waiter.blpop([key], timeout=30)),
                              daemon=True)
    control = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        thread.start()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(
            c["name"] == name and "b" in c["flags"] for c in control.client_list()
        ):
            time.sleep(0.02)
        check, ctx = build("redis", url=redis_url,
                           thresholds={"blocked_clients": {"warning": 1}})
        result = check.run(ctx)
        assert result.status is Status.WARNING
        assert result.measurement("blocked_clients") >= 1
        assert " blocked (warning at 1)" in result.summary
        diagnosis = check.diagnose(result)
        json.dumps(diagnosis)
        [mine] = [c for c in diagnosis["blocked"] if c["name"] == name]
        assert mine["cmd"] == "blpop"
        assert mine["host"] == "127.0.0.1"
        assert diagnosis["by_cmd"]["blpop"] >= 1
        assert diagnosis["info_clients"]["blocked_clients"] >= 1
    finally:
        control.lpush(key, "done")  # releases the waiter
        thread.join(10)
        control.delete(key)
        control.close()
        waiter.close()
    assert [list(item) for item in got] == [[key, "done"]]
