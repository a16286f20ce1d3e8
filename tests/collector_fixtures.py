"""Builders for collector tests: wire events and heartbeats, a fake clock, and stores.

Times: ``T0`` is 2023-10-27T09:00:00Z, so ticket numbers read ``TS20231027NNN``.
The clock is a one-element list the engine reads through a lambda, so a test moves
time with ``clock.advance(seconds)`` and every component (engine, watchdog, API) sees it.
"""

from __future__ import annotations

import itertools
import secrets
from datetime import UTC, datetime
from typing import Any

import pytest

from patrol.collector.engine import Engine
from patrol.collector.policy.settings import PolicyConfig
from patrol.collector.store import TicketStore, open_store
from patrol.collector.watchdog.timers import Watchdog
from patrol.contract.wire import (
    SEVERITY_OF_STATUS,
    AgentRef,
    CheckSnapshot,
    Event,
    Heartbeat,
    MeasurementValue,
)

T0 = datetime(2023, 10, 27, 9, 0, tzinfo=UTC).timestamp()
DAY = "20231027"
MINUTE, HOUR = 60.0, 3600.0
AGENT_TOKEN = "agent-token-0123456789"
OPERATOR_TOKEN = "operator-token-0123456789"

_ids = itertools.count(1)
_sequence = itertools.count(1)


class Clock:
    """A settable clock: ``clock()`` is now, ``advance`` moves it forward."""

    def __init__(self, start: float = T0) -> None:
        self.now = [start]

    def __call__(self) -> float:
        return self.now[0]

    def advance(self, seconds: float) -> float:
        self.now[0] += seconds
        return self.now[0]


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def event(host: str = "db-01", check: str = "root-disk", *, status: str = "CRITICAL",
          severity: str | None = None, check_type: str = "disk",
          labels: dict[str, str] | None = None, summary: str | None = None,
          observed_at: float = T0, event_id: str | None = None, agent: str | None = None,
          sequence: int | None = None, **extra: Any) -> Event:
    """A wire event for ``check`` on ``host``: trigger unless ``status`` is OK."""
    return Event(
        event_id=event_id or f"evt-{next(_ids):08d}-{secrets.token_hex(4)}",
        dedup_key=f"{host}/{check}",
        action="resolve" if status == "OK" else "trigger",
        severity=severity or SEVERITY_OF_STATUS[status],  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        previous_status="CRITICAL" if status == "OK" else "OK",
        summary=summary or (f"{check} is OK again on {host}" if status == "OK"
                            else f"/var is 96.2% full on {host} (critical at 95%)"),
        source=host, check=check, type=check_type,
        labels={"tier": "standard"} if labels is None else labels,
        observed_at=at(observed_at),
        agent=AgentRef(id=agent or f"agent-{host}", version="0.1.0"),
        sequence=next(_sequence) if sequence is None else sequence,
        **extra,
    )


def disk_evidence() -> dict[str, Any]:
    """Measurements, thresholds and diagnostics as the disk check sends them."""
    return {
        "measurements": [MeasurementValue(name="used_ratio", value=0.962, item="/var")],
        "thresholds": {"used_ratio[/var]": {"warning": 0.9, "critical": 0.95}},
        "diagnostics": {"check": {"largest_directories": [
            {"path": "/var/log/journal", "size_bytes": 4.2e9}]},
            "host": {"os": "Debian GNU/Linux 12 (bookworm)", "kernel": "6.1.0-18-amd64"}},
    }


def snapshot(check: str = "root-disk", status: str = "OK", *, check_type: str = "disk",
             summary: str | None = None, since: float | None = None,
             last_run: float | None = None, interval: float | None = 60.0,
             labels: dict[str, str] | None = None) -> CheckSnapshot:
    return CheckSnapshot(
        check=check, type=check_type, status=status,  # type: ignore[arg-type]
        summary=summary or f"{check} is {status}", since=None if since is None else at(since),
        last_run=None if last_run is None else at(last_run), labels=labels or {},
        interval_seconds=interval)


def heartbeat(host: str = "db-01", checks: list[CheckSnapshot] | None = None, *,
              sent_at: float = T0, interval: float = 30.0,
              labels: dict[str, str] | None = None) -> Heartbeat:
    return Heartbeat(source=host, agent=AgentRef(id=f"agent-{host}", version="0.1.0"),
                     sequence=next(_sequence), sent_at=at(sent_at), interval_seconds=interval,
                     labels={"tier": "standard"} if labels is None else labels,
                     checks=checks or [])


def event_json(ev: Event) -> dict[str, Any]:
    return ev.model_dump(mode="json")


# -- stores ----------------------------------------------------------------------------


def store_for(kind: str, request: pytest.FixtureRequest, tmp_path: Any) -> TicketStore:
    """A fresh, migrated store: a SQLite file in tmp_path, or a fresh PostgreSQL schema
    in the session's database (``pg_schema_url`` in tests/conftest.py). The caller
    closes it."""
    if kind == "sqlite":
        return open_store(f"sqlite:///{tmp_path}/patrol.db")
    return open_store(request.getfixturevalue("pg_schema_url"), pool_size=16)


class World:
    """A store, an engine on a fake clock, and its watchdog."""

    def __init__(self, store: TicketStore, policy: PolicyConfig | None = None) -> None:
        self.store = store
        self.clock = Clock()
        self.engine = Engine(store, policy or PolicyConfig(), clock=self.clock)
        self.watchdog = Watchdog(self.engine)

    def ingest(self, *events: Event) -> list[Any]:
        return self.engine.ingest(list(events))

    def one(self, ev: Event) -> Any:
        return self.engine.ingest([ev])[0]

    def ticket(self, number: str) -> Any:
        found = self.store.get_ticket(number)
        assert found is not None, f"no ticket {number}"
        return found

    def kinds(self, number: str) -> list[str]:
        return [e.kind for e in self.store.timeline(self.ticket(number).id)]

    def texts(self, number: str, kind: str) -> list[str]:
        return [e.text for e in self.store.timeline(self.ticket(number).id) if e.kind == kind]

    def tick(self, seconds: float = 0.0) -> dict[str, int]:
        self.clock.advance(seconds)
        return self.watchdog.run_once()
