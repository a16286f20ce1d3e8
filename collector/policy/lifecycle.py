"""Lifecycle decisions as data, and the timer-driven ones.

:func:`collector.policy.correlate.decide` (events) and :func:`tick` (timers) return lists
of the frozen actions below; the engine applies them to the store in order, each
with a timeline entry (``text`` where the action has one). Nothing here touches a
database or a clock: ``now`` is a parameter (epoch seconds, UTC; the collector's
clock, so agents' clock skew cannot shorten verification).

Timers: an open ticket whose check has been OK (``recovered_at``) for the
verification period is resolved (:func:`collector.policy.flapping.verify_period`); a
resolved ticket is closed ``close_after`` after it was resolved.

Liveness: :func:`heartbeat_lost` and :func:`stale_checks` find hosts and checks that
went silent, for the watchdog to ticket.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from patrol.collector.model import Priority, Ticket, TicketStatus
from patrol.collector.policy.flapping import is_flapping, verify_period
from patrol.collector.policy.settings import PolicyConfig
from patrol.contract.units import approx_duration


@dataclass(frozen=True)
class OpenTicket:
    """Insert ``ticket`` (no id or number yet; ``previous_id`` links an old ticket)."""

    ticket: Ticket
    reason: str  # why this priority

    @property
    def link_previous_id(self) -> int | None:
        return self.ticket.previous_id


@dataclass(frozen=True)
class Repeat:
    """The same problem seen again: occurrences += 1, last_seen = at, check_status."""

    ticket_id: int | None
    at: float
    check_status: str


@dataclass(frozen=True)
class ChangeSeverity:
    """New severity and priority; SLA dates recomputed from the ticket's opening, as
    helpdesks do when a priority changes."""

    ticket_id: int | None
    old: str
    new: str
    old_priority: Priority
    new_priority: Priority
    respond_by: float
    resolve_by: float
    reason: str

    @property
    def text(self) -> str:
        return (f"severity {self.old} -> {self.new}; priority {self.old_priority} -> "
                f"{self.new_priority} ({self.reason})")


@dataclass(frozen=True)
class Reopen:
    """Resolved (or closed within the reopen window) -> in_progress. The problem is
    work again: severity, priority and a fresh SLA from ``at``; recovery cleared."""

    ticket_id: int | None
    at: float
    reason: str
    severity: str
    priority: Priority
    respond_by: float
    resolve_by: float


@dataclass(frozen=True)
class MarkRecovering:
    """The check is OK since ``at``: verification starts; not resolved yet."""

    ticket_id: int | None
    at: float


@dataclass(frozen=True)
class CancelRecovery:
    """Failed again before verification ended: ``recovered_at`` cleared, stays open."""

    ticket_id: int | None
    at: float


@dataclass(frozen=True)
class StateChanges:
    """Store the ticket's recent state-change times and flapping flag."""

    ticket_id: int | None
    changes: tuple[float, ...]
    flapping: bool


@dataclass(frozen=True)
class FlapAnnotate:
    """The ticket started flapping (timeline entry; the flag is in StateChanges)."""

    ticket_id: int | None
    changes: int
    window: float

    @property
    def text(self) -> str:
        return (f"flapping: {self.changes} state changes within {approx_duration(self.window)}; "
                "kept open, verification period doubled")


@dataclass(frozen=True)
class FlapCleared:
    ticket_id: int | None
    text: str = "no longer flapping"


@dataclass(frozen=True)
class Resolve:
    ticket_id: int | None
    at: float
    reason: str


@dataclass(frozen=True)
class Close:
    ticket_id: int | None
    at: float
    reason: str


@dataclass(frozen=True)
class Suppress:
    """No ticket: a maintenance window covers the check."""

    reason: str


@dataclass(frozen=True)
class Ignore:
    """Nothing to do (e.g. a resolve for no open incident); ``reason`` for the log."""

    reason: str


Action = (OpenTicket | Repeat | ChangeSeverity | Reopen | MarkRecovering | CancelRecovery
          | StateChanges | FlapAnnotate | FlapCleared | Resolve | Close | Suppress | Ignore)


def tick(ticket: Ticket, now: float, config: PolicyConfig) -> list[Action]:
    """Timer decisions for one ticket at ``now``: clear flapping, resolve after
    verification, close after the quiet period."""
    lifecycle = config.lifecycle
    out: list[Action] = []
    if ticket.flapping and not is_flapping(ticket.state_changes, now, lifecycle):
        out.append(FlapCleared(ticket.id))
    if ticket.status.is_open and ticket.recovered_at is not None:
        period = verify_period(ticket, lifecycle)
        if now - ticket.recovered_at >= period:
            out.append(Resolve(ticket.id, now, f"verified: the check stayed OK for "
                                               f"{approx_duration(now - ticket.recovered_at)}"))
    elif (ticket.status is TicketStatus.RESOLVED and ticket.resolved_at is not None
          and now - ticket.resolved_at >= lifecycle.close_after):
        quiet = approx_duration(now - ticket.resolved_at)
        out.append(Close(ticket.id, now, f"no recurrence for {quiet} after resolve"))
    return out


def _epoch(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    return None if value is None else float(value)


def heartbeat_lost(hosts: Iterable[Mapping[str, Any]], now: float,
                   timeout_default_factor: float = 3) -> list[str]:
    """Hosts whose last heartbeat is older than their timeout, sorted.

    Each mapping has ``host``, ``last_heartbeat`` (epoch or datetime) and
    ``interval_seconds``; an explicit ``heartbeat_timeout`` (seconds) wins over
    ``timeout_default_factor`` x the interval. Hosts never heard from are not lost."""
    lost = []
    for host in hosts:
        last = _epoch(host.get("last_heartbeat"))
        if last is None:
            continue
        timeout = host.get("heartbeat_timeout")
        if timeout is None:
            timeout = timeout_default_factor * float(host["interval_seconds"])
        if now - last > float(timeout):
            lost.append(str(host["host"]))
    return sorted(lost)


def stale_checks(states: Iterable[Mapping[str, Any]], now: float, factor: float = 3,
                 grace: float = 60, timeout_factor: float = 3) -> list[tuple[str, str]]:
    """``(host, check)`` pairs whose results stopped arriving, sorted.

    A state that announces ``next_due`` (epoch: when the agent's scheduler runs the
    check next; the cron checks of newer agents) is stale once ``now`` is past it by
    more than the lateness allowed: ``grace``, or ``timeout_factor`` x its
    ``timeout`` when longer (a slow run is not a silent one), plus ``heartbeat``
    (seconds: results travel with heartbeats). So a daily inspection is never stale
    between its runs, and one that missed its run is.

    Older agents announce only ``interval_seconds``: stale when ``last_run`` is older
    than ``factor`` x that. States with neither, or without a last run, are skipped:
    a check that never ran is the agent's problem to report, not silence."""
    stale = []
    for state in states:
        last, interval = _epoch(state.get("last_run")), state.get("interval_seconds")
        due = _epoch(state.get("next_due"))
        if due is not None:
            late = max(grace, timeout_factor * float(state.get("timeout") or 0))
            silent = now - due > late + float(state.get("heartbeat") or 0)
        elif last is not None and interval:
            silent = now - last > factor * float(interval)
        else:
            silent = False
        if silent:
            stale.append((str(state["host"]), str(state["check"])))
    return sorted(stale)
