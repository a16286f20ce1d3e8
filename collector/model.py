"""The collector's domain: tickets, their timeline, priorities and statuses.

A *ticket* is the record of one incident, keyed by ``dedup_key`` (host + check)
while it is active; it follows DOMAIN.md's lifecycle
new -> in_progress -> pending -> resolved -> closed, and resolved goes back to
in_progress when the problem comes back within the reopen window. Times are epoch
seconds (float, UTC) throughout: they compare and subtract without time zones.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Priority(enum.StrEnum):
    """P1 is the most urgent. Ordered: ``min()`` of priorities is the most urgent."""

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"

    @property
    def rank(self) -> int:
        return int(self.value[1])

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Priority):
            return NotImplemented
        return self.rank < other.rank


class TicketStatus(enum.StrEnum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def is_open(self) -> bool:
        """Still work for a person (not resolved, not closed)."""
        return self in (TicketStatus.NEW, TicketStatus.IN_PROGRESS, TicketStatus.PENDING)


# Wire severities (PagerDuty Events v2), most severe first.
SEVERITIES = ("critical", "error", "warning", "info")


@dataclass
class TimelineEntry:
    """One thing that happened to a ticket, for the record and the web page."""

    at: float
    kind: str  # opened, repeated, severity, priority, comment, acknowledged, resolved, ...
    text: str
    author: str = "patrol"
    data: dict[str, Any] = field(default_factory=dict)
    ticket_id: int | None = None
    id: int | None = None


@dataclass
class Ticket:
    """One incident's ticket. ``version`` guards concurrent updates (optimistic lock)."""

    dedup_key: str
    title: str
    host: str
    check: str
    check_type: str
    severity: str
    priority: Priority
    status: TicketStatus
    category: str
    opened_at: float
    first_seen: float
    last_seen: float
    respond_by: float
    resolve_by: float
    number: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    check_status: str = "CRITICAL"  # the latest observed status of the check
    occurrences: int = 1
    state_changes: list[float] = field(default_factory=list)  # recent, for flapping
    flapping: bool = False
    recovered_at: float | None = None  # check seen OK since; verification runs from here
    acknowledged_at: float | None = None
    resolved_at: float | None = None
    closed_at: float | None = None
    resolution: str | None = None
    parent_id: int | None = None  # a group ticket this one belongs to
    is_group: bool = False
    hosts: list[str] = field(default_factory=list)  # for group tickets: affected hosts
    previous_id: int | None = None  # an earlier, closed ticket for the same problem
    escalation: int = 0  # SLA watchdog level reached: 0 none, 1 near, 2 breached
    runbook: str | None = None
    measurements: list[dict[str, Any]] = field(default_factory=list)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    body: str = ""
    id: int | None = None
    version: int = 0

    @property
    def stored_id(self) -> int:
        """``id`` of a ticket the store has written (``create_ticket`` sets it), for the
        store's ``ticket_id`` parameters; ValueError for a ticket not stored yet."""
        if self.id is None:
            raise ValueError(f"ticket for {self.dedup_key!r} has not been stored yet")
        return self.id

    @property
    def active(self) -> bool:
        return self.status is not TicketStatus.CLOSED
