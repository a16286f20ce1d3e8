"""Fixtures shared across the suite.

Servers this machine may or may not run (PostgreSQL, MariaDB, Redis, promtool,
monitoring-plugins): on a developer's machine without them the tests that need them
skip with the reason; with ``PATROL_REQUIRE_SERVICES=1`` (set by ``.ci/run``) a
missing one fails the test instead, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

REQUIRE = os.environ.get("PATROL_REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> None:
    """Skip (developer machine) or fail (CI) because a real dependency is missing."""
    if REQUIRE:
        pytest.fail(f"required for this test but missing: {reason}", pytrace=False)
    pytest.skip(reason)


def require_port(host: str, port: int, what: str) -> None:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError as exc:
        unavailable(f"{what} is not reachable on {host}:{port} ({exc})")


def require_command(path_or_name: str, package: str) -> str:
    found = shutil.which(path_or_name)
    if not found:
        unavailable(f"{path_or_name} not found; install Debian's '{package}' package")
    return found


@pytest.fixture
def postgres_dsn() -> str:
    require_port("127.0.0.1", 5432, "PostgreSQL")
    return os.environ.get("PATROL_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def pg_database() -> Iterator[Callable[[str], str]]:
    """``get(admin_dsn)`` -> the URL of a uniquely named database made on first use for
    this session, dropped (``WITH (FORCE)``) at its end. A callable because
    ``postgres_dsn`` (which skips or fails without PostgreSQL) is per test."""
    made: dict[str, str] = {}

    def get(admin_dsn: str) -> str:
        if "url" not in made:
            import psycopg

            name = f"patrol_test_{os.getpid()}_{secrets.token_hex(3)}"
            with psycopg.connect(admin_dsn, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            made.update(admin=admin_dsn, name=name,
                        url=urlunsplit(urlsplit(admin_dsn)._replace(path=f"/{name}")))
        return made["url"]

    yield get
    if "name" in made:
        import psycopg

        with psycopg.connect(made["admin"], autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{made["name"]}" WITH (FORCE)')


@pytest.fixture
def pg_schema_url(postgres_dsn: str, pg_database: Callable[[str], str]) -> str:
    """The URL of a fresh, empty schema (first on ``search_path``) in the session's
    database: one test's tables never meet another's."""
    database = pg_database(postgres_dsn)
    schema = f"t_{secrets.token_hex(4)}"
    import psycopg

    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{database}?options=-csearch_path%3D{schema}"


@pytest.fixture
def mysql_server() -> dict[str, object]:
    require_port("127.0.0.1", 3306, "MariaDB/MySQL")
    return {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}


@pytest.fixture
def redis_url() -> str:
    require_port("127.0.0.1", 6379, "Redis")
    return "redis://127.0.0.1:6379/0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
