"""MariaDB/MySQL connections check: exact parsing with an injected connection, then the
real MariaDB at 127.0.0.1:3306 with real extra connections and a real SLEEP query."""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Self

import pymysql
import pytest

from patrol.checks.base import Result, Status
from patrol.contract.units import format_limit
from tests.conftest import free_port
from tests.helpers import build

SECRET = "Sup3r-S3cret-my-51ab"


class FakeCursor:
    def __init__(self, conn: FakeConn) -> None:
        self.conn = conn
        self.rows: list[tuple] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, sql: str, args: Any = None) -> None:
        if "STATUS" in sql:
            self.rows = [(k, str(v)) for k, v in self.conn.status.items()]
        else:
            self.rows = [(self.conn.max_conn,)]

    def fetchall(self) -> list[tuple]:
        return self.rows

    def fetchone(self) -> tuple:
        return self.rows[0]


class FakeConn:
    """Answers SHOW GLOBAL STATUS and @@max_connections with fixed values."""

    def __init__(self, status: dict[str, int], max_conn: int, version: str) -> None:
        self.status, self.max_conn, self.version = status, max_conn, version
        self.closed = False

    def get_server_info(self) -> str:
        return self.version

    def cursor(self) -> FakeCursor:
        return FakeCursor(self)

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize(
    ("version", "connected", "status", "summary"),
    [
        ("10.11.6-MariaDB-0+deb12u1", 120, Status.OK,
         "MariaDB connections 120/151 (79%) on testhost; 4 running"),
        ("8.0.36", 130, Status.WARNING,
         "MySQL connections 130/151 (86%) on testhost (warning at 80%); 4 running"),
        ("10.11.6-MariaDB", 140, Status.CRITICAL,
         "MariaDB connections 140/151 (93%) on testhost (critical at 90%); 4 running"),
    ],
    ids=["mariadb-ok", "mysql-warning", "mariadb-critical"],
)
def test_threads_connected_against_max_connections(version, connected, status, summary) -> None:
    conn = FakeConn({"Threads_connected": connected, "Threads_running": 4,
                     "Max_used_connections": 149, "Aborted_connects": 7}, 151, version)
    check, ctx = build("mysql", world={"connect": lambda **kwargs: conn})
    result = check.run(ctx)
    assert result.status is status
    assert result.summary == summary
    assert result.measurement("used_ratio") == pytest.approx(connected / 151)
    assert result.measurement("threads_connected") == connected
    assert result.measurement("threads_running") == 4
    assert result.measurement("max_connections") == 151
    assert result.measurement("max_used_connections") == 149
    assert result.diagnostics == {"aborted_connects": 7}
    assert conn.closed


# -- against the real server ---------------------------------------------------------------


def test_closed_port_is_critical_and_hides_password() -> None:
    port = free_port()
    check, ctx = build("mysql", host="127.0.0.1", port=port, user="patrol", password=SECRET,
                       connect_timeout="2s")
    result = check.run(ctx)
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(
        f"cannot connect to MariaDB/MySQL at 127.0.0.1:{port} on testhost: "
        "Can't connect to MySQL server on '127.0.0.1'"
    )
    diagnosis = check.diagnose(result)
    assert "Connection refused" in diagnosis["error"]
    for text in (result.summary, json.dumps(result.as_dict()), json.dumps(diagnosis)):
        assert SECRET not in text


def _connect(server: dict[str, Any]) -> pymysql.Connection:
    return pymysql.connect(**server)


def test_real_server_numbers(mysql_server: dict[str, Any]) -> None:
    with _connect(mysql_server) as conn, conn.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.max_connections")
        max_conn = cur.fetchone()[0]
    check, ctx = build("mysql", **mysql_server)
    result = check.run(ctx)
    connected = result.measurement("threads_connected")
    assert result.status is Status.OK
    assert result.measurement("max_connections") == max_conn
    assert connected >= 1  # the check's own connection
    assert result.measurement("threads_running") >= 1  # the check's own statement
    assert result.measurement("used_ratio") == pytest.approx(connected / max_conn)
    assert result.summary.startswith(f"MariaDB connections {connected:.0f}/{max_conn} (")


@pytest.mark.parametrize(
    ("level", "expected"), [("warning", Status.WARNING), ("critical", Status.CRITICAL)],
    ids=["warning", "critical"],
)
def test_extra_real_connections_breach(mysql_server: dict[str, Any], level: str,
                                       expected: Status) -> None:
    check, ctx = build("mysql", **mysql_server)
    first = check.run(ctx)
    baseline, max_conn = first.measurement("threads_connected"), first.measurement(
        "max_connections")
    conns = [_connect(mysql_server) for _ in range(8)]
    try:
        limit = (baseline + 4) / max_conn  # 8 extra connections: well past it
        options = {"warning": limit, "critical": 0.99} if level == "warning" else {
            "warning": (baseline + 2) / max_conn, "critical": limit}
        check, ctx = build("mysql", **mysql_server, **options)
        result = check.run(ctx)
        assert result.status is expected
        assert result.measurement("threads_connected") >= baseline + 8 - 2
        assert f"({level} at {format_limit(limit, 'ratio')})" in result.summary
        ids = {conn.thread_id() for conn in conns}
        diagnosis = check.diagnose(result)
        assert diagnosis["threads"] >= 8
        assert diagnosis["by_user"]["root"] >= 8
        assert diagnosis["by_host"]["127.0.0.1"] >= 8  # client port stripped
        assert diagnosis["by_command"]["Sleep"] >= 8
        assert not ids & {q["id"] for q in diagnosis["longest_queries"]}  # Sleep is not a query
    finally:
        for conn in conns:
            conn.close()


@pytest.mark.slow
def test_sleeping_query_in_processlist_diagnostics(mysql_server: dict[str, Any]) -> None:
    sleeper = _connect({**mysql_server, "database": "mysql"})
    tid = sleeper.thread_id()
    answers: list[Any] = []

    def long_query() -> None:
        try:
            with sleeper.cursor() as cur:
                cur.execute("SELECT SLEEP(30) AS patrol_long_query")
                answers.append(cur.fetchone()[0])
        except pymysql.OperationalError as exc:
            answers.append(exc.args[0])

    thread = threading.Thread(target=long_query, daemon=True)
    thread.start()
    control = _connect(mysql_server)
    try:
        with control.cursor() as cur:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                cur.execute("SELECT TIME_MS FROM information_schema.PROCESSLIST WHERE ID = %s "
                            "AND INFO LIKE 'SELECT SLEEP%%'", (tid,))
                row = cur.fetchone()
                if row and row[0] >= 1000:  # TIME is whole seconds; wait for one
                    break
                time.sleep(0.05)
        check, ctx = build("mysql", **mysql_server)
        diagnosis = check.diagnose(check.run(ctx))
        json.dumps(diagnosis)
        [mine] = [q for q in diagnosis["longest_queries"] if q["id"] == tid]
        assert mine["info"] == "SELECT SLEEP(30) AS patrol_long_query"
        assert mine["command"] == "Query"
        assert mine["user"] == "root"
        assert mine["host"] == "127.0.0.1"
        assert mine["db"] == "mysql"
        assert mine["time_seconds"] >= 1
        assert diagnosis["by_db"]["mysql"] >= 1
        assert not any("PROCESSLIST" in (q["info"] or "") for q in diagnosis["longest_queries"])
    finally:
        with control.cursor() as cur:
            cur.execute(f"KILL QUERY {int(tid)}")
        control.close()
        thread.join(10)
        sleeper.close()
    assert answers == [1317]  # "Query execution was interrupted": the test ended it


# --- tls: disabled | preferred | required ------------------------------------------------


@pytest.mark.parametrize(
    ("options", "tls"),
    [
        ({"host": "127.0.0.1"}, "disabled"),
        ({}, "disabled"),  # localhost
        ({"host": "::1"}, "disabled"),
        ({"host": "127.0.1.1"}, "disabled"),
        ({"host": "db.example.com", "unix_socket": "/run/mysqld/mysqld.sock"}, "disabled"),
        ({"host": "db.example.com"}, "preferred"),
        ({"host": "10.0.0.5"}, "preferred"),
        ({"host": "127.0.0.1", "tls": "required"}, "required"),
        ({"host": "10.0.0.5", "tls": "disabled"}, "disabled"),
    ],
    ids=["ipv4-loopback", "localhost", "ipv6-loopback", "debian-hostname-address", "socket",
         "remote-name", "remote-address", "explicit-required", "explicit-disabled"],
)
def test_tls_default_follows_where_the_server_is(options: dict[str, Any], tls: str) -> None:
    check, _ = build("mysql", **options)
    assert check.config.tls == tls


def test_tls_option_is_validated() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="'disabled', 'preferred' or 'required'"):
        build("mysql", tls="verify")


@pytest.mark.parametrize(
    ("tls", "expected"),
    [("disabled", {"ssl_disabled": True}), ("preferred", {}), ("required", {"ssl": "context"})],
    ids=["disabled", "preferred", "required"],
)
def test_tls_mode_becomes_pymysql_options(tls: str, expected: dict[str, Any]) -> None:
    seen: list[dict[str, Any]] = []

    def connect(**kwargs: Any) -> FakeConn:
        seen.append(kwargs)
        return FakeConn({"Threads_connected": 3}, 151, "10.11.6-MariaDB")

    check, ctx = build("mysql", world={"connect": connect}, host="db.example.com", tls=tls)
    assert check.run(ctx).status is Status.OK
    check.run(ctx)
    tls_keys = [{k: v for k, v in kw.items() if k.startswith("ssl")} for kw in seen]
    if "ssl" in expected:
        import ssl

        first, second = (keys["ssl"] for keys in tls_keys)
        assert isinstance(first, ssl.SSLContext) and first is second  # built once
        assert first.verify_mode is ssl.CERT_NONE  # like --ssl-mode=REQUIRED
    else:
        assert tls_keys == [expected, expected]


@pytest.mark.parametrize("tls", ["disabled", "preferred"])
def test_real_server_with_tls_mode_never_loads_the_ca_store(
    mysql_server: dict[str, Any], tls: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ssl

    def no_ca_store(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("ssl.create_default_context() called on a connect")

    check, ctx = build("mysql", **mysql_server, tls=tls)
    check.run(ctx)  # the first run may build the shared context
    monkeypatch.setattr(ssl, "create_default_context", no_ca_store)
    for _ in range(2):
        result = check.run(ctx)
        assert result.status is Status.OK, result.summary
        assert result.measurement("threads_connected") >= 1


def test_real_server_tls_required(mysql_server: dict[str, Any]) -> None:
    with _connect(mysql_server) as conn, conn.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.have_ssl")
        have_ssl = cur.fetchone()[0]
    check, ctx = build("mysql", **mysql_server, tls="required")
    result = check.run(ctx)
    if have_ssl == "YES":
        assert result.status is Status.OK, result.summary
    else:  # this server offers no TLS: required means "do not talk in clear"
        assert result.status is Status.CRITICAL
        assert result.summary == (
            "cannot connect to MariaDB/MySQL at 127.0.0.1:3306 on testhost: "
            "SSL is required but the server doesn't support it (error 2026)")


# --- authentication plugins, and cryptography only when a server asks for RSA ------------

USER_SECRET = "Us3r-S3cret-my-c41e"


@pytest.fixture
def mysql_user(mysql_server: dict[str, Any]) -> Any:
    """``make(plugin_sql)`` creates a uniquely named user with ``USER_SECRET``; each is
    dropped after the test, and a plugin the test installed is uninstalled."""
    import uuid

    made: list[str] = []
    installed: list[str] = []
    control = _connect(mysql_server)

    def make(identified: str, soname: str | None = None) -> str:
        with control.cursor() as cur:
            if soname:
                cur.execute("SELECT COUNT(*) FROM information_schema.PLUGINS "
                            "WHERE PLUGIN_NAME = %s AND PLUGIN_STATUS = 'ACTIVE'", (soname,))
                if not cur.fetchone()[0]:
                    cur.execute(f"INSTALL SONAME 'auth_{soname}'")
                    installed.append(soname)
            name = f"patrol_{uuid.uuid4().hex[:8]}"
            cur.execute(f"CREATE USER '{name}'@'%%' {identified}", (USER_SECRET,))
            cur.execute(f"GRANT PROCESS ON *.* TO '{name}'@'%'")
            made.append(name)
            return name

    try:
        yield make
    finally:
        with control.cursor() as cur:
            for name in made:
                cur.execute(f"DROP USER IF EXISTS '{name}'@'%'")
            for soname in installed:
                cur.execute(f"UNINSTALL SONAME 'auth_{soname}'")
        control.close()


def test_native_password_user(mysql_server: dict[str, Any], mysql_user: Any) -> None:
    user = mysql_user("IDENTIFIED VIA mysql_native_password USING PASSWORD(%s)")
    check, ctx = build("mysql", host="127.0.0.1", user=user, password=USER_SECRET)
    result = check.run(ctx)
    assert result.status is Status.OK, result.summary
    assert result.measurement("threads_connected") >= 1

    check, ctx = build("mysql", host="127.0.0.1", user=user, password=f"wrong-{USER_SECRET}")
    result = check.run(ctx)
    assert result.status is Status.CRITICAL
    assert result.summary == (
        f"cannot connect to MariaDB/MySQL at 127.0.0.1:3306 on testhost: Access denied for "
        f"user '{user}'@'127.0.0.1' (using password: YES) (error 1045)")
    for text in (result.summary, json.dumps(result.as_dict()), json.dumps(check.diagnose(result))):
        assert USER_SECRET not in text


def test_ed25519_user_needs_pynacl(mysql_server: dict[str, Any], mysql_user: Any) -> None:
    """MariaDB's ed25519 plugin: PyNaCl signs the scramble; without it, UNKNOWN that
    says what to install (not a traceback)."""
    import importlib.util

    from patrol.checks.base import CheckError

    user = mysql_user("IDENTIFIED VIA ed25519 USING PASSWORD(%s)", soname="ed25519")
    check, ctx = build("mysql", host="127.0.0.1", user=user, password=USER_SECRET)
    if importlib.util.find_spec("nacl") is not None:
        assert check.run(ctx).status is Status.OK
        return
    with pytest.raises(CheckError) as caught:
        check.run(ctx)
    assert str(caught.value) == (
        f"the server authenticates user '{user}' with ed25519, which needs the Python "
        "module 'nacl', not installed: pip install pynacl")
    assert check.diagnose(Result(Status.UNKNOWN, "")) == {"error": str(caught.value)}


def _fresh(code: str) -> str:
    import subprocess
    import sys
    from pathlib import Path

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent, check=True, timeout=60)
    return done.stdout.strip()


def test_pymysql_gets_cryptography_only_when_rsa_is_asked_for() -> None:
    """MariaDB has no RSA-based auth plugin to test against, so this drives PyMySQL's
    own RSA step (what caching_sha2_password full auth without TLS calls) directly."""
    code = (
        "import sys\n"
        "from patrol.checks import pymysql_lean\n"
        "pymysql_lean.load()\n"
        "import pymysql._auth as auth\n"
        "print('cryptography' in sys.modules, auth._have_cryptography)\n"
        "try:\n"
        "    auth.sha2_rsa_encrypt(b'pw', b'x' * 20, b'')\n"
        "except RuntimeError as exc:\n"
        "    print(pymysql_lean.needs_rsa(exc))\n"
        "print(pymysql_lean.enable_rsa())\n"
        "from cryptography.hazmat.primitives.asymmetric import rsa\n"
        "from cryptography.hazmat.primitives import serialization as s\n"
        "key = rsa.generate_private_key(public_exponent=65537, key_size=2048)\n"
        "pem = key.public_key().public_bytes(s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo)\n"
        "print(len(auth.sha2_rsa_encrypt(b'pw', b'x' * 20, pem)))\n"
    )
    assert _fresh(code).splitlines() == ["False False", "True", "True", "256"]


def test_rsa_asked_for_without_cryptography_installed_is_unknown_with_a_hint() -> None:
    code = (
        "import importlib.util\n"
        "real = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda n, *a: None if n == 'cryptography' else real(n, *a)\n"
        "from patrol.checks import pymysql_lean\n"
        "from patrol.checks.base import CheckError\n"
        "from tests.helpers import build\n"
        "pymysql_lean.load()\n"
        "def connect(**kwargs):\n"  # PyMySQL's words when the server asks for RSA
        "    import pymysql._auth as auth\n"
        "    auth.sha2_rsa_encrypt(b'pw', b'x' * 20, b'')\n"
        "check, ctx = build('mysql', host='db.example.com', user='mon', password='Pw-9',\n"
        "                   world={'connect': connect})\n"
        "try:\n"
        "    check.run(ctx)\n"
        "except CheckError as exc:\n"
        "    print(exc)\n"
    )
    assert _fresh(code) == (
        "the server asks RSA-based authentication of user 'mon' (sha256_password, or "
        "caching_sha2_password without TLS), which needs the Python module 'cryptography', "
        "not installed: pip install cryptography, or connect with tls: required")
