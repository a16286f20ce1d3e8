"""Means and rankings over ticket facts: the arithmetic every report shares.

MTTA is the mean time from opening to the first acknowledgement, over the tickets
that were acknowledged; MTTR the mean time from opening to resolution (the final
one, for a reopened ticket: it was not fixed before), over the tickets resolved.
Tickets without the event are counted in ``n`` of neither: a mean over made-up
values would flatter or punish, and the report shows ``n`` beside every mean.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from patrol.collector.reports.facts import TicketFacts

Key = Callable[[TicketFacts], str]


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def time_to_acknowledge(facts: TicketFacts) -> float | None:
    ticket = facts.ticket
    return None if ticket.acknowledged_at is None else ticket.acknowledged_at - ticket.opened_at


def time_to_resolve(facts: TicketFacts) -> float | None:
    ticket = facts.ticket
    done = ticket.resolved_at if ticket.resolved_at is not None else ticket.closed_at
    return None if done is None else done - ticket.opened_at


def mtta_mttr(facts: Iterable[TicketFacts]) -> dict[str, Any]:
    """``{"tickets", "acknowledged", "mtta_seconds", "resolved", "mttr_seconds"}``."""
    facts = list(facts)
    acks = [d for d in map(time_to_acknowledge, facts) if d is not None]
    fixes = [d for d in map(time_to_resolve, facts) if d is not None]
    return {"tickets": len(facts), "acknowledged": len(acks), "mtta_seconds": mean(acks),
            "resolved": len(fixes), "mttr_seconds": mean(fixes)}


def grouped(facts: Iterable[TicketFacts], key: Key,
            always: Sequence[str] = ()) -> list[dict[str, Any]]:
    """:func:`mtta_mttr` per value of ``key``: ``always`` first in that order (even
    when empty, so a table keeps its rows), then the others by name."""
    groups: dict[str, list[TicketFacts]] = defaultdict(list)
    for item in facts:
        groups[key(item)].append(item)
    names = [*always, *sorted(set(groups) - set(always))]
    return [{"key": name, **mtta_mttr(groups.get(name, []))} for name in names]


def incidents(facts: TicketFacts) -> int:
    """How many times the problem occurred: the ticket's opening plus each reopen."""
    return 1 + facts.reopens


def recurring(facts: Iterable[TicketFacts], key: Key, top: int,
              at_least: int = 2) -> list[dict[str, Any]]:
    """The ``top`` values of ``key`` by incidents (at least ``at_least``), most first,
    ties by name; with the tickets and reopens behind the count."""
    tickets: Counter[str] = Counter()
    reopens: Counter[str] = Counter()
    for item in facts:
        tickets[key(item)] += 1
        reopens[key(item)] += item.reopens
    rows: list[dict[str, Any]] = [
        {"key": k, "incidents": tickets[k] + reopens[k], "tickets": tickets[k],
         "reopens": reopens[k]} for k in tickets]
    rows = [r for r in rows if r["incidents"] >= at_least]
    rows.sort(key=lambda r: (-r["incidents"], r["key"]))
    return rows[:top]


def per_day(times: Iterable[float], day_starts: Sequence[float]) -> list[int]:
    """How many of ``times`` fall in each day starting at ``day_starts``."""
    counts = [0] * len(day_starts)
    for at in times:
        for i, start in enumerate(day_starts):
            if start <= at < start + 86400:
                counts[i] += 1
                break
    return counts
