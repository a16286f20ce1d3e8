"""The watchdog's lead on PostgreSQL: one holder per schema, free again when its session
ends; SQLite is always led by its only collector. (Real processes killed with -9:
tests/test_watchdog_leader.py.)"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from patrol.collector.watchdog.leader import AlwaysLeader, PostgresLeadership, leadership_for


def test_one_holder_per_schema_and_the_lead_frees_when_the_session_ends(
        pg_schema_url: str) -> None:
    first, second = PostgresLeadership(pg_schema_url), PostgresLeadership(pg_schema_url)
    try:
        assert (first.lead(), second.lead()) == (True, False)
        assert (first.lead(), second.lead()) == (True, False)  # re-asked every pass
        first.close()
        assert second.lead() is True
        assert first.lead() is False
    finally:
        first.close()
        second.close()


def test_collectors_of_different_schemas_do_not_compete(
        pg_schema_url: str, postgres_dsn: str, pg_database: Callable[[str], str]) -> None:
    other_schema = pg_schema_url.rsplit("%3D", 1)[0] + "%3Dt_other_install"
    with psycopg.connect(pg_database(postgres_dsn), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS t_other_install")
    ours, theirs = PostgresLeadership(pg_schema_url), PostgresLeadership(other_schema)
    try:
        assert (ours.lead(), theirs.lead()) == (True, True)
    finally:
        ours.close()
        theirs.close()


def test_a_lost_connection_loses_the_lead_and_it_is_taken_again(pg_schema_url: str) -> None:
    leader = PostgresLeadership(pg_schema_url)
    try:
        assert leader.lead() is True
        with psycopg.connect(pg_schema_url, autocommit=True) as admin:
            ended = admin.execute(  # the session holding this schema's lead, only
                "SELECT pg_terminate_backend(pid) FROM pg_locks JOIN pg_database d"
                " ON d.oid = pg_locks.database WHERE d.datname = current_database()"
                " AND locktype = 'advisory' AND classid = 7284"
                " AND objid = hashtext(current_schema())::oid").fetchall()
        assert ended == [(True,)]
        assert leader.lead() is False  # its session is gone, so is the lock
        assert leader.lead() is True  # reconnected, and nobody else held it
    finally:
        leader.close()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_always_leads(backend: str) -> None:
    assert isinstance(leadership_for("sqlite:///x.db", backend), AlwaysLeader)
    assert AlwaysLeader().lead() is True
