"""PostgreSQL connections: how close the server is to refusing new clients.

Decision: the ratio's denominator is the number of slots *ordinary* clients can use,
``max_connections - superuser_reserved_connections - reserved_connections`` (the last
exists from PostgreSQL 16). That is the point where applications get "remaining
connection slots are reserved" and fail; the superuser slots are for the operator who
comes to fix it. ``max_connections`` itself is emitted as a measurement too, and the
summary shows the usable number ("172/197").

Only ``client backend`` rows of ``pg_stat_activity`` count: autovacuum, WAL senders
and background workers have slots of their own. The check's own session counts (it
occupies a slot) but is excluded from the query/transaction ages. Needs PostgreSQL 10+;
a role that is not superuser should be granted ``pg_monitor`` so the ages and the
diagnostics see other roles' sessions.

The connection is pg8000's, through :mod:`checks.postgres_pg8000` (libpq's DSN forms,
environment, ~/.pgpass and sslmodes): psycopg and its libpq cost the agent twice the
memory for three statements.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from patrol.checks import dsn as dsnlib
from patrol.checks import postgres_pg8000 as pg
from patrol.checks.base import (
    CheckError,
    ConfigClass,
    Measurement,
    MeasurementSpec,
    Result,
    RunContext,
    Status,
)
from patrol.checks.schemas import config_schema
from patrol.checks.thresholds import limit_text
from patrol.contract.units import format_duration, format_number, format_ratio

if TYPE_CHECKING:
    from patrol.checks.schemas.postgres import PostgresConfig

DEFAULT_PORT = 5432
STATES = ("active", "idle", "idle in transaction", "idle in transaction (aborted)")
IDLE_IN_TX = ("idle in transaction", "idle in transaction (aborted)")
QUERY_TEXT_LIMIT = 500
DIAGNOSE_ROWS = 20

_SETTINGS = """
SELECT current_setting('max_connections')::int,
       current_setting('superuser_reserved_connections')::int,
       coalesce(current_setting('reserved_connections', true), '0')::int
"""
_BY_STATE = """
SELECT coalesce(state, 'unknown'), count(*)::int
  FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1
"""
_AGES = """
SELECT coalesce(max(extract(epoch FROM now() - query_start))
                FILTER (WHERE state IN ('active', 'fastpath function call')), 0)::float8,
       coalesce(max(extract(epoch FROM now() - xact_start)), 0)::float8
  FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
"""


class PostgresCheck:
    """Connections used vs usable slots (warning 80 %, critical 90 %), by state."""

    type: ClassVar[str] = "postgres"
    Config: ClassVar[ConfigClass] = config_schema("postgres", "PostgresConfig")
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = (
        MeasurementSpec(
            "used_ratio", "client connections / (max_connections - reserved slots)",
            True, 0.80, 0.90, primary=True,
        ),
        MeasurementSpec("connections", "client backend sessions, this check's included"),
        MeasurementSpec("max_connections", "the max_connections setting"),
        MeasurementSpec("usable_connections", "max_connections minus superuser-reserved slots"),
        MeasurementSpec("connections_by_state", "client sessions per state (item = state)"),
        MeasurementSpec("idle_in_transaction", "sessions idle inside an open transaction"),
        MeasurementSpec("oldest_query_seconds", "age of the oldest running statement"),
        MeasurementSpec("oldest_transaction_seconds", "age of the oldest open transaction"),
    )
    REQUIRES: ClassVar[tuple[str, ...]] = ("pg8000",)
    DIAGNOSTICS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: PostgresConfig, connect: Callable[..., Any] | None = None) -> None:
        """``connect(conninfo, **kwargs)`` returns a psycopg-like connection
        (``execute(sql).fetchall()``, ``close()``) or raises
        :class:`~checks.postgres_pg8000.ConnectFailed`; default
        :func:`checks.postgres_pg8000.connect`."""
        self.config = config
        self._connect = connect

    # -- acquire ---------------------------------------------------------------------
    def _open(self) -> Any:
        connect = self._connect or pg.connect
        conn = connect(
            self.config.dsn.reveal(),
            connect_timeout=self.config.connect_timeout,
            fallback_application_name="patrol",
        )
        try:  # a SET, not a startup parameter: poolers such as PgBouncer refuse those
            conn.execute(f"SET statement_timeout = {int(self.config.connect_timeout * 1000)}")
        except pg.QueryFailed as exc:  # the session is not usable
            conn.close()
            raise pg.ConnectFailed(str(exc)) from None
        except BaseException:
            conn.close()
            raise
        return conn

    def _redact(self, exc: BaseException) -> str:
        return dsnlib.error_text(exc, self.config.dsn.reveal())

    def run(self, ctx: RunContext) -> Result:
        try:
            conn = self._open()
        except pg.ConnectFailed as exc:  # refused, timed out, TLS, auth failed: broken
            return dsnlib.cannot_connect("PostgreSQL", self.config.dsn.reveal(), DEFAULT_PORT,
                                         exc, ctx.hostname)
        except ValueError as exc:  # e.g. a malformed DSN: we could not even try
            # from None: the cause may quote the DSN, password included
            raise CheckError(f"cannot use the dsn: {dsnlib.one_line(self._redact(exc))}") from None
        try:
            max_conn, su_reserved, reserved = conn.execute(_SETTINGS).fetchall()[0]
            by_state = {state: int(n) for state, n in conn.execute(_BY_STATE).fetchall()}
            oldest_query, oldest_tx = conn.execute(_AGES).fetchall()[0]
        except pg.QueryFailed as exc:
            raise CheckError(
                f"cannot read pg_stat_activity: {dsnlib.one_line(self._redact(exc))}"
            ) from None
        finally:
            conn.close()
        return self._evaluate(
            ctx, int(max_conn), int(su_reserved) + int(reserved), by_state,
            float(oldest_query), float(oldest_tx),
        )

    # -- evaluate and present ----------------------------------------------------------
    def _evaluate(
        self, ctx: RunContext, max_conn: int, reserved: int, by_state: dict[str, int],
        oldest_query: float, oldest_tx: float,
    ) -> Result:
        usable = max(1, max_conn - reserved)
        used = sum(by_state.values())
        idle_tx = sum(by_state.get(state, 0) for state in IDLE_IN_TX)
        states = {state: 0 for state in STATES} | by_state
        measurements = (
            Measurement("used_ratio", used / usable),
            Measurement("connections", float(used)),
            Measurement("max_connections", float(max_conn)),
            Measurement("usable_connections", float(usable)),
            *(Measurement("connections_by_state", float(n), state)
              for state, n in sorted(states.items())),
            Measurement("idle_in_transaction", float(idle_tx)),
            Measurement("oldest_query_seconds", oldest_query),
            Measurement("oldest_transaction_seconds", oldest_tx),
        )
        judged = [(m, ctx.judge(m)) for m in measurements]
        status = Status.worst(*(s for _, s in judged))
        share = format_ratio(used / usable)
        summary = f"PostgreSQL connections {used}/{usable} ({share}) on {ctx.hostname}"
        levels = ctx.evaluator.levels
        note = limit_text(levels("used_ratio"), judged[0][1], measurements[0].value)
        summary += f" ({note})" if note else ""
        texts = {
            "idle_in_transaction": f"{idle_tx} idle in transaction",
            "oldest_query_seconds": f"oldest query running {format_duration(oldest_query)}",
            "oldest_transaction_seconds": f"oldest transaction open {format_duration(oldest_tx)}",
        }
        for m, s in judged[1:]:
            note = limit_text(levels(m.name, m.item), s, m.value)
            if note or (m.name == "idle_in_transaction" and idle_tx):
                text = texts.get(m.name, f"{m.key} {format_number(m.value)}")
                summary += f"; {text} ({note})" if note else f"; {text}"
        return Result(status, summary, measurements)

    # -- diagnostics at breach ---------------------------------------------------------
    def diagnose(self, result: Result) -> dict[str, Any]:
        """Sessions by state, user, client and application; the longest running
        statements; the sessions idle in a transaction. Own session excluded.
        A database error (it may be why we are here) is returned as ``{"error": ...}``."""
        try:
            conn = self._open()
            try:
                rows = conn.execute(_SESSIONS).fetchall()
            finally:
                conn.close()
        except (pg.ConnectFailed, pg.QueryFailed, ValueError) as exc:  # say so, redacted
            return {"error": dsnlib.one_line(self._redact(exc), 4096)}
        sessions = [dict(zip(_SESSION_COLUMNS, row, strict=True)) for row in rows]
        for s in sessions:
            s["query"] = (s["query"] or "")[:QUERY_TEXT_LIMIT]
            for key in ("query_age_seconds", "xact_age_seconds", "state_age_seconds"):
                s[key] = None if s[key] is None else round(float(s[key]), 1)
        running = [s for s in sessions if s["state"] not in ("idle", *IDLE_IN_TX)
                   and s["query_age_seconds"] is not None]
        running.sort(key=lambda s: s["query_age_seconds"], reverse=True)
        idle_tx = [s for s in sessions if s["state"] in IDLE_IN_TX]
        idle_tx.sort(key=lambda s: s["xact_age_seconds"] or 0, reverse=True)
        return {
            "sessions": len(sessions),
            "by_state": dsnlib.tally(s["state"] for s in sessions),
            "by_user": dsnlib.tally(s["user"] for s in sessions),
            "by_client": dsnlib.tally(s["client"] for s in sessions),
            "by_application": dsnlib.tally(s["application_name"] for s in sessions),
            "longest_queries": [_pick(s, _QUERY_FIELDS) for s in running[:DIAGNOSE_ROWS]],
            "idle_in_transaction": [_pick(s, _IDLE_FIELDS) for s in idle_tx[:DIAGNOSE_ROWS]],
        }


_SESSION_COLUMNS = (
    "pid", "user", "application_name", "client", "state", "query_age_seconds",
    "xact_age_seconds", "state_age_seconds", "query",
)
_QUERY_FIELDS = ("pid", "user", "application_name", "client", "state", "query_age_seconds",
                 "query")
_IDLE_FIELDS = ("pid", "user", "application_name", "client", "state", "xact_age_seconds",
                "state_age_seconds", "query")
_SESSIONS = """
SELECT pid, coalesce(usename, ''), coalesce(application_name, ''),
       coalesce(host(client_addr), CASE WHEN client_port = -1 THEN 'local' ELSE '' END),
       coalesce(state, 'unknown'),
       extract(epoch FROM now() - query_start)::float8,
       extract(epoch FROM now() - xact_start)::float8,
       extract(epoch FROM now() - state_change)::float8,
       query
  FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
"""


def _pick(row: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {key: row[key] for key in fields}
