"""The incidents a scale scenario plays, as the agents of a fleet would post them.

Each incident is one (host, check) that breaks, is seen again, and recovers; every
fourth one starts as WARNING and becomes CRITICAL (a priority change the helpdesk
hears about). Hosts have four checks each and one agent each; every agent numbers
its events in order, across the phases, exactly as a real agent does. The phases
are separate so a scenario can break things between them:

- ``breach``: the first failure of every incident (opens a ticket);
- ``repeat``: the same failure again, or its escalation to CRITICAL;
- ``recover``: the check is OK again (resolved after the verification period).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tests.procs import event_payload

CHECKS = (("root-disk", "disk"), ("memory", "memory"), ("load", "load"),
          ("tls-expiry", "tls_cert"))


@dataclass(frozen=True)
class Incident:
    host: str
    check: str
    check_type: str
    escalates: bool  # WARNING first, then CRITICAL

    @property
    def dedup_key(self) -> str:
        return f"{self.host}/{self.check}"

    def status(self, phase: str) -> str:
        if phase == "recover":
            return "OK"
        return "WARNING" if self.escalates and phase == "breach" else "CRITICAL"


@dataclass
class Workload:
    """``count`` incidents on ``ceil(count / 4)`` hosts (``h000``, ``h001``, ...)."""

    count: int

    def __post_init__(self) -> None:
        self.incidents = [Incident(f"h{i // len(CHECKS):03d}", *CHECKS[i % len(CHECKS)],
                                   escalates=i % 4 == 3) for i in range(self.count)]
        self._sequence: dict[str, int] = {}
        self.events_sent = 0  # distinct events, for the collectors' accepted counter

    @property
    def hosts(self) -> list[str]:
        return sorted({i.host for i in self.incidents})

    @property
    def escalating(self) -> set[str]:
        return {i.dedup_key for i in self.incidents if i.escalates}

    def batches(self, phase: str) -> Iterator[list[dict[str, Any]]]:
        """One batch per host (its agent's events for this phase, in order)."""
        for host in self.hosts:
            batch = [self._event(i, phase) for i in self.incidents if i.host == host]
            self.events_sent += len(batch)
            yield batch

    def _event(self, incident: Incident, phase: str) -> dict[str, Any]:
        agent = f"agent-{incident.host}"
        sequence = self._sequence[agent] = self._sequence.get(agent, 0) + 1
        return event_payload(incident.host, incident.check, sequence,
                             status=incident.status(phase), agent_id=agent,
                             check_type=incident.check_type)

    def heartbeats(self) -> Iterator[dict[str, Any]]:
        """One heartbeat per host, announcing a long interval: no host may be
        declared lost while the scenario runs."""
        from datetime import UTC, datetime

        for host in self.hosts:
            agent = f"agent-{host}"
            sequence = self._sequence[agent] = self._sequence.get(agent, 0) + 1
            yield {"schema_version": 1, "source": host,
                   "agent": {"id": agent, "version": "1.0"}, "sequence": sequence,
                   "sent_at": datetime.now(UTC).isoformat(), "interval_seconds": 3600,
                   "labels": {"tier": "standard"}, "checks": []}
