"""What the web pages show, prepared from store rows: pure functions, no I/O.

The templates only lay out what these return, so every wording and colour decision
(SLA countdowns, status classes, the hosts x checks grid) is here and tested as plain
functions. ``now`` is always passed in (epoch seconds), never read from a clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from patrol.collector.model import Priority, Ticket, TicketStatus
from patrol.collector.policy.priority import LEVELS, breached
from patrol.collector.tickets.body import SECTION_ORDER
from patrol.contract.timestamps import iso_z
from patrol.contract.units import approx_duration

STATUSES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
# CSS classes (patrol.css colours them: OK green, WARNING amber, CRITICAL red,
# UNKNOWN purple, no result grey) and the short text a cell shows.
STATUS_CLASS = {"OK": "status-ok", "WARNING": "status-warning",
                "CRITICAL": "status-critical", "UNKNOWN": "status-unknown"}
MISSING_CLASS = "status-missing"
STATUS_SHORT = {"OK": "OK", "WARNING": "WARN", "CRITICAL": "CRIT", "UNKNOWN": "UNKN"}
OPEN_STATUSES = tuple(s.value for s in TicketStatus if s.is_open)
# Labels people sort a fleet by come first in a host's label list.
LEADING_LABELS = ("tier", "role")


def ago(then: float | None, now: float) -> str:
    """``"12s ago"``; ``"never"`` for None; a time slightly ahead (clock skew) is "just now"."""
    if then is None:
        return "never"
    if then > now:
        return "just now"
    return f"{approx_duration(now - then)} ago"


def when(epoch: float | None) -> str:
    """An absolute time as the pages print it (UTC, whole seconds), "-" for None."""
    return "-" if epoch is None else iso_z(epoch)


@dataclass(frozen=True)
class Clock:
    """One SLA deadline as shown: text, whether it was missed (shown red), and when."""

    text: str
    overdue: bool
    deadline: str


def sla_clock(kind: str, deadline: float, now: float, met_at: float | None,
              still_running: bool) -> Clock:
    """The ``kind`` ("respond" or "resolve") deadline of a ticket at ``now``.

    ``met_at``: when the ticket was responded to / resolved (None if not yet or not
    known). A met deadline says how it went ("responded 3m late"); a running one
    counts down ("respond in 12m", "respond overdue by 3m"); one that no longer
    applies without being met (a ticket closed unanswered) says so.
    """
    done = {"respond": "responded", "resolve": "resolved"}[kind]
    if met_at is not None:
        if met_at > deadline:
            return Clock(f"{done} {approx_duration(met_at - deadline)} late", False, when(deadline))
        return Clock(f"{done} in time", False, when(deadline))
    if not still_running:
        return Clock("no longer applies", False, when(deadline))
    if now > deadline:
        return Clock(f"{kind} overdue by {approx_duration(now - deadline)}", True, when(deadline))
    return Clock(f"{kind} in {approx_duration(deadline - now)}", False, when(deadline))


def respond_clock(ticket: Ticket, now: float) -> Clock:
    """Responding means acknowledging or starting work (as the SLA watchdog counts it)."""
    if ticket.acknowledged_at is None and ticket.status in (TicketStatus.IN_PROGRESS,
                                                            TicketStatus.PENDING):
        return Clock("responded", False, when(ticket.respond_by))  # time not recorded
    return sla_clock("respond", ticket.respond_by, now, ticket.acknowledged_at,
                     ticket.status is TicketStatus.NEW)


def resolve_clock(ticket: Ticket, now: float) -> Clock:
    return sla_clock("resolve", ticket.resolve_by, now, ticket.resolved_at,
                     ticket.status.is_open)


def markers(ticket: Ticket) -> list[str]:
    """Short flags for the list and the detail page, in a fixed order."""
    found = []
    if ticket.flapping:
        found.append("flapping")
    if ticket.is_group:
        found.append(f"group of {len(ticket.hosts)} hosts")
    if ticket.parent_id is not None:
        found.append("in a group")
    if ticket.previous_id is not None:
        found.append("recurred")
    if breached(ticket):
        found.append("SLA breached")
    elif ticket.escalation:
        found.append("SLA near")
    return found


@dataclass(frozen=True)
class TicketRow:
    ticket: Ticket
    age: str
    respond: Clock
    resolve: Clock
    markers: list[str]
    escalation: str  # the SLA escalation level reached, in words ("" for none)


def escalation_text(ticket: Ticket) -> str:
    """``"level 2 of 4: respond-by passed"``; the comments it sent are in the timeline."""
    if not ticket.escalation:
        return ""
    return f"level {ticket.escalation} of {len(LEVELS)}: {LEVELS[ticket.escalation]}"


def ticket_row(ticket: Ticket, now: float) -> TicketRow:
    return TicketRow(ticket, approx_duration(now - ticket.opened_at), respond_clock(ticket, now),
                     resolve_clock(ticket, now), markers(ticket), escalation_text(ticket))


def by_priority(tickets: Iterable[Ticket], now: float) -> list[tuple[str, list[TicketRow]]]:
    """Tickets grouped under their priority, P1 first, keeping the store's order inside
    a group; priorities without tickets are left out."""
    groups: dict[str, list[TicketRow]] = {p.value: [] for p in Priority}
    for ticket in tickets:
        groups[Priority(ticket.priority).value].append(ticket_row(ticket, now))
    return [(p, rows) for p, rows in groups.items() if rows]


def priority_counts(stats: Mapping[str, Mapping[str, int]]) -> list[tuple[str, int]]:
    """Open tickets per priority from ``store.stats()``, every priority listed, P1 first."""
    counts = stats.get("priority", {})
    return [(p.value, int(counts.get(p.value, 0))) for p in Priority]


@dataclass(frozen=True)
class Cell:
    check: str
    css: str
    short: str
    title: str
    status: str | None


@dataclass
class HostRow:
    host: str
    labels: list[tuple[str, str]]
    heartbeat: str
    reachable: bool
    version: str
    cells: list[Cell] = field(default_factory=list)


@dataclass(frozen=True)
class Grid:
    checks: list[str]
    rows: list[HostRow]


def status_cell(check: str, state: Mapping[str, Any] | None) -> Cell:
    """A grid cell: coloured by status, the summary as its tooltip; grey if no result."""
    if state is None:
        return Cell(check, MISSING_CLASS, "–", f"{check}: no result from this host", None)
    status = str(state.get("status") or "UNKNOWN").upper()
    if status not in STATUS_CLASS:
        status = "UNKNOWN"
    return Cell(check, STATUS_CLASS[status], STATUS_SHORT[status],
                str(state.get("summary") or status), status)


def ordered_labels(labels: Mapping[str, str]) -> list[tuple[str, str]]:
    lead = [(k, labels[k]) for k in LEADING_LABELS if k in labels]
    return lead + sorted((k, v) for k, v in labels.items() if k not in LEADING_LABELS)


def build_grid(hosts: Sequence[Mapping[str, Any]], states: Sequence[Mapping[str, Any]],
               now: float) -> Grid:
    """Rows = hosts (by name; a host with check rows but no heartbeat row still gets
    one), columns = the sorted union of check names."""
    checks = sorted({str(s["check"]) for s in states})
    by_host: dict[str, dict[str, Mapping[str, Any]]] = {}
    for state in states:
        by_host.setdefault(str(state["host"]), {})[str(state["check"])] = state
    known = {str(h["host"]): h for h in hosts}
    rows = []
    for name in sorted(set(known) | set(by_host)):
        info = known.get(name, {})
        host_states = by_host.get(name, {})
        rows.append(HostRow(
            host=name, labels=ordered_labels(info.get("labels") or {}),
            heartbeat=ago(info.get("last_heartbeat"), now),
            reachable=bool(info.get("reachable", False)), version=str(info.get("version", "")),
            cells=[status_cell(c, host_states.get(c)) for c in checks]))
    return Grid(checks, rows)


def pretty_json(value: Any) -> str:
    """Diagnostics as indented JSON, keys sorted, non-ASCII kept readable."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def diagnostics_sections(diagnostics: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(title, pretty JSON)`` per top-level diagnostics key, in the body's
    :data:`collector.tickets.body.SECTION_ORDER` (then by name): the same on both stores."""
    def rank(key: str) -> tuple[int, str]:
        return (SECTION_ORDER.index(key) if key in SECTION_ORDER else len(SECTION_ORDER), key)
    return [(key.replace("_", " ").capitalize(), pretty_json(diagnostics[key]))
            for key in sorted(diagnostics, key=rank)]


def actions_for(ticket: Ticket) -> dict[str, bool]:
    """Which action forms the ticket page offers; ``failing`` shows the "although it
    still fails" box that resolving or closing a failing check needs (the API's rule)."""
    is_open = ticket.status.is_open
    closed = ticket.status is TicketStatus.CLOSED
    return {"acknowledge": is_open and ticket.acknowledged_at is None,
            "comment": True, "resolve": is_open, "close": not closed,
            "silence": not closed, "failing": ticket.check_status != "OK"}
