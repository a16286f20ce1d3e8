"""Flapping: a check that keeps changing state gets one annotated ticket, not churn.

A *state change* is the check going bad -> OK (a resolve event on an open ticket) or
OK -> bad (a trigger while recovering, or one that reopens a resolved ticket); a
repeat of a bad state is not one. A ticket is flapping while at least
``flap_changes`` (4) changes fall within the last ``flap_window`` (30 min). While it
is flapping its verification period is ``verify_for * flap_verify_factor`` (doubled),
so it stays open through the bounces instead of resolving and reopening; the flag
clears once the changes inside the window fall below the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence

from patrol.collector.model import Ticket
from patrol.collector.policy.settings import LifecycleConfig


def recent(changes: Sequence[float], now: float, config: LifecycleConfig) -> tuple[float, ...]:
    """The changes inside the window ending at ``now`` (older ones no longer count)."""
    return tuple(t for t in changes if now - config.flap_window < t <= now)


def note_change(changes: Sequence[float], now: float,
                config: LifecycleConfig) -> tuple[float, ...]:
    """The ticket's change list after a change at ``now``, pruned to the window."""
    return (*recent(changes, now, config), now)


def is_flapping(changes: Sequence[float], now: float, config: LifecycleConfig) -> bool:
    return len(recent(changes, now, config)) >= config.flap_changes


def verify_period(ticket: Ticket, config: LifecycleConfig) -> float:
    """How long the check must stay OK before ``ticket`` is resolved."""
    if ticket.flapping:
        return config.verify_for * config.flap_verify_factor
    return config.verify_for
