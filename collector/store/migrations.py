"""Numbered schema migrations, one list for both backends, tracked in ``schema_migrations``.

Each :class:`Migration` carries its SQL for SQLite and for PostgreSQL side by side, so
the two schemas cannot drift apart in numbering. Migrations only ever get appended;
a database that has a version this code does not know was written by a newer Patrol
and is refused rather than guessed at. Both backends apply every pending migration in
one transaction (DDL is transactional in SQLite and PostgreSQL), so a failed upgrade
leaves the previous schema intact.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from patrol.collector.store.base import StoreError
from patrol.collector.store.check_set_pulls import migration_sql as check_set_pulls_sql
from patrol.collector.store.history import migration_sql as history_sql
from patrol.collector.store.report_mailings import migration_sql as report_mailings_sql


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sqlite: tuple[str, ...]
    postgres: tuple[str, ...]


CREATE_TRACKING = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
)


def _tickets(ident: str, boolean: str, json: str, real: str) -> str:
    return f"""CREATE TABLE tickets (
        id {ident},
        number TEXT NOT NULL UNIQUE,
        dedup_key TEXT NOT NULL,
        title TEXT NOT NULL,
        host TEXT NOT NULL,
        check_name TEXT NOT NULL,
        check_type TEXT NOT NULL,
        severity TEXT NOT NULL,
        priority TEXT NOT NULL,
        status TEXT NOT NULL,
        category TEXT NOT NULL,
        opened_at {real} NOT NULL,
        first_seen {real} NOT NULL,
        last_seen {real} NOT NULL,
        respond_by {real} NOT NULL,
        resolve_by {real} NOT NULL,
        labels {json} NOT NULL,
        check_status TEXT NOT NULL,
        occurrences INTEGER NOT NULL,
        state_changes {json} NOT NULL,
        flapping {boolean} NOT NULL,
        recovered_at {real},
        acknowledged_at {real},
        resolved_at {real},
        closed_at {real},
        resolution TEXT,
        parent_id BIGINT REFERENCES tickets(id),
        is_group {boolean} NOT NULL,
        hosts {json} NOT NULL,
        previous_id BIGINT REFERENCES tickets(id),
        escalation INTEGER NOT NULL,
        runbook TEXT,
        measurements {json} NOT NULL,
        diagnostics {json} NOT NULL,
        body TEXT NOT NULL,
        version INTEGER NOT NULL
    )"""


def _initial(ident: str, boolean: str, json: str, real: str) -> tuple[str, ...]:
    return (
        _tickets(ident, boolean, json, real),
        # The dedup guarantee: one non-closed ticket per key, and per group key.
        "CREATE UNIQUE INDEX tickets_active_key ON tickets (dedup_key, is_group)"
        " WHERE status <> 'closed'",
        "CREATE INDEX tickets_key_opened ON tickets (dedup_key, opened_at)",
        "CREATE INDEX tickets_status_priority ON tickets (status, priority, respond_by)",
        "CREATE INDEX tickets_check_host ON tickets (check_name, host, opened_at)",
        "CREATE INDEX tickets_parent ON tickets (parent_id)",
        "CREATE TABLE ticket_serials (day TEXT PRIMARY KEY, last_serial INTEGER NOT NULL)",
        f"""CREATE TABLE timeline (
            id {ident},
            ticket_id BIGINT NOT NULL REFERENCES tickets(id),
            at {real} NOT NULL,
            kind TEXT NOT NULL,
            text TEXT NOT NULL,
            author TEXT NOT NULL,
            data {json} NOT NULL
        )""",
        "CREATE INDEX timeline_ticket ON timeline (ticket_id, at, id)",
        f"""CREATE TABLE events (
            event_id TEXT PRIMARY KEY,
            dedup_key TEXT NOT NULL,
            received_at {real} NOT NULL,
            payload {json} NOT NULL
        )""",
        "CREATE INDEX events_received ON events (received_at)",
        f"""CREATE TABLE hosts (
            host TEXT PRIMARY KEY,
            agent_id TEXT NOT NULL,
            version TEXT NOT NULL,
            labels {json} NOT NULL,
            last_heartbeat {real} NOT NULL,
            interval_seconds {real} NOT NULL,
            reachable {boolean} NOT NULL
        )""",
        f"""CREATE TABLE check_states (
            host TEXT NOT NULL,
            check_name TEXT NOT NULL,
            check_type TEXT NOT NULL,
            status TEXT NOT NULL,
            summary TEXT NOT NULL,
            since {real},
            last_run {real},
            PRIMARY KEY (host, check_name)
        )""",
        f"""CREATE TABLE maintenance (
            id {ident},
            spec {json} NOT NULL
        )""",
    )


def _dispatch(ident: str, json: str, real: str) -> tuple[str, ...]:
    """One row per helpdesk action to deliver (the outbox), and one per ticket and
    helpdesk once the external ticket exists (its id is stored the moment it is known)."""
    return (
        f"""CREATE TABLE dispatch (
            id {ident},
            ticket_id BIGINT NOT NULL REFERENCES tickets (id),
            helpdesk TEXT NOT NULL,
            action TEXT NOT NULL,
            payload {json} NOT NULL,
            created_at {real} NOT NULL,
            next_at {real} NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            state TEXT NOT NULL DEFAULT 'pending',
            last_error TEXT,
            done_at {real}
        )""",
        "CREATE INDEX dispatch_due ON dispatch (state, next_at)",
        "CREATE INDEX dispatch_ticket ON dispatch (ticket_id, helpdesk, id)",
        f"""CREATE TABLE ticket_links (
            ticket_id BIGINT NOT NULL REFERENCES tickets (id),
            helpdesk TEXT NOT NULL,
            external_id TEXT NOT NULL,
            url TEXT,
            destination {json} NOT NULL,
            remote_state TEXT,
            remote_assignee TEXT,
            synced_at {real},
            error TEXT,
            PRIMARY KEY (ticket_id, helpdesk)
        )""",
    )


def _credentials(ident: str, real: str) -> tuple[str, ...]:
    return (
        f"""CREATE TABLE credentials (
            id {ident},
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            token_sha256 TEXT NOT NULL UNIQUE,
            hosts TEXT NOT NULL,
            created_at {real} NOT NULL,
            expires_at {real},
            revoked_at {real},
            created_by TEXT NOT NULL
        )""",
        "CREATE INDEX credentials_kind_name ON credentials (kind, name)",
        f"""CREATE TABLE web_sessions (
            id {ident},
            session_sha256 TEXT NOT NULL UNIQUE,
            operator TEXT NOT NULL,
            csrf TEXT NOT NULL,
            created_at {real} NOT NULL,
            expires_at {real} NOT NULL,
            revoked_at {real}
        )""",
        "CREATE TABLE collector_keys (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    )


def _list_order() -> tuple[str, ...]:
    """The ticket list's order (collector/store/sql.py ``list_tickets``, whose
    expressions must stay exactly these for SQLite to use the index): open tickets
    first by priority, respond-by, newest; then the rest, newest first. ``status``
    last, so a status filter is checked in the index while it is read in order."""
    is_open = "status IN ('new', 'in_progress', 'pending')"
    return (f"CREATE INDEX tickets_list_order ON tickets ((CASE WHEN {is_open} THEN 0 ELSE 1"
            f" END), (CASE WHEN {is_open} THEN priority END), (CASE WHEN {is_open} THEN"
            " respond_by END), opened_at DESC, id DESC, status)",)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1, "tickets, timeline, events, hosts, check states, maintenance",
        sqlite=_initial("INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER", "TEXT", "REAL"),
        postgres=_initial("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "BOOLEAN",
                          "JSONB", "DOUBLE PRECISION"),
    ),
    Migration(
        2, "check states remember their interval, so silence can be noticed",
        sqlite=("ALTER TABLE check_states ADD COLUMN interval_seconds REAL",),
        postgres=("ALTER TABLE check_states ADD COLUMN interval_seconds DOUBLE PRECISION",),
    ),
    Migration(
        3, "helpdesk dispatch outbox and links to external tickets",
        sqlite=_dispatch("INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT", "REAL"),
        postgres=_dispatch("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "JSONB",
                           "DOUBLE PRECISION"),
    ),
    Migration(
        4, "find a host's open tickets without a scan (every heartbeat does)",
        sqlite=("CREATE INDEX tickets_host_status ON tickets (host, status)",),
        postgres=("CREATE INDEX tickets_host_status ON tickets (host, status)",),
    ),
    Migration(
        5, "dispatch rows remember which collector leased them",
        sqlite=("ALTER TABLE dispatch ADD COLUMN lease_owner TEXT",),
        postgres=("ALTER TABLE dispatch ADD COLUMN lease_owner TEXT",),
    ),
    Migration(
        6, "check states remember when their next run is due and how long one may take,"
           " so a cron check is judged against its schedule, not an interval; hosts"
           " remember their time zone, for maintenance windows in host time",
        sqlite=("ALTER TABLE check_states ADD COLUMN next_due REAL",
                "ALTER TABLE check_states ADD COLUMN timeout_seconds REAL",
                "ALTER TABLE hosts ADD COLUMN timezone TEXT"),
        postgres=("ALTER TABLE check_states ADD COLUMN next_due DOUBLE PRECISION",
                  "ALTER TABLE check_states ADD COLUMN timeout_seconds DOUBLE PRECISION",
                  "ALTER TABLE hosts ADD COLUMN timezone TEXT"),
    ),
    Migration(
        7, "hosts remember where their agent serves /metrics, for Prometheus discovery",
        sqlite=("ALTER TABLE hosts ADD COLUMN metrics_address TEXT",),
        postgres=("ALTER TABLE hosts ADD COLUMN metrics_address TEXT",),
    ),
    Migration(
        8, "credentials (per-agent tokens bound to hosts, named operator tokens, one-time"
           " login codes) stored as SHA-256; web sessions; the key that signs their cookies",
        sqlite=_credentials("INTEGER PRIMARY KEY AUTOINCREMENT", "REAL"),
        postgres=_credentials("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                              "DOUBLE PRECISION"),
    ),
    Migration(
        9, "measurement history (hourly and daily rollups, breach series) and the"
           " knowledge archive of resolutions",
        sqlite=history_sql("INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT", "REAL"),
        postgres=history_sql("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "JSONB",
                             "DOUBLE PRECISION"),
    ),
    Migration(
        10, "list tickets in the ticket list's order without sorting every ticket (100,000"
            " open: 0.3-1 s per page before)",
        sqlite=_list_order(),
        postgres=_list_order(),
    ),
    Migration(
        11, "which scheduled report was mailed, shared by replicas (a .sent file in each"
            " replica's own archive folder let a new leader mail a report again)",
        sqlite=report_mailings_sql("REAL"),
        postgres=report_mailings_sql("DOUBLE PRECISION"),
    ),
    Migration(
        12, "each host's last check-set pull, shared by replicas and kept across restarts"
            " (it was in one collector process's memory)",
        sqlite=check_set_pulls_sql("REAL"),
        postgres=check_set_pulls_sql("DOUBLE PRECISION"),
    ),
)

LATEST = MIGRATIONS[-1].version


def pending(applied: set[int]) -> list[Migration]:
    """The migrations still to apply, in order; refuses a schema newer than this code."""
    unknown = sorted(v for v in applied if v > LATEST)
    if unknown:
        raise StoreError(
            f"the database has schema version {unknown[-1]} but this Patrol knows only up "
            f"to {LATEST}; upgrade Patrol or point it at another database")
    return [m for m in MIGRATIONS if m.version not in applied]


Rows = Callable[..., list[Mapping[str, Any]]]
Run = Callable[..., int]


def apply(rows: Rows, run: Run, dialect: str) -> list[int]:
    """Apply pending migrations inside the caller's transaction; the versions applied."""
    run(CREATE_TRACKING)
    todo = pending({row["version"] for row in rows("SELECT version FROM schema_migrations")})
    for migration in todo:
        for statement in getattr(migration, dialect):
            run(statement)
        run("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, time.time()))
    return [m.version for m in todo]


def current(rows: Rows) -> int:
    """The highest applied version (0 for an empty database)."""
    found = rows("SELECT MAX(version) AS version FROM schema_migrations")
    return found[0]["version"] or 0
