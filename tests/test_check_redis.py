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


# -- authentication, TLS, timeouts: our own redis-server --------------------------------------

ACL_USER, ACL_SECRET = "patrol-mon", "Acl-S3cret-rd-19e2"


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A redis-server on free ports (plain and TLS) with ``requirepass`` and an ACL
    user, started for this module and stopped by PID."""
    import shutil
    import subprocess

    from tests.certs import issue, make_ca

    binary = shutil.which("redis-server")
    if not binary:
        from tests.conftest import unavailable

        unavailable("redis-server not found; install Debian's 'redis-server' package")
    root = tmp_path_factory.mktemp("redis")
    ca = make_ca(root)
    cert = issue(ca, root)
    port, tls_port = free_port(), free_port()
    conf = root / "redis.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ntls-port {tls_port}\n"
        f"tls-cert-file {cert.cert_path}\ntls-key-file {cert.key_path}\n"
        f"tls-ca-cert-file {ca.cert_path}\ntls-auth-clients no\n"
        f"dir {root}\nsave \"\"\nappendonly no\n"
        f"requirepass {SECRET}\nuser {ACL_USER} on >{ACL_SECRET} ~* +@all\n"
    )
    proc = subprocess.Popen([binary, str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with redis.Redis(port=port, password=SECRET) as probe:
                    probe.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        yield {"port": port, "tls_port": tls_port, "ca": ca.cert_path}
    finally:
        proc.terminate()
        proc.wait(10)


def _texts(check: Any, result: Any) -> list[str]:
    return [result.summary, json.dumps(result.as_dict()), json.dumps(check.diagnose(result))]


@pytest.mark.parametrize(
    "userinfo", [f":{SECRET}", f"{ACL_USER}:{ACL_SECRET}"], ids=["requirepass", "acl-user"],
)
def test_password_and_acl_user_log_in(private_redis: dict[str, Any], userinfo: str) -> None:
    url = f"redis://{userinfo}@127.0.0.1:{private_redis['port']}/2"
    check, ctx = build("redis", url=url)
    result = check.run(ctx)
    assert result.status is Status.OK, result.summary
    assert result.measurement("connected_clients") >= 1
    diagnosis = check.diagnose(result)
    assert "error" not in diagnosis
    assert diagnosis["info_clients"]["connected_clients"] >= 1


@pytest.mark.parametrize(
    ("userinfo", "expected"),
    [(f":wrong-{SECRET}", "WRONGPASS invalid username-password pair"),
     (f"{ACL_USER}:wrong-{ACL_SECRET}", "WRONGPASS invalid username-password pair"),
     ("", "NOAUTH Authentication required")],
    ids=["bad-password", "bad-acl-password", "no-password"],
)
def test_rejected_login_is_critical_without_secrets(private_redis: dict[str, Any], userinfo: str,
                                                    expected: str) -> None:
    at = f"{userinfo}@" if userinfo else ""
    port = private_redis["port"]
    check, ctx = build("redis", url=f"redis://{at}127.0.0.1:{port}/0")
    result = check.run(ctx)
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(
        f"cannot connect to Redis at 127.0.0.1:{port} on testhost: {expected}")
    for text in _texts(check, result):
        assert SECRET not in text and ACL_SECRET not in text


def test_tls_with_the_servers_ca(private_redis: dict[str, Any]) -> None:
    url = (f"rediss://:{SECRET}@127.0.0.1:{private_redis['tls_port']}/0"
           f"?ssl_ca_certs={private_redis['ca']}")
    check, ctx = build("redis", url=url)
    result = check.run(ctx)
    assert result.status is Status.OK, result.summary
    assert "error" not in check.diagnose(result)


def test_tls_unknown_ca_is_critical_unless_verification_is_off(
        private_redis: dict[str, Any]) -> None:
    base = f"rediss://:{SECRET}@127.0.0.1:{private_redis['tls_port']}/0"
    check, ctx = build("redis", url=base)  # the system store does not know the test CA
    result = check.run(ctx)
    assert result.status is Status.CRITICAL
    assert "certificate verify failed" in result.summary
    assert all(SECRET not in text for text in _texts(check, result))
    check, ctx = build("redis", url=f"{base}?ssl_cert_reqs=none")
    assert check.run(ctx).status is Status.OK


def test_plain_client_on_the_tls_port_is_critical(private_redis: dict[str, Any]) -> None:
    check, ctx = build("redis", url=f"redis://:{SECRET}@127.0.0.1:{private_redis['tls_port']}/0",
                       connect_timeout="1s")
    result = check.run(ctx)
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(
        f"cannot connect to Redis at 127.0.0.1:{private_redis['tls_port']} on testhost: ")


def test_unknown_url_option_is_unknown() -> None:
    check, ctx = build("redis", url=f"redis://:{SECRET}@127.0.0.1:6379/0?sentinel=1")
    with pytest.raises(CheckError) as caught:
        check.run(ctx)
    assert "sentinel" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_info_and_client_list_parsing() -> None:
    from patrol.checks.redis_resp import parse_client_list, parse_info

    info = parse_info("# Clients\r\nconnected_clients:3\r\nmem_fragmentation_ratio:1.5\r\n"
                      "maxmemory_policy:noeviction\r\ndb0:keys=1,expires=0\r\n")
    assert info == {"connected_clients": 3, "mem_fragmentation_ratio": 1.5,
                    "maxmemory_policy": "noeviction", "db0": {"keys": 1, "expires": 0}}
    [entry] = parse_client_list("id=7 addr=127.0.0.1:5000 name= cmd=client|list flags=N\n")
    assert entry == {"id": "7", "addr": "127.0.0.1:5000", "name": "", "cmd": "client|list",
                     "flags": "N"}
