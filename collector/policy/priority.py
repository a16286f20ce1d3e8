"""Priority and SLA: pure functions of severity, tier, impact scope, urgency and time.

Priority (DOMAIN.md: impact scope x urgency):

1. Base from the event's severity x the host's ``tier`` label (``PriorityConfig.base``;
   by default critical on a critical-tier host is P1, on a standard one P2, on dev P3;
   UNKNOWN checks (severity ``error``) one level below critical).
2. Impact scope: each of ``scope_steps`` (3 and 10 hosts) the number of affected hosts
   reaches raises one level.
3. Urgency, for capacity checks: a projected time until full under
   ``urgency_raise_below`` (4 h) raises one level; under ``urgency_p2_below`` (1 h)
   the result is at least P2. The projection is the check's own ``full_in_seconds``,
   else the trend of the breach series the event carries (:func:`projected_full`):
   a disk filling fast is more urgent than one that is full but static.

Never above P1. The reason lists every factor, so a person can see why.

SLA: respond-by and resolve-by are the opening time plus DOMAIN.md's targets. The
watchdog (:func:`sla_watch`) escalates in four levels, each recorded once, in order:
1 respond-by near, 2 respond-by passed, 3 resolve-by near, 4 resolve-by passed.
"Near" is when ``near_ratio`` (80 %) of the target has elapsed. Responding (an
acknowledgement, or a person moving the ticket to in_progress/pending) stops levels
1-2; resolving stops all. What a level does (comment in the helpdesk, priority
bump, page) is :mod:`collector.watchdog.escalate`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from patrol.collector.model import Priority, Ticket, TicketStatus
from patrol.collector.policy.categories import category_for
from patrol.collector.policy.settings import PolicyConfig, PriorityConfig, SlaConfig
from patrol.contract.timestamps import iso_z
from patrol.contract.units import approx_duration
from patrol.contract.wire import Event

RESPOND_NEAR, RESPOND_PASSED, RESOLVE_NEAR, RESOLVE_PASSED = 1, 2, 3, 4
LEVELS = {RESPOND_NEAR: "respond-by near", RESPOND_PASSED: "respond-by passed",
          RESOLVE_NEAR: "resolve-by near", RESOLVE_PASSED: "resolve-by passed"}


@dataclass(frozen=True)
class Decision:
    priority: Priority
    reason: str


@dataclass(frozen=True)
class Escalation:
    """A deadline crossed: record ``level`` on the ticket and comment ``text``."""

    ticket_id: int | None
    level: int
    deadline: str  # "respond" or "resolve"
    due_at: float
    text: str


def _raise(priority: Priority, levels: int) -> Priority:
    return Priority(f"P{max(1, priority.rank - levels)}")


def prioritize(severity: str, tier: str | None, scope: int, urgency_seconds: float | None,
               config: PriorityConfig, *, resource: str = "projected") -> Decision:
    """The priority of an incident and why. ``scope``: affected hosts (1 for one host);
    ``urgency_seconds``: projected time until full (capacity checks only, else None);
    ``resource`` names what fills up in the reason ("disk full in ~2h")."""
    row = config.base.get(severity, config.base["critical"])
    if tier is None:
        priority = row.get(config.default_tier, Priority.P3)
        factors = [f"{severity} on a host without a tier label "
                   f"(treated as {config.default_tier})"]
    elif tier in row:
        priority = row[tier]
        factors = [f"{severity} on a {tier}-tier host"]
    else:
        priority = row.get(config.default_tier, Priority.P3)
        factors = [f"{severity} on a {tier}-tier host (treated as {config.default_tier})"]

    if scope > 1:
        steps = sum(1 for step in config.scope_steps if scope >= step)
        priority = _raise(priority, steps)
        factors.append(f"{scope} hosts affected" + (f" (+{steps})" if steps else ""))

    if urgency_seconds is not None and urgency_seconds < config.urgency_raise_below:
        priority = _raise(priority, 1)
        effect = "+1"
        if urgency_seconds < config.urgency_p2_below:
            priority = min(priority, Priority.P2)
            effect += ", at least P2"
        factors.append(f"{resource} full in ~{approx_duration(urgency_seconds)} ({effect})")
    return Decision(priority, "; ".join(factors))


def time_until_full(samples: Sequence[tuple[float, float]]) -> float | None:
    """Seconds from the last sample until ``used_ratio`` reaches 1.0, extrapolating the
    least-squares slope of ``(epoch, used_ratio)`` samples; None when fewer than two
    distinct times or when usage is not growing. 0.0 when already full."""
    if len({t for t, _ in samples}) < 2:
        return None
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_u = sum(u for _, u in samples) / n
    slope = (sum((t - mean_t) * (u - mean_u) for t, u in samples)
             / sum((t - mean_t) ** 2 for t, _ in samples))
    if slope <= 0:
        return None
    _, last_u = max(samples)
    return max(0.0, (1.0 - last_u) / slope)


def _field(measurement: Any, name: str) -> Any:
    return measurement[name] if isinstance(measurement, dict) else getattr(measurement, name)


def fills_up(name: str) -> bool:
    """Whether a measurement is a share of a resource that is full at 1.0
    (``used_ratio``, ``inodes_used_ratio``)."""
    return name == "used_ratio" or name.endswith("_used_ratio")


def projected_full(measurements: Iterable[Any],
                   series: Iterable[Sequence[tuple[float, float]]] = ()) -> float | None:
    """The urgency input for capacity checks: the smallest ``full_in_seconds`` the check
    reported (any item), else the soonest :func:`time_until_full` of ``series`` (the
    ``(epoch, used_ratio)`` points of the measurements that fill up). Measurements are
    ``wire.MeasurementValue`` objects or ``{"name", "value"}`` dicts."""
    reported = [float(_field(m, "value")) for m in measurements
                if _field(m, "name") == "full_in_seconds"]
    if reported:
        return min(reported)
    projected = [t for t in map(time_until_full, series) if t is not None]
    return min(projected, default=None)


def priority_of(event: Event, config: PolicyConfig, scope: int = 1) -> Decision:
    """Priority of ``event`` at ``scope`` affected hosts (a group ticket's host count;
    1 for one host's own ticket). Urgency counts for capacity checks only: the check's
    own ``full_in_seconds``, else the trend of the breach series the event carries (an
    agent sends its recent points of the breaching measurements with the event)."""
    urgency = None
    if category_for(event.type, event.labels, config.categories) == "capacity":
        urgency = projected_full(event.measurements, [
            s.points for s in event.history if fills_up(s.name)])
    return prioritize(event.severity, event.labels.get("tier"), scope, urgency,
                      config.priority, resource=event.type)


def sla(priority: Priority, opened_at: float, config: SlaConfig) -> tuple[float, float]:
    """``(respond_by, resolve_by)`` in epoch seconds."""
    return opened_at + config.respond[priority], opened_at + config.resolve[priority]


def _responded(ticket: Ticket) -> bool:
    return ticket.acknowledged_at is not None or ticket.status in (
        TicketStatus.IN_PROGRESS, TicketStatus.PENDING)


def breached(ticket: Ticket) -> bool:
    """Whether a deadline of ``ticket`` has been recorded as passed. Level 3 follows a
    passed respond-by unless the ticket was responded to in time."""
    if ticket.escalation in (RESPOND_PASSED, RESOLVE_PASSED):
        return True
    return ticket.escalation == RESOLVE_NEAR and (
        ticket.acknowledged_at is None or ticket.acknowledged_at > ticket.respond_by)


def sla_watch(ticket: Ticket, now: float, config: SlaConfig) -> list[Escalation]:
    """The escalation levels ``ticket`` newly reached at ``now`` (above
    ``ticket.escalation``), lowest first; the caller records the last one's level.
    Empty for resolved and closed tickets."""
    if not ticket.status.is_open:
        return []
    checks = []
    if not _responded(ticket):
        checks.append(("respond", ticket.respond_by, config.respond[ticket.priority],
                       RESPOND_NEAR, "not acknowledged yet"))
    checks.append(("resolve", ticket.resolve_by, config.resolve[ticket.priority],
                   RESOLVE_NEAR, "still open"))
    out: list[Escalation] = []
    for deadline, due, target, near_level, state in checks:
        near_at = due - (1 - config.near_ratio) * target
        if now >= due and ticket.escalation < near_level + 1:
            # A watchdog that wakes after the deadline reports only the breach.
            text = f"{deadline}-by {iso_z(due)} passed {approx_duration(now - due)} ago; {state}"
            out.append(Escalation(ticket.id, near_level + 1, deadline, due, text))
        elif near_at <= now < due and ticket.escalation < near_level:
            left = approx_duration(due - now)
            text = f"{deadline}-by {iso_z(due)} is near ({left} left); {state}"
            out.append(Escalation(ticket.id, near_level, deadline, due, text))
    return out
