"""Secret redaction: what must be masked, and what must be left alone."""

from __future__ import annotations

import json
import time

import pytest

from patrol.agent.diagnostics.redact import MASK, is_secret_name, redact, redact_text
from patrol.checks.config import Secret

TEXT_CASES = [
    # URLs and DSNs
    ("postgres-url", "postgresql://app:hunter2@db-01:5432/orders",
     "postgresql://app:***@db-01:5432/orders"),
    ("url-password-with-at", "mysql://root:p@ss@10.0.0.5/shop",
     "mysql://root:***@10.0.0.5/shop"),
    ("redis-empty-user", "redis://:s3cr3t@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
    ("url-inside-sentence", "connect failed: amqp://guest:guest@mq:5672/ refused",
     "connect failed: amqp://guest:***@mq:5672/ refused"),
    ("url-glued-to-text", "dsn:postgresql://u:pw9@h/x xxmysql://r:pw8@h",
     "dsn:postgresql://u:***@h/x xxmysql://r:***@h"),
    ("url-without-password-kept", "ssh://git@github.com/org/repo.git",
     "ssh://git@github.com/org/repo.git"),
    ("url-query-token", "https://api.example.com/v1?access_token=abc123&page=2",
     "https://api.example.com/v1?access_token=***&page=2"),
    ("url-as-a-value", "url=https://hook.example/?token=x9&a=1",
     "url=https://hook.example/?token=***&a=1"),
    # libpq keyword DSNs
    ("libpq-dsn", "host=db-01 port=5432 user=app password=hunter2 dbname=orders",
     "host=db-01 port=5432 user=app password=*** dbname=orders"),
    ("libpq-quoted", "host=db password='correct horse' sslmode=require",
     "host=db password='***' sslmode=require"),
    ("libpq-spaces", "password = hunter2 user = app", "password = *** user = app"),
    ("odbc", "Driver={ODBC};Server=db;UID=sa;PWD=Str0ng!;Database=x",
     "Driver={ODBC};Server=db;UID=sa;PWD=***;Database=x"),
    # command lines
    ("cli-space", "mysqldump --user root --password hunter2 shop",
     "mysqldump --user root --password *** shop"),
    ("cli-equals", "backup --password=hunter2 --verbose", "backup --password=*** --verbose"),
    ("cli-token", "agent --token abc.def.ghi --port 9100", "agent --token *** --port 9100"),
    ("cli-api-key", "client --api-key=AKIA123 run", "client --api-key=*** run"),
    ("cli-secret", "vault --client-secret 'x y z' login", "vault --client-secret '***' login"),
    ("cli-db-password", "app --db-password s3cret", "app --db-password ***"),
    ("cli-flag-then-flag-kept", "psql --password --host db", "psql --password --host db"),
    ("cli-no-password-kept", "psql --no-password orders", "psql --no-password orders"),
    ("cli-port-kept", "psql -p 5432 -U app", "psql -p 5432 -U app"),
    # environment style
    ("env-pgpassword", "PGPASSWORD=hunter2 psql -h db", "PGPASSWORD=*** psql -h db"),
    ("env-aws", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG AWS_REGION=eu-west-1",
     "AWS_SECRET_ACCESS_KEY=*** AWS_REGION=eu-west-1"),
    ("env-db-pass", "DB_PASS=z DB_HOST=db", "DB_PASS=*** DB_HOST=db"),
    ("env-mysql-pwd", "MYSQL_PWD=rootpw", "MYSQL_PWD=***"),
    ("env-github-token", "GITHUB_TOKEN=ghp_abcdef", "GITHUB_TOKEN=***"),
    ("env-api-key", "STRIPE_API_KEY=sk_live_1", "STRIPE_API_KEY=***"),
    ("env-credentials", "GOOGLE_APPLICATION_CREDENTIALS=/srv/key.json",
     "GOOGLE_APPLICATION_CREDENTIALS=***"),
    ("env-camel", "dbPassword=x1 apiKey=x2 accessToken=x3",
     "dbPassword=*** apiKey=*** accessToken=***"),
    ("env-redis-auth", "REDISCLI_AUTH=foobared", "REDISCLI_AUTH=***"),
    ("env-pwd-directory-kept", "PWD=/home/app OLDPWD=/root", "PWD=/home/app OLDPWD=/root"),
    # headers
    ("bearer-header", "Authorization: Bearer eyJhbGciOi.x.y", "Authorization: Bearer ***"),
    ("basic-header", "authorization: Basic dXNlcjpwYXNz", "authorization: Basic ***"),
    ("curl-header", "curl -H 'Authorization: token ghp_x' https://h",
     "curl -H 'Authorization: token ***' https://h"),
    ("x-auth-token", "X-Auth-Token: 0123456789", "X-Auth-Token: ***"),
    ("cookie", "Cookie: session=abcdef", "Cookie: ***"),
    ("bare-bearer", "sent Bearer abc.def to upstream", "sent Bearer *** to upstream"),
    # structured text
    ("json-fragment", '{"user": "app", "password": "hunter2"}',
     '{"user": "app", "password": "***"}'),
    ("python-repr", "{'secret': 'abc', 'n': 1}", "{'secret': '***', 'n': 1}"),
    ("yaml-line", "  password: hunter2", "  password: ***"),
    ("dsn-inside-value", "conf: {dsn: 'host=db password=x'}",
     "conf: {dsn: 'host=db password=***'}"),
    # must NOT be redacted
    ("keyboard", "keyboard=us layout=qwerty", "keyboard=us layout=qwerty"),
    ("tokens-used", "tokens_used=5 max_tokens=4096", "tokens_used=5 max_tokens=4096"),
    ("token-count", "token_count=12", "token_count=12"),
    ("auth-method", "auth_method=scram-sha-256", "auth_method=scram-sha-256"),
    ("sort-key", "sort_key=name primary_key=id", "sort_key=name primary_key=id"),
    ("plain-words", "password authentication failed for user app",
     "password authentication failed for user app"),
    ("timestamps", "2026-11-21 10:00:01 upgrade openssl:amd64 3.0.11-1 3.0.13-1",
     "2026-11-21 10:00:01 upgrade openssl:amd64 3.0.11-1 3.0.13-1"),
    ("plain-url", "GET https://example.com:8443/health?verbose=1",
     "GET https://example.com:8443/health?verbose=1"),
    ("already-redacted", "postgresql://app:***@db/x password=***",
     "postgresql://app:***@db/x password=***"),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in TEXT_CASES],
                         ids=[c[0] for c in TEXT_CASES])
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize("text", [c[2] for c in TEXT_CASES], ids=[c[0] for c in TEXT_CASES])
def test_redaction_is_idempotent(text: str) -> None:
    assert redact_text(text) == text


NAMES = [
    ("password", True), ("PGPASSWORD", True), ("db_passwd", True), ("ssh_passphrase", True),
    ("client_secret", True), ("AWS_SECRET_ACCESS_KEY", True), ("credentials", True),
    ("api_key", True), ("apiKey", True), ("X-Api-Key", True), ("private_key", True),
    ("access_token", True), ("GITHUB_TOKEN", True), ("DB_PASS", True), ("MYSQL_PWD", True),
    ("Authorization", True), ("Proxy-Authorization", True), ("Set-Cookie", True),
    ("token", True),
    ("keyboard", False), ("key", False), ("sort_key", False), ("primary_key", False),
    ("tokens_used", False), ("max_tokens", False), ("token_count", False),
    ("auth_method", False), ("author", False), ("passthrough", False), ("bypass_cache", False),
    ("user", False), ("host", False), ("compass", False),
]


@pytest.mark.parametrize(("name", "secret"), NAMES, ids=[n for n, _ in NAMES])
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_structures_are_walked_and_secret_keys_blanked() -> None:
    doc = {
        "password": "hunter2",
        "Token": 123456,
        "credentials": {"user": "app", "pass": "x", "ttl": 5},
        "api_keys_configured": True,
        "password_set": None,
        "sessions": [
            {"pid": 7, "query": "SELECT 1", "dsn": "postgresql://app:pw1@db/x"},
            ("ALTER USER app PASSWORD 'x'", "host=db password=pw2"),
        ],
        "tokens_used": 5,
        "keyboard": "us",
    }
    assert redact(doc) == {
        "password": "***",
        "Token": "***",
        "credentials": {"user": "***", "pass": "***", "ttl": "***"},
        "api_keys_configured": True,
        "password_set": None,
        "sessions": [
            {"pid": 7, "query": "SELECT 1", "dsn": "postgresql://app:***@db/x"},
            ["ALTER USER app PASSWORD 'x'", "host=db password=***"],
        ],
        "tokens_used": 5,
        "keyboard": "us",
    }


def test_redact_returns_a_copy() -> None:
    original = {"password": "x", "items": ["a"]}
    redact(original)
    assert original == {"password": "x", "items": ["a"]}


def test_known_literal_secrets_are_scrubbed_anywhere() -> None:
    doc = {
        "log": "login with Tr0ub4dor&3 failed",
        "encoded": "amqp://u:Tr0ub4dor%263@mq/",
        "nested": ["token was xoxb-1234-abcd at startup"],
        "key Tr0ub4dor&3": 1,
    }
    out = redact(doc, secrets=["Tr0ub4dor&3", Secret("xoxb-1234-abcd")])
    assert out == {
        "log": "login with *** failed",
        "encoded": "amqp://u:***@mq/",
        "nested": ["token was *** at startup"],
        "key ***": 1,
    }


def test_short_literal_secrets_are_not_scrubbed_as_literals() -> None:
    # A 1-3 character secret would shred every word containing it.
    assert redact("a cat sat", secrets=["a"]) == "a cat sat"


def test_non_json_values_become_redacted_text() -> None:
    class Conn:
        def __str__(self) -> str:
            return "<Conn postgresql://u:pw@h/db>"

    out = redact({"conn": Conn(), "tags": {"x"}, "n": 1.5})
    assert out == {"conn": "<Conn postgresql://u:***@h/db>", "tags": ["x"], "n": 1.5}
    assert json.loads(json.dumps(out)) == out


def test_mask_constant() -> None:
    assert MASK == "***"


@pytest.mark.parametrize("text", [
    "a-" * 100_000, "http://a:b" * 20_000, "http://a:" + "b" * 200_000, "k=v " * 50_000,
    "password=" * 30_000, "--x " * 50_000, "a: " * 60_000,
], ids=["dashed-word", "repeated-urls", "url-without-at", "pairs", "secret-keys", "options",
        "colons"])
def test_long_pathological_text_is_redacted_in_linear_time(text: str) -> None:
    # Diagnostics carry long log lines and command lines; a quadratic regex would
    # blow the capture's time budget on a single 200 KB string.
    started = time.monotonic()
    redact_text(text)
    assert time.monotonic() - started < 1.5


def test_query_parameters_of_the_default_list_and_configured_names_are_masked() -> None:
    from patrol.agent.diagnostics.redact import Policy

    policy = Policy.build(names=["X-Tenant-Seal", "pin"])
    text = ("GET https://h/x?key=k1&sig=s2&signature=s3&page=2&pin=p4 "
            "and https://h/y?X-Tenant-Seal=t5#top pin=p6 --pin p7")
    assert policy.text(text) == ("GET https://h/x?key=***&sig=***&signature=***&page=2&pin=*** "
                                 "and https://h/y?X-Tenant-Seal=***#top pin=*** --pin ***")
    assert policy.data({"Pin": "1234", "sort_key": "name"}) == {"Pin": "***",
                                                                 "sort_key": "name"}
    # "key" alone is a credential in a query, not in prose or as a dict key.
    assert policy.text("sort key=name") == "sort key=name"


def test_log_records_pass_through_the_policy() -> None:
    import io
    import logging

    from patrol.agent.diagnostics.redact import Policy, install_log_redaction

    logger = logging.getLogger("patrol.test.redact")
    written_to = io.StringIO()
    handler = logging.StreamHandler(written_to)
    logger.addHandler(handler)
    try:
        install_log_redaction(Policy.build(["literal-s3cret"]), logger)
        install_log_redaction(Policy.build(["literal-s3cret"]), logger)  # replaces, not stacks
        logger.warning("fetch %s failed for %s", "https://h/x?token=abc", "literal-s3cret")
        try:
            raise ValueError("dsn postgresql://u:pw-in-trace@h/db")
        except ValueError:
            logger.exception("boom")
    finally:
        logger.removeHandler(handler)
    assert len(handler.filters) == 1
    written = written_to.getvalue()
    assert "?token=***" in written and "abc" not in written
    assert "literal-s3cret" not in written and "pw-in-trace" not in written
