"""PostgreSQL connections check: exact parsing with an injected connection, then the
real server at 127.0.0.1:5432 with real extra sessions, a real idle-in-transaction
session and a real long query."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import psycopg
import pytest

from patrol.checks.base import CheckError, Status
from patrol.checks.dsn import endpoint, password, redact
from patrol.checks.postgres_pg8000 import ConnectFailed
from patrol.contract.units import format_limit, format_ratio
from tests.conftest import free_port
from tests.helpers import build

SECRET = "Sup3r-S3cret-pg-9f1c"


class FakeConn:
    """Answers the check's three queries with fixed rows."""

    def __init__(self, settings: tuple, states: list[tuple], ages: tuple) -> None:
        self.answers = {"current_setting": [settings], "GROUP BY": states, "xact_start": [ages]}
        self.closed = False

    def execute(self, sql: str) -> Any:
        rows = next((rows for key, rows in self.answers.items() if key in sql), [])
        return type("Cursor", (), {"fetchall": lambda _self: rows})()

    def close(self) -> None:
        self.closed = True


def fake_world(conn: FakeConn) -> dict[str, Any]:
    return {"connect": lambda *args, **kwargs: conn}


def test_usage_against_usable_slots_with_states_and_summary() -> None:
    conn = FakeConn(
        (200, 3, 0),
        [("active", 20), ("idle", 140), ("idle in transaction", 12)],
        (12.5, 40.0),
    )
    check, ctx = build("postgres", dsn="postgresql://patrol@db:5432/postgres",
                       world=fake_world(conn))
    result = check.run(ctx)
    assert result.status is Status.WARNING
    assert result.summary == (
        "PostgreSQL connections 172/197 (87%) on testhost (warning at 80%); "
        "12 idle in transaction"
    )
    assert result.measurement("used_ratio") == pytest.approx(172 / 197)
    assert result.measurement("connections") == 172
    assert result.measurement("max_connections") == 200
    assert result.measurement("usable_connections") == 197
    assert result.measurement("connections_by_state", "idle in transaction") == 12
    assert result.measurement("connections_by_state", "idle in transaction (aborted)") == 0
    assert result.measurement("idle_in_transaction") == 12
    assert result.measurement("oldest_query_seconds") == 12.5
    assert result.measurement("oldest_transaction_seconds") == 40.0
    assert conn.closed


@pytest.mark.parametrize(
    ("options", "idle_tx", "status", "tail"),
    [
        ({}, 0, Status.OK, ""),
        ({}, 2, Status.OK, "; 2 idle in transaction"),
        ({"thresholds": {"oldest_query_seconds": {"critical": "10m"}}}, 0, Status.CRITICAL,
         "; oldest query running 20m (critical at 10m)"),
        ({"thresholds": {"idle_in_transaction": {"warning": 1}}}, 2, Status.WARNING,
         "; 2 idle in transaction (warning at 1)"),
    ],
    ids=["quiet", "idle-in-tx-noted", "long-query-critical", "idle-in-tx-warning"],
)
def test_secondary_thresholds_are_named_in_summary(options, idle_tx, status, tail) -> None:
    states = [("active", 3), ("idle in transaction", idle_tx)]
    conn = FakeConn((100, 3, 0), states, (1200.0, 1200.0))
    check, ctx = build("postgres", dsn="postgresql://db/postgres", world=fake_world(conn),
                       **options)
    result = check.run(ctx)
    used = 3 + idle_tx
    assert result.status is status
    share = format_ratio(used / 97)
    assert result.summary == f"PostgreSQL connections {used}/97 ({share}) on testhost{tail}"


@pytest.mark.parametrize(
    ("dsn", "where", "secret"),
    [
        ("postgresql://patrol:p%40ss@db:5433/app", "db:5433", "p@ss"),
        ("postgresql://patrol@db/app", "db:5432", None),
        ("host=db port=6432 user=patrol password='a b'", "db:6432", "a b"),
        ("host=/var/run/postgresql dbname=app", "/var/run/postgresql", None),
    ],
    ids=["url", "url-default-port", "keyvalue", "socket"],
)
def test_dsn_endpoint_and_password(dsn: str, where: str, secret: str | None) -> None:
    assert endpoint(dsn, 5432) == where
    assert password(dsn) == secret


def test_redact_hides_given_secrets_and_password_shapes() -> None:
    text = "bad dsn postgresql://u:p%40ss@db/x and password=other and raw p@ss"
    assert redact(text, "p@ss") == "bad dsn postgresql://u:***@db/x and password=*** and raw ***"


def test_connect_error_that_quotes_the_dsn_is_redacted() -> None:
    def connect(*args: Any, **kwargs: Any) -> Any:
        raise ConnectFailed(f"could not parse {args[0]}")

    dsn = f"postgresql://patrol:{SECRET}@db:5432/postgres"
    check, ctx = build("postgres", dsn=dsn, world={"connect": connect})
    result = check.run(ctx)
    assert result.status is Status.CRITICAL
    assert result.summary.startswith("cannot connect to PostgreSQL at db:5432 on testhost: ")
    assert SECRET not in json.dumps(result.as_dict())
    assert SECRET not in json.dumps(check.diagnose(result))


def test_malformed_dsn_is_unknown_without_the_password() -> None:
    check, ctx = build("postgres", dsn=f"host=127.0.0.1 password={SECRET} bogus=1")
    with pytest.raises(CheckError) as caught:
        check.run(ctx)
    assert "bogus" in str(caught.value)
    assert SECRET not in str(caught.value)


# -- against the real server ---------------------------------------------------------------


def test_closed_port_is_critical_and_hides_password() -> None:
    port = free_port()
    check, ctx = build("postgres", dsn=f"postgresql://patrol:{SECRET}@127.0.0.1:{port}/postgres",
                       connect_timeout="2s")
    result = check.run(ctx)
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(
        f"cannot connect to PostgreSQL at 127.0.0.1:{port} on testhost: "
    )
    assert "Connection refused" in result.summary
    diagnosis = check.diagnose(result)
    assert "Connection refused" in diagnosis["error"]
    for text in (result.summary, json.dumps(result.as_dict()), json.dumps(diagnosis)):
        assert SECRET not in text


def test_real_server_numbers(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        max_conn = int(conn.execute("SHOW max_connections").fetchone()[0])
        reserved = int(conn.execute("SHOW superuser_reserved_connections").fetchone()[0])
    check, ctx = build("postgres", dsn=postgres_dsn)
    result = check.run(ctx)
    usable = max_conn - reserved
    used = result.measurement("connections")
    assert result.measurement("max_connections") == max_conn
    assert result.measurement("usable_connections") == usable
    assert used >= 1  # the check's own session
    assert result.measurement("connections_by_state", "active") >= 1
    assert result.measurement("used_ratio") == pytest.approx(used / usable)
    assert result.summary.startswith(f"PostgreSQL connections {used:.0f}/{usable} (")


def _open(dsn: str, app: str, n: int) -> list[psycopg.Connection]:
    return [psycopg.connect(dsn, autocommit=True, application_name=app) for _ in range(n)]


@pytest.mark.parametrize(
    ("level", "expected"), [("warning", Status.WARNING), ("critical", Status.CRITICAL)],
    ids=["warning", "critical"],
)
def test_extra_real_sessions_breach(postgres_dsn: str, level: str, expected: Status) -> None:
    check, ctx = build("postgres", dsn=postgres_dsn)
    baseline = check.run(ctx).measurement("connections")
    usable = check.run(ctx).measurement("usable_connections")
    app = f"patrol-test-{uuid.uuid4().hex[:8]}"
    conns = _open(postgres_dsn, app, 8)
    try:
        limit = (baseline + 4) / usable  # 8 extra sessions: well past it
        options = {"warning": limit, "critical": 0.99} if level == "warning" else {
            "warning": (baseline + 2) / usable, "critical": limit}
        check, ctx = build("postgres", dsn=postgres_dsn, **options)
        result = check.run(ctx)
        assert result.status is expected
        assert result.measurement("connections") >= baseline + 8 - 2
        assert f"({level} at {format_limit(limit, 'ratio')})" in result.summary
        diagnosis = check.diagnose(result)
        assert diagnosis["by_application"][app] == 8
        assert diagnosis["by_client"]["127.0.0.1"] >= 8
    finally:
        for conn in conns:
            conn.close()


@pytest.mark.slow
def test_idle_in_transaction_and_long_query_in_diagnostics(postgres_dsn: str) -> None:
    tag = uuid.uuid4().hex[:8]
    idle_app, sleep_app = f"patrol-idle-{tag}", f"patrol-sleep-{tag}"
    idle = psycopg.connect(postgres_dsn, application_name=idle_app)  # not autocommit
    sleeper = psycopg.connect(postgres_dsn, autocommit=True, application_name=sleep_app)
    errors: list[BaseException] = []

    def long_query() -> None:
        try:
            sleeper.execute("SELECT pg_sleep(30) /* patrol long query */")
        except psycopg.errors.QueryCanceled as exc:
            errors.append(exc)

    thread = threading.Thread(target=long_query, daemon=True)
    try:
        idle.execute("SELECT 1")  # opens a transaction, then sits idle in it
        thread.start()
        with psycopg.connect(postgres_dsn, autocommit=True) as watch:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not watch.execute(
                "SELECT 1 FROM pg_stat_activity WHERE application_name = %s "
                "AND state = 'active' AND now() - query_start > interval '200 ms'",
                (sleep_app,),
            ).fetchall():
                time.sleep(0.05)
        check, ctx = build(
            "postgres", dsn=postgres_dsn,
            thresholds={"idle_in_transaction": {"warning": 1},
                        "oldest_query_seconds": {"warning": "100ms"}},
        )
        result = check.run(ctx)
        assert result.status is Status.WARNING
        assert result.measurement("idle_in_transaction") >= 1
        assert result.measurement("oldest_query_seconds") >= 0.2
        assert "idle in transaction (warning at 1)" in result.summary
        assert "; oldest query running " in result.summary

        diagnosis = check.diagnose(result)
        json.dumps(diagnosis)  # must be serialisable as is
        assert diagnosis["by_application"][idle_app] == 1
        assert diagnosis["by_state"]["idle in transaction"] >= 1
        slow = [q for q in diagnosis["longest_queries"] if q["application_name"] == sleep_app]
        assert len(slow) == 1
        assert slow[0]["state"] == "active"
        assert slow[0]["query_age_seconds"] >= 0.2
        assert "pg_sleep(30)" in slow[0]["query"]
        assert slow[0]["client"] == "127.0.0.1"
        stuck = [s for s in diagnosis["idle_in_transaction"] if s["application_name"] == idle_app]
        assert len(stuck) == 1
        assert stuck[0]["state"] == "idle in transaction"
        assert stuck[0]["query"] == "SELECT 1"
        assert all(q["application_name"] != "patrol" for q in diagnosis["longest_queries"])
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as control:
            control.execute("SELECT pg_cancel_backend(%s)", (sleeper.info.backend_pid,))
        thread.join(10)
        sleeper.close()
        idle.close()
    assert errors, "the long query should have been cancelled by the test"


def test_query_text_is_truncated(postgres_dsn: str) -> None:
    app = f"patrol-long-text-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, application_name=app) as conn:
        conn.execute("SELECT 1 /* " + "x" * 2000 + " */")  # left idle in transaction
        check, ctx = build("postgres", dsn=postgres_dsn)
        diagnosis = check.diagnose(check.run(ctx))
        [mine] = [s for s in diagnosis["idle_in_transaction"] if s["application_name"] == app]
        assert len(mine["query"]) == 500
        conn.rollback()


# -- passwords, TLS, sockets: our own PostgreSQL (initdb), stopped by PID -------------------

PG_BIN = "/usr/lib/postgresql/15/bin"
ROLE_SECRET = "R0le-S3cret-pg-2b7a"
HBA = """\
local all all scram-sha-256
hostnossl all tlsonly 127.0.0.1/32 reject
host all md5user 127.0.0.1/32 md5
host all all 127.0.0.1/32 scram-sha-256
"""


@pytest.fixture(scope="module")
def private_pg(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A PostgreSQL of our own on a free port: SCRAM and md5 roles, a role that must
    use TLS, TLS on with a test CA, a socket directory; stopped by PID."""
    import os
    import pwd
    import shutil
    import subprocess
    from pathlib import Path

    from tests.certs import issue, make_ca
    from tests.conftest import unavailable

    initdb, postgres = Path(PG_BIN, "initdb"), Path(PG_BIN, "postgres")
    if not initdb.exists() or os.geteuid() != 0:
        unavailable(f"{initdb} (Debian's postgresql) and root, to run it as 'postgres'")
    account = pwd.getpwnam("postgres")
    import tempfile

    root = tmp_path_factory.mktemp("pg")
    ca = make_ca(root)
    cert = issue(ca, root)
    home = Path(tempfile.mkdtemp(prefix="patrol-pg-"))  # pytest's tmp is root-only (0700)
    for src in (cert.cert_path, cert.key_path):
        shutil.copy(src, home / src.name)
    (home / "pw").write_text(f"{ROLE_SECRET}\n")
    for path in (home, *home.iterdir()):
        os.chown(path, account.pw_uid, account.pw_gid)
    (home / cert.key_path.name).chmod(0o600)
    data = home / "data"
    subprocess.run([str(initdb), "-D", str(data), "-U", "postgres", "-A", "scram-sha-256",
                    f"--pwfile={home / 'pw'}"], user="postgres", check=True,
                   capture_output=True, timeout=60)
    (data / "pg_hba.conf").write_text(HBA)
    port = free_port()
    proc = subprocess.Popen(
        [str(postgres), "-D", str(data), "-p", str(port), "-k", str(home),
         "-c", "listen_addresses=127.0.0.1", "-c", "ssl=on",
         "-c", f"ssl_cert_file={home / cert.cert_path.name}",
         "-c", f"ssl_key_file={home / cert.key_path.name}", "-c", "fsync=off"],
        user="postgres", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    admin = f"postgresql://postgres:{ROLE_SECRET}@127.0.0.1:{port}/postgres"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                control = psycopg.connect(admin, autocommit=True)
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        with control:
            for role in ("scramuser", "tlsonly"):
                control.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{ROLE_SECRET}'")
            control.execute("SET password_encryption = 'md5'")
            control.execute(f"CREATE ROLE md5user LOGIN PASSWORD '{ROLE_SECRET}'")
            control.execute("GRANT pg_monitor TO scramuser, tlsonly, md5user")
        yield {"port": port, "socket_dir": str(home), "ca": str(ca.cert_path)}
    finally:
        proc.terminate()
        proc.wait(20)
        shutil.rmtree(home, ignore_errors=True)


def _pg_texts(check: Any, result: Any) -> list[str]:
    return [result.summary, json.dumps(result.as_dict()), json.dumps(check.diagnose(result))]


@pytest.mark.parametrize(
    ("role", "query"),
    [("scramuser", ""), ("scramuser", "?sslmode=disable"), ("md5user", "?sslmode=disable"),
     ("scramuser", "?sslmode=require"), ("tlsonly", ""), ("tlsonly", "?sslmode=allow"),
     ("scramuser", "?sslmode=verify-full&sslrootcert={ca}"),
     ("scramuser", "?sslmode=verify-ca&sslrootcert={ca}")],
    ids=["scram-prefer", "scram-plain", "md5-plain", "require", "tls-role-prefer",
         "tls-role-allow", "verify-full", "verify-ca"],
)
def test_password_roles_and_sslmodes(private_pg: dict[str, Any], role: str, query: str) -> None:
    dsn = (f"postgresql://{role}:{ROLE_SECRET}@127.0.0.1:{private_pg['port']}/postgres"
           + query.format(ca=private_pg["ca"]))
    check, ctx = build("postgres", dsn=dsn)
    result = check.run(ctx)
    assert result.status is Status.OK, result.summary
    assert result.measurement("connections") >= 1
    assert "error" not in check.diagnose(result)


@pytest.mark.parametrize(
    ("role", "query", "expected"),
    [("scramuser", "", 'FATAL: password authentication failed for user "scramuser"'),
     ("md5user", "?sslmode=disable",
      'FATAL: password authentication failed for user "md5user"'),
     ("tlsonly", "?sslmode=disable", 'FATAL: pg_hba.conf rejects connection for host '
      '"127.0.0.1", user "tlsonly", database "postgres", no encryption'),
     ("scramuser", "?sslmode=verify-full&sslrootcert=system", "certificate verify failed"),
     ("scramuser", "?sslmode=verify-ca&sslrootcert=/nonexistent/root.crt",
      'root certificate file "/nonexistent/root.crt" does not exist')],
    ids=["scram-wrong-password", "md5-wrong-password", "tls-role-in-clear", "unknown-ca",
         "missing-root-cert"],
)
def test_refused_logins_are_critical_without_secrets(private_pg: dict[str, Any], role: str,
                                                     query: str, expected: str) -> None:
    port = private_pg["port"]
    secret = ROLE_SECRET if "verify" in query or "tlsonly" in role else f"x{ROLE_SECRET}"
    check, ctx = build("postgres",
                       dsn=f"postgresql://{role}:{secret}@127.0.0.1:{port}/postgres{query}")
    result = check.run(ctx)
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(
        f'cannot connect to PostgreSQL at 127.0.0.1:{port} on testhost: connection to server '
        f'at "127.0.0.1", port {port} failed: ')
    assert expected in result.summary
    for text in _pg_texts(check, result):
        assert ROLE_SECRET not in text


def test_no_password_given_is_critical(private_pg: dict[str, Any],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")
    check, ctx = build("postgres",
                       dsn=f"postgresql://scramuser@127.0.0.1:{private_pg['port']}/postgres")
    result = check.run(ctx)
    assert result.status is Status.CRITICAL
    assert "no password was provided" in result.summary


def test_unix_socket_and_pgpass(private_pg: dict[str, Any], tmp_path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A key/value DSN naming the socket directory, the password from a 0600 passfile
    (libpq's "localhost" line for a socket)."""
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"localhost:{private_pg['port']}:*:scramuser:{ROLE_SECRET}\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    check, ctx = build("postgres", dsn=f"host={private_pg['socket_dir']} "
                                       f"port={private_pg['port']} user=scramuser dbname=postgres")
    result = check.run(ctx)
    assert result.status is Status.OK, result.summary
    passfile.chmod(0o644)  # libpq ignores a file others can read; so do we
    result = check.run(ctx)
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(
        f"cannot connect to PostgreSQL at {private_pg['socket_dir']} on testhost: connection "
        f'to server on socket "{private_pg["socket_dir"]}/.s.PGSQL.{private_pg["port"]}" failed')


def test_tls_required_of_a_server_without_it(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        ssl_on = conn.execute("SHOW ssl").fetchone()[0] == "on"
    sep = "&" if "?" in postgres_dsn else "?"
    check, ctx = build("postgres", dsn=f"{postgres_dsn}{sep}sslmode=require")
    result = check.run(ctx)
    if ssl_on:
        assert result.status is Status.OK
    else:
        assert result.status is Status.CRITICAL
        assert result.summary.endswith("failed: server does not support SSL, but SSL was "
                                       "required")
