"""SLA escalations that reach people, once per level.

:func:`collector.policy.priority.sla_watch` decides which levels a ticket newly reached;
:func:`escalate` applies them in the caller's transaction, so the level recorded on
the ticket and every notification commit together (a crash repeats nothing, and
loses nothing). For each level, in order:

1. a timeline entry (kind ``escalation``) on Patrol's own ticket;
2. a comment on the ticket in each helpdesk it went to (``engine.notify``), so the
   people working the queue see the deadline there, not only in Patrol;
3. on a breach (levels 2 and 4) and ``policy.escalation.bump_priority_on_breach``,
   one priority level up, recorded and sent as a priority change;
4. with ``policy.escalation.page`` set, the same text to that helpdesk as its own
   notification: the first time, the ticket is opened there and the text follows;
   once it is there (routed, or paged before) step 2 already reaches it.

Acknowledging (in Patrol or in the helpdesk, read back by the sync) stops the
respond-by levels: ``sla_watch`` skips them once a ticket is responded to.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from patrol.collector.model import Priority, Ticket
from patrol.collector.policy.priority import RESOLVE_PASSED, RESPOND_PASSED, Escalation, sla_watch
from patrol.ticketing_bridge.protocol import Destination

if TYPE_CHECKING:
    from patrol.collector.engine import Engine
    from patrol.collector.store.base import Transaction

log = logging.getLogger("patrol.collector.watchdog")

BREACHES = (RESPOND_PASSED, RESOLVE_PASSED)


def bumped(priority: Priority) -> Priority:
    """One level more urgent, never above P1."""
    return Priority(f"P{max(1, priority.rank - 1)}")


def notice(ticket: Ticket, escalation: Escalation) -> str:
    """The comment a person reads in the helpdesk or the pager."""
    return (f"Patrol escalation ({ticket.priority} {ticket.number}, {ticket.title}): "
            f"{escalation.text}")


def escalate(tx: Transaction, ticket: Ticket, now: float, engine: Engine) -> int:
    """Apply the levels ``ticket`` newly reached at ``now``; how many there were."""
    policy = engine.policy
    escalations = sla_watch(ticket, now, policy.sla)
    if not escalations:
        return 0
    applier = engine.applier(tx, now, None)
    applier.track(ticket)
    paged = []
    for escalation in escalations:
        text = notice(ticket, escalation)
        applier.timeline(ticket, "escalation", escalation.text, level=escalation.level,
                         deadline=escalation.deadline)
        applier.announce(ticket, "comment", text)
        if escalation.level in BREACHES and policy.escalation.bump_priority_on_breach \
                and ticket.priority is not Priority.P1:
            old, ticket.priority = ticket.priority, bumped(ticket.priority)
            change = f"priority {old} -> {ticket.priority} ({escalation.deadline}-by passed)"
            applier.timeline(ticket, "priority", change, old_priority=str(old),
                             new_priority=str(ticket.priority))
            applier.announce(ticket, "priority", f"Patrol: {change}")
            applier.rerender.add(ticket.stored_id)
        if _pages(escalation, policy.escalation):
            paged.append(text)
        log.warning("%s %s: %s", ticket.number, ticket.priority, escalation.text)
    ticket.escalation = escalations[-1].level
    applier.dirty.add(ticket.stored_id)
    applier.finish()
    if paged and policy.escalation.page is not None:  # (paged implies a page helpdesk)
        _page(tx, ticket, policy.escalation.page, paged, now, engine)
    return len(escalations)


def _pages(escalation: Escalation, settings: Any) -> bool:
    if settings.page is None:
        return False
    return settings.page_from == "near" or escalation.level in BREACHES


def _page(tx: Transaction, ticket: Ticket, helpdesk: str, texts: list[str], now: float,
          engine: Engine) -> None:
    """Send ``texts`` to the paging helpdesk, opening the ticket there first."""
    dispatcher = engine.dispatcher
    if dispatcher is None or helpdesk not in dispatcher.helpdesks:
        log.error("escalation page: no helpdesk %r is configured", helpdesk)
        return
    if any(row["helpdesk"] == helpdesk and row["action"] == "open"
           for row in tx.dispatch_rows(ticket.id)):
        return  # the ticket is there (routed, or paged before): notify told it already
    tx.enqueue_dispatch(ticket.stored_id, helpdesk, "open",
                        {"destination": asdict(Destination(helpdesk))}, now)
    for text in texts:
        tx.enqueue_dispatch(ticket.stored_id, helpdesk, "comment", {"text": text}, now)
    dispatcher.wakeup.set()

