"""Grouping: the same check failing on many hosts of one group is one parent ticket.

Hosts belong to a group by the value of one label (``role`` by default). When the
check of a trigger event is failing on at least ``min_hosts`` hosts (the event's own
host included) that share the event's value of that label, with first-seen times
within ``window`` of the event, the engine opens one parent ticket (``is_group``,
``hosts`` listing them, its ``dedup_key`` from :func:`group_key`) and links the hosts'
own tickets to it (``parent_id``); further hosts join it while it is open. The
parent's host count is the impact scope that feeds its priority.

Events without the label never group: there is nothing to say they share a cause.

:func:`group_decision` says whether an event starts or joins a group;
:func:`plan_group` turns that into the actions the applier writes
(:class:`CreateGroup`, :class:`AddMember`). :func:`collector.policy.correlate.decide`
calls the planners here with a :class:`GroupView` (the group tickets the engine read
before deciding) and returns their actions with the event's own, so grouping takes
the same decide-then-apply path as every other decision. What the helpdesk hears of
it (one ticket per fleet incident) is :mod:`collector.tickets.fleet`'s job.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from patrol.collector.model import SEVERITIES, Priority, Ticket, TicketStatus
from patrol.collector.policy.lifecycle import ChangeSeverity, Reopen
from patrol.collector.policy.priority import priority_of, sla
from patrol.collector.policy.settings import PolicyConfig
from patrol.contract.wire import Event


@dataclass(frozen=True)
class OpenGroup:
    """Insert a parent ticket with these fields and link ``hosts``' tickets to it."""

    dedup_key: str
    title: str
    check: str
    check_type: str
    severity: str
    label: str
    value: str
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class JoinGroup:
    """Add ``host`` to the open parent; ``hosts`` is the parent's list after joining."""

    parent_id: int | None
    host: str
    hosts: tuple[str, ...]


GroupAction = OpenGroup | JoinGroup


@dataclass(frozen=True)
class GroupView:
    """The group tickets one event can touch: grouping's inputs, read by the engine
    before it decides, so the decision itself reads nothing.

    ``open_group``: the non-closed group ticket of the event's group (by
    :func:`group_key`); ``firing``: the open, non-group tickets of the event's check
    (both only when the event may open a ticket); ``parent``: the group ticket the
    event's own ticket belongs to (when it may reopen, or change severity);
    ``members``: that group's member tickets (when the severity may change)."""

    open_group: Ticket | None = None
    firing: tuple[Ticket, ...] = ()
    parent: Ticket | None = None
    members: tuple[Ticket, ...] = ()


NO_GROUP = GroupView()


def group_key(check: str, label: str, value: str) -> str:
    """The parent ticket's ``dedup_key``: one open group per check and group."""
    return f"group:{label}={value}/{check}"


def group_decision(event: Event,
                   recent_firing: Iterable[tuple[str, Mapping[str, str], float]],
                   group_label: str = "role", window: float = 600, min_hosts: int = 3, *,
                   parent: Ticket | None = None, now: float | None = None,
                   ) -> GroupAction | None:
    """Whether ``event`` starts or joins a group.

    ``recent_firing``: ``(host, labels, first_seen)`` of the hosts where the event's
    check is currently failing (the caller filters by check). ``parent``: the open
    group ticket for :func:`group_key` if there is one. ``now`` (default the event's
    ``observed_at``) is the reference time for ``window``, counted either side since
    agents' clocks and deliveries differ."""
    value = event.labels.get(group_label)
    if event.action != "trigger" or not value:
        return None
    if parent is not None:
        if event.source in parent.hosts:
            return None
        return JoinGroup(parent.id, event.source, (*parent.hosts, event.source))
    ref = event.observed_at.timestamp() if now is None else now
    hosts = {event.source}
    hosts.update(host for host, labels, first_seen in recent_firing
                 if labels.get(group_label) == value and abs(ref - first_seen) <= window)
    if len(hosts) < min_hosts:
        return None
    return OpenGroup(
        dedup_key=group_key(event.check, group_label, value),
        title=group_title(event.check, len(hosts), group_label, value),
        check=event.check, check_type=event.type, severity=event.severity,
        label=group_label, value=value, hosts=tuple(sorted(hosts)),
    )


def group_title(check: str, hosts: int, label: str, value: str) -> str:
    """The parent's title: it states the host count, so it is recomputed on every join."""
    return f"{check} failing on {hosts} hosts with {label}={value}"


@dataclass(frozen=True)
class CreateGroup:
    """Insert ``parent`` (an unsaved group ticket) and link the tickets ``members`` to
    it, in this order; ``reason`` explains the parent's priority. A member without an
    id is the ticket the same decision opens (:class:`OpenTicket`, applied first)."""

    parent: Ticket
    members: tuple[Ticket, ...]
    reason: str


@dataclass(frozen=True)
class AddMember:
    """``member`` joins the open group ticket ``parent_id`` (without an id: the ticket
    the same decision opens), whose host list becomes ``hosts`` and title ``title``.
    ``priority`` is set when the larger scope raises the parent's priority (None:
    unchanged), with the SLA dates that go with it counted from the parent's opening."""

    parent_id: int | None
    member: Ticket
    host: str
    hosts: tuple[str, ...]
    title: str
    old_priority: Priority
    priority: Priority | None = None
    respond_by: float | None = None
    resolve_by: float | None = None
    reason: str = ""


@dataclass(frozen=True)
class LeaveGroup:
    """``member`` (a ticket id) is no longer part of the closed group ticket
    ``parent_number``: its new failure is its own incident."""

    member: int | None
    parent_number: str


def plan_member_back(member: Ticket, parent: Ticket | None, event: Event,
                     config: PolicyConfig, now: float) -> list[Reopen | LeaveGroup]:
    """A member of a fleet incident is reopened by ``event``: the incident is back.

    Its group ticket, if resolved, is reopened too (the helpdesk's one ticket for the
    incident reopens, as a single ticket's would); if the group ticket is closed
    already, the member leaves it and is an incident of its own. Nothing while the
    group ticket is open: the member simply fails again within it."""
    if parent is None or parent.status.is_open:
        return []
    if parent.status is TicketStatus.RESOLVED:
        respond_by, resolve_by = sla(parent.priority, now, config.sla)
        return [Reopen(parent.id, now, f"{member.host} failed again: {event.summary}",
                       parent.severity, parent.priority, respond_by, resolve_by)]
    return [LeaveGroup(member.id, parent.number)]


def plan_regrade(parent: Ticket | None, members: Sequence[Ticket], event: Event,
                 config: PolicyConfig) -> list[ChangeSeverity]:
    """A member's severity changed (``event``): the group ticket takes the worst
    severity of its open members, and the priority that severity gives at the group's
    scope (SLA dates counted from the group's opening, as for any priority change).
    ``members``: the group's members with the event's member already changed."""
    if parent is None or not parent.status.is_open:
        return []
    failing = [m.severity for m in members if m.status.is_open and m.recovered_at is None]
    if not failing:
        return []
    worst = min(failing, key=SEVERITIES.index)
    if worst == parent.severity:
        return []
    decision = priority_of(event.model_copy(update={"severity": worst}), config,
                           scope=len(parent.hosts))
    respond_by, resolve_by = sla(decision.priority, parent.opened_at, config.sla)
    return [ChangeSeverity(parent.id, parent.severity, worst, parent.priority,
                           decision.priority, respond_by, resolve_by, decision.reason)]


def plan_group(event: Event, member: Ticket, firing: Sequence[Ticket],
               parent: Ticket | None, config: PolicyConfig, now: float,
               ) -> list[CreateGroup | AddMember]:
    """The grouping actions for ``member``, the ticket ``event`` opens.

    ``firing``: the open, non-group tickets of the event's check (``member`` among
    them, unsaved when the same decision opens it); ``parent``: the open group ticket
    for the event's group, if any. Returns nothing, one :class:`CreateGroup` or one
    :class:`AddMember`; the applier (:mod:`collector.tickets.apply`) writes them like
    every other decision."""
    grouping = config.grouping
    decision = group_decision(
        event, [(t.host, t.labels, t.first_seen) for t in firing], grouping.label,
        grouping.window, grouping.min_hosts, parent=parent, now=now)
    if decision is None:
        return []
    if isinstance(decision, JoinGroup):
        assert parent is not None
        label, value = next(iter(parent.labels.items()))
        scope = priority_of(event, config, scope=len(decision.hosts))
        title = group_title(parent.check, len(decision.hosts), label, value)
        if not scope.priority < parent.priority:
            return [AddMember(parent.id, member, decision.host, decision.hosts, title,
                              parent.priority)]
        respond_by, resolve_by = sla(scope.priority, parent.opened_at, config.sla)
        return [AddMember(parent.id, member, decision.host, decision.hosts, title,
                          parent.priority, scope.priority, respond_by, resolve_by,
                          scope.reason)]
    members = [t for t in firing if t.host in decision.hosts
               and t.labels.get(decision.label) == decision.value]
    scope = priority_of(event, config, scope=len(decision.hosts))
    respond_by, resolve_by = sla(scope.priority, now, config.sla)
    parent = Ticket(
        dedup_key=decision.dedup_key, title=decision.title, host=",".join(decision.hosts),
        check=decision.check, check_type=decision.check_type, severity=decision.severity,
        priority=scope.priority, status=TicketStatus.NEW, category=member.category,
        opened_at=now, first_seen=min(t.first_seen for t in members), last_seen=now,
        respond_by=respond_by, resolve_by=resolve_by, labels={decision.label: decision.value},
        is_group=True, hosts=list(decision.hosts), check_status=event.status,
        runbook=event.runbook)
    # Oldest ticket first; the one being opened (no id yet) is the newest.
    ordered = sorted(members, key=lambda t: (t.id is None, t.id or 0))
    return [CreateGroup(parent, tuple(ordered), scope.reason)]
