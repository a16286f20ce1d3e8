"""The decision for one incoming event, given the tickets for its ``dedup_key``.

``active`` is the non-closed ticket for the key (at most one exists), ``latest`` the
most recent ticket for the key of any status (None if there never was one).

Trigger (the check is bad):

* an open ticket (new, in_progress, pending) -> ``Repeat`` (counters only); if it was
  recovering, ``CancelRecovery`` (it stays open: no churn) and a state change; if the
  severity differs, ``ChangeSeverity`` with the new priority.
* the last ticket was resolved at most ``reopen_window`` ago (still resolved, or
  already closed if ``close_after`` < ``reopen_window``) -> ``Reopen`` it and count a
  state change. Measured from ``resolved_at`` (``closed_at`` for a ticket closed
  without being resolved); the boundary itself still reopens.
* otherwise -> ``OpenTicket``, with ``previous_id`` linking the last ticket; a still
  resolved old ticket is closed first, so one key never has two active tickets.

In maintenance, nothing opens or reopens (``Suppress``); an already open ticket still
counts repeats and severity changes, since it was opened before the window began.

Resolve (the check is OK): an open ticket starts verification (``MarkRecovering``;
:func:`collector.policy.lifecycle.tick` resolves it later) and counts a state change; a
resolve for no open ticket, or one already recovering, is ``Ignore``. Maintenance
does not hold back good news.

Grouping is part of the same decision (:mod:`collector.policy.grouping`), from the
group tickets the engine read beforehand (:class:`GroupView`): a ticket that opens may
start or join a fleet incident, a member that reopens takes its group ticket along,
and a member's new severity regrades its group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from patrol.collector.model import Ticket, TicketStatus
from patrol.collector.policy.categories import category_for
from patrol.collector.policy.flapping import is_flapping, note_change
from patrol.collector.policy.grouping import (
    NO_GROUP,
    AddMember,
    CreateGroup,
    GroupView,
    LeaveGroup,
    plan_group,
    plan_member_back,
    plan_regrade,
)
from patrol.collector.policy.lifecycle import (
    Action,
    CancelRecovery,
    ChangeSeverity,
    Close,
    FlapAnnotate,
    Ignore,
    MarkRecovering,
    OpenTicket,
    Reopen,
    Repeat,
    StateChanges,
    Suppress,
)
from patrol.collector.policy.priority import Decision, priority_of, sla
from patrol.collector.policy.settings import PolicyConfig
from patrol.contract.units import approx_duration
from patrol.contract.wire import Event

# One step of a decision: a lifecycle action or a grouping change, in applying order.
Step = Action | CreateGroup | AddMember | LeaveGroup


def new_ticket(event: Event, now: float, config: PolicyConfig, decision: Decision,
               previous_id: int | None = None) -> Ticket:
    """An unsaved ticket for ``event`` (the store assigns id and number)."""
    respond_by, resolve_by = sla(decision.priority, now, config.sla)
    return Ticket(
        dedup_key=event.dedup_key, title=event.summary, host=event.source,
        check=event.check, check_type=event.type, severity=event.severity,
        priority=decision.priority, status=TicketStatus.NEW,
        category=category_for(event.type, event.labels, config.categories),
        opened_at=now, first_seen=event.observed_at.timestamp(), last_seen=now,
        respond_by=respond_by, resolve_by=resolve_by, labels=dict(event.labels),
        check_status=event.status, runbook=event.runbook,
        measurements=[m.model_dump() for m in event.measurements],
        diagnostics=dict(event.diagnostics), previous_id=previous_id,
    )


def _state_change(ticket: Ticket, now: float, config: PolicyConfig) -> list[Action]:
    changes = note_change(ticket.state_changes, now, config.lifecycle)
    flapping = ticket.flapping or is_flapping(changes, now, config.lifecycle)
    out: list[Action] = [StateChanges(ticket.id, changes, flapping)]
    if flapping and not ticket.flapping:
        out.append(FlapAnnotate(ticket.id, len(changes), config.lifecycle.flap_window))
    return out


def _ended_at(ticket: Ticket) -> float | None:
    return ticket.resolved_at if ticket.resolved_at is not None else ticket.closed_at


def _reopenable(active: Ticket | None, latest: Ticket | None, now: float,
                config: PolicyConfig) -> tuple[Ticket, float] | None:
    """The ticket a trigger reopens and when it ended: the key's last one, if it ended
    (resolved, or closed without being resolved) at most ``reopen_window`` ago."""
    last = active if active is not None else latest
    ended = _ended_at(last) if last is not None else None
    if last is None or ended is None or now - ended > config.lifecycle.reopen_window:
        return None
    return last, ended


def opens(event: Event, active: Ticket | None, latest: Ticket | None, now: float,
          config: PolicyConfig) -> bool:
    """Whether :func:`decide` opens a new ticket for ``event`` outside maintenance:
    a trigger with no open ticket and nothing to reopen. The engine asks before it
    reads what only an opening needs (the group's tickets)."""
    return (event.action == "trigger"
            and (active is None or not active.status.is_open)
            and _reopenable(active, latest, now, config) is None)


def _suppress(event: Event, windows: Sequence[str]) -> Suppress:
    names = f" ({', '.join(windows)})" if windows else ""
    return Suppress(f"{event.dedup_key} is in a maintenance window{names}")


def _on_trigger(event: Event, active: Ticket | None, latest: Ticket | None, now: float,
                config: PolicyConfig, in_maintenance: bool,
                windows: Sequence[str]) -> list[Action]:
    decision = priority_of(event, config)
    if active is not None and active.status.is_open:
        out: list[Action] = [Repeat(active.id, now, event.status)]
        if active.recovered_at is not None:
            out.append(CancelRecovery(active.id, now))
            out += _state_change(active, now, config)
        if event.severity != active.severity:
            respond_by, resolve_by = sla(decision.priority, active.opened_at, config.sla)
            out.append(ChangeSeverity(active.id, active.severity, event.severity,
                                      active.priority, decision.priority, respond_by,
                                      resolve_by, decision.reason))
        return out

    reopen = _reopenable(active, latest, now, config)
    if reopen is not None:
        last, ended = reopen
        if in_maintenance:
            return [_suppress(event, windows)]
        respond_by, resolve_by = sla(decision.priority, now, config.sla)
        reason = (f"failed again {approx_duration(now - ended)} after it was resolved: "
                  f"{event.summary}")
        return [Reopen(last.id, now, reason, event.severity, decision.priority,
                       respond_by, resolve_by), *_state_change(last, now, config)]

    if in_maintenance:
        return [_suppress(event, windows)]
    out = []
    if active is not None:  # resolved, but its reopen window is over
        out.append(Close(active.id, now, "superseded by a new ticket for the same problem"))
    earlier = active if active is not None else latest
    previous = earlier.id if earlier is not None else None
    out.append(OpenTicket(new_ticket(event, now, config, decision, previous), decision.reason))
    return out


def _grouped(event: Event, actions: list[Action], tickets: tuple[Ticket | None, ...],
             group: GroupView, config: PolicyConfig, now: float) -> list[Step]:
    """The event's actions with grouping's (:mod:`collector.policy.grouping`): a ticket
    it opens may start or join a fleet incident (after the open); a member it reopens
    takes its group ticket along (before the reopen, so the helpdesk hears the group
    reopen before the news); a member whose severity changes regrades its group."""
    for action in actions:
        if isinstance(action, OpenTicket):
            opened = action.ticket
            return [*actions, *plan_group(event, opened, [*group.firing, opened],
                                          group.open_group, config, now)]
        if isinstance(action, Reopen):
            member = next((t for t in tickets if t is not None and t.id == action.ticket_id
                           and t.parent_id is not None), None)
            if member is None:
                return list(actions)
            return [*plan_member_back(member, group.parent, event, config, now), *actions]
        if isinstance(action, ChangeSeverity):
            member = next((t for t in tickets if t is not None and t.id == action.ticket_id
                           and t.parent_id is not None), None)
            if member is None:
                return list(actions)
            # The member as this decision leaves it: the new severity, and failing
            # (a trigger on a recovering ticket cancels its recovery).
            changed = replace(member, severity=action.new, recovered_at=None)
            members = [changed if m.id == changed.id else m for m in group.members]
            return [*actions, *plan_regrade(group.parent, members, event, config)]
    return list(actions)


def decide(event: Event, active: Ticket | None, latest: Ticket | None, now: float,
           config: PolicyConfig, in_maintenance: bool = False, *,
           windows: Sequence[str] = (), group: GroupView = NO_GROUP) -> list[Step]:
    """The steps for ``event`` (see the module docstring), grouping's included.
    ``windows``: names of the maintenance windows covering it, for the reason;
    ``group``: the group tickets the event can touch (:class:`GroupView`; the
    default, an empty view, groups nothing)."""
    if event.action == "trigger":
        actions = _on_trigger(event, active, latest, now, config, in_maintenance, windows)
        return _grouped(event, actions, (active, latest), group, config, now)
    if active is None or not active.status.is_open:
        return [Ignore(f"resolve for {event.dedup_key}, which has no open ticket")]
    if active.recovered_at is not None:
        return [Ignore(f"{event.dedup_key} is already recovering "
                       f"({approx_duration(now - active.recovered_at)} so far)")]
    return [MarkRecovering(active.id, now), *_state_change(active, now, config)]
