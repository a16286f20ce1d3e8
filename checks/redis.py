"""Redis clients: ``connected_clients`` against ``maxclients``, and memory headroom.

Past ``maxclients`` Redis answers new connections with "max number of clients
reached", so that ratio is the headline. ``connected_clients`` includes the check's own
connection. ``blocked_clients`` has no default threshold: queue workers waiting in
BLPOP/XREAD are blocked by design; set ``thresholds: {blocked_clients: ...}`` where
blocking means trouble. ``memory_used_ratio`` is emitted only when ``maxmemory`` is set,
also without a default threshold: a cache with an eviction policy runs full on purpose,
while with ``noeviction`` writes fail at 100 %; the summary names the policy.

The client is :mod:`checks.redis_resp` (RESP2 over TCP, TLS or a unix socket), not
redis-py: the check needs six commands, and redis-py cost the agent ~13.5 MiB PSS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from patrol.checks import dsn as dsnlib
from patrol.checks import redis_resp
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
from patrol.contract.units import format_bytes, format_number, format_ratio

if TYPE_CHECKING:
    from patrol.checks.schemas.redis import RedisConfig

DEFAULT_PORT = 6379
DIAGNOSE_ROWS = 20


class RedisCheck:
    """Clients used vs ``maxclients`` (warning 80 %, critical 90 %), memory, blocked."""

    type: ClassVar[str] = "redis"
    Config: ClassVar[ConfigClass] = config_schema("redis", "RedisConfig")
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = (
        MeasurementSpec(
            "used_ratio", "connected_clients / maxclients", True, 0.80, 0.90, primary=True,
        ),
        MeasurementSpec("connected_clients", "client connections, this check's included"),
        MeasurementSpec("maxclients", "the maxclients setting"),
        MeasurementSpec("blocked_clients", "clients waiting in a blocking command"),
        MeasurementSpec("used_memory_bytes", "memory allocated by Redis for data"),
        MeasurementSpec("maxmemory_bytes", "the maxmemory setting; 0 means no limit"),
        MeasurementSpec("memory_used_ratio", "used_memory / maxmemory, when maxmemory is set"),
    )
    REQUIRES: ClassVar[tuple[str, ...]] = ()
    DIAGNOSTICS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: RedisConfig, connect: Callable[..., Any] | None = None) -> None:
        """``connect(url, **kwargs)`` returns a redis-py-like client (``ping``, ``info``,
        ``client_list``, ``client_id``, ``close``); default
        :meth:`checks.redis_resp.Client.from_url`."""
        self.config = config
        self._connect = connect

    def _redact(self, exc: BaseException) -> str:
        return dsnlib.error_text(exc, self.config.url.reveal())

    def _open(self) -> Any:
        connect = self._connect or redis_resp.Client.from_url
        timeout = self.config.connect_timeout
        try:
            client = connect(
                self.config.url.reveal(), socket_connect_timeout=timeout, socket_timeout=timeout,
                client_name="patrol", decode_responses=True,
            )
        except ValueError as exc:  # a malformed URL: we could not even try
            # from None: the cause may quote the URL, password included
            raise CheckError(f"cannot use the url: {dsnlib.one_line(self._redact(exc))}") from None
        return client

    def run(self, ctx: RunContext) -> Result:
        client = self._open()
        try:
            try:
                client.ping()
            except redis_resp.ConnectError as exc:  # refused, timed out, TLS, auth failed
                return dsnlib.cannot_connect("Redis", self.config.url.reveal(), DEFAULT_PORT,
                                             exc, ctx.hostname)
            except redis_resp.RedisError as exc:  # e.g. an ACL user without +ping
                raise CheckError(
                    f"cannot ping Redis: {dsnlib.one_line(self._redact(exc))}"
                ) from None
            try:
                clients = client.info("clients")
                memory = client.info("memory")
                maxclients = clients.get("maxclients")
                if maxclients is None:  # before Redis 7.0 INFO does not carry it
                    maxclients = client.config_get("maxclients")["maxclients"]
            except redis_resp.RedisError as exc:
                raise CheckError(
                    f"cannot read INFO: {dsnlib.one_line(self._redact(exc))}"
                ) from None
        finally:
            client.close()
        return self._evaluate(ctx, clients, memory, int(maxclients))

    def _evaluate(
        self, ctx: RunContext, clients: dict[str, Any], memory: dict[str, Any], maxclients: int,
    ) -> Result:
        connected = int(clients.get("connected_clients", 0))
        blocked = int(clients.get("blocked_clients", 0))
        used_memory = int(memory.get("used_memory", 0))
        maxmemory = int(memory.get("maxmemory", 0))
        ratio = connected / max(1, maxclients)
        measurements = [
            Measurement("used_ratio", ratio),
            Measurement("connected_clients", float(connected)),
            Measurement("maxclients", float(maxclients)),
            Measurement("blocked_clients", float(blocked)),
            Measurement("used_memory_bytes", float(used_memory)),
            Measurement("maxmemory_bytes", float(maxmemory)),
        ]
        if maxmemory > 0:
            measurements.append(Measurement("memory_used_ratio", used_memory / maxmemory))
        judged = [(m, ctx.judge(m)) for m in measurements]
        summary = (
            f"Redis clients {connected}/{maxclients} ({format_ratio(ratio)}) on {ctx.hostname}"
        )
        levels = ctx.evaluator.levels
        note = limit_text(levels("used_ratio"), judged[0][1], ratio)
        summary += f" ({note})" if note else ""
        for m, status in judged[1:]:
            note = limit_text(levels(m.name, m.item), status, m.value)
            if m.name == "blocked_clients" and (blocked or note):
                summary += f"; {blocked} blocked" + (f" ({note})" if note else "")
            elif m.name == "memory_used_ratio":
                summary += (
                    f"; memory {format_bytes(used_memory)} of {format_bytes(maxmemory)} "
                    f"({format_ratio(m.value)}, {memory.get('maxmemory_policy', '?')})"
                    + (f" ({note})" if note else "")
                )
            elif note:
                summary += f"; {m.name} {format_number(m.value)} ({note})"
        return Result(Status.worst(*(s for _, s in judged)), summary, tuple(measurements))

    def diagnose(self, result: Result) -> dict[str, Any]:
        """CLIENT LIST (own connection excluded) counted by client host, name, last
        command and db; the oldest, the most idle and the blocked clients; INFO clients.
        A Redis error (it may be why we are here) is returned as ``{"error": ...}``."""
        client = self._open()
        try:
            own = client.client_id()
            raw = client.client_list()
            info = client.info("clients")
        except redis_resp.RedisError as exc:  # the breach may be "cannot connect": say so, redacted
            return {"error": dsnlib.one_line(self._redact(exc), 4096)}
        finally:
            client.close()
        clients = [_client(entry) for entry in raw if str(entry.get("id")) != str(own)]
        oldest = sorted(clients, key=lambda c: c["age_seconds"], reverse=True)
        idlest = sorted(clients, key=lambda c: c["idle_seconds"], reverse=True)
        return {
            "clients": len(clients),
            "by_host": dsnlib.tally(c["host"] for c in clients),
            "by_name": dsnlib.tally(c["name"] for c in clients),
            "by_cmd": dsnlib.tally(c["cmd"] for c in clients),
            "by_db": dsnlib.tally(str(c["db"]) for c in clients),
            "oldest": oldest[:DIAGNOSE_ROWS],
            "most_idle": idlest[:DIAGNOSE_ROWS],
            "blocked": [c for c in clients if "b" in c["flags"]][:DIAGNOSE_ROWS],
            "info_clients": {k: v for k, v in info.items() if isinstance(v, (int, float, str))},
        }


def _client(entry: dict[str, Any]) -> dict[str, Any]:
    """One CLIENT LIST entry, the fields a person reads, numbers as numbers."""
    addr = str(entry.get("addr", ""))
    return {
        "id": int(entry.get("id", 0)),
        "addr": addr,
        "host": addr.rpartition(":")[0] or addr,
        "name": entry.get("name", ""),
        "user": entry.get("user", ""),
        "db": int(entry.get("db", 0)),
        "cmd": entry.get("cmd", ""),
        "flags": entry.get("flags", ""),
        "age_seconds": int(entry.get("age", 0)),
        "idle_seconds": int(entry.get("idle", 0)),
    }
