"""The retrospective (DOMAIN.md step 7): how fast we responded and resolved, against
the targets, and what keeps coming back; with the previous period for a trend.

The population is the non-group tickets *opened* in the period: a ticket belongs to
the period its problem started in, whenever it ends. Outcomes still unknown
(unresolved, deadline ahead) are judged at ``now``, the time the report is made.

Noisy tickets are threshold-tuning candidates: no person ever touched them and they
were first resolved (by Patrol's verification) within ``noise_within`` seconds of
opening; a check that produces many is alarming on blips nobody needs to act on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from patrol.collector.model import Priority
from patrol.collector.reports import figures, sla
from patrol.collector.reports.facts import TicketFacts
from patrol.collector.reports.period import Period

SCHEMA = 1
TOP = 10
NOISE_WITHIN = 30 * 60.0


def is_noisy(facts: TicketFacts, within: float) -> bool:
    first = facts.first_resolved_at
    return (not facts.human and first is not None
            and first - facts.ticket.opened_at <= within)


def reopen_summary(population: Sequence[TicketFacts]) -> dict[str, Any]:
    """Reopened tickets over the tickets that were ever resolved (only those could)."""
    resolved = [f for f in population if f.ever_resolved]
    reopened = [f for f in resolved if f.reopens]
    return {"reopened": len(reopened), "ever_resolved": len(resolved),
            "rate": len(reopened) / len(resolved) if resolved else None,
            "tickets": [f.ticket.number for f in reopened]}


def flapping(population: Sequence[TicketFacts]) -> list[dict[str, Any]]:
    """Host and check pairs whose tickets flapped, most tickets first."""
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for f in population:
        if f.flapped:
            found[(f.ticket.host, f.ticket.check)].append(f.ticket.number)
    rows = [{"host": h, "check": c, "tickets": len(n), "numbers": n}
            for (h, c), n in found.items()]
    return sorted(rows, key=lambda r: (-r["tickets"], r["check"], r["host"]))


def noisy(population: Sequence[TicketFacts], within: float, top: int) -> dict[str, Any]:
    per_check: dict[str, list[TicketFacts]] = defaultdict(list)
    for f in population:
        per_check[f.ticket.check].append(f)
    rows: list[dict[str, Any]] = []
    for check, items in per_check.items():
        noise = [f for f in items if is_noisy(f, within)]
        if noise:
            rows.append({"check": check, "noisy_tickets": len(noise), "tickets": len(items),
                         "hosts": sorted({f.ticket.host for f in noise}),
                         "numbers": [f.ticket.number for f in noise]})
    rows.sort(key=lambda r: (-r["noisy_tickets"], r["check"]))
    return {"within_seconds": within, "checks": rows[:top]}


def summary(population: Sequence[TicketFacts], now: float,
            noise_within: float) -> dict[str, Any]:
    """The headline figures, the same for the period and the one before it."""
    overall = figures.mtta_mttr(population)
    total = sla.compliance(population, now)["total"]
    reopens = reopen_summary(population)
    return {**overall,
            "respond_compliance": total["respond"]["compliance"],
            "resolve_compliance": total["resolve"]["compliance"],
            "reopen_rate": reopens["rate"],
            "flapping_tickets": sum(f.flapped for f in population),
            "noisy_tickets": sum(is_noisy(f, noise_within) for f in population)}


TREND_METRICS = ("tickets", "mtta_seconds", "mttr_seconds", "respond_compliance",
                 "resolve_compliance", "reopen_rate", "flapping_tickets", "noisy_tickets")


def trend(current: dict[str, Any], previous: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for metric in TREND_METRICS:
        now_value, before = current[metric], previous[metric]
        delta = None if now_value is None or before is None else now_value - before
        rows.append({"metric": metric, "current": now_value, "previous": before,
                     "delta": delta})
    return rows


def build(facts: Sequence[TicketFacts], period: Period, now: float, *,
          noise_within: float = NOISE_WITHIN, top: int = TOP) -> dict[str, Any]:
    """The retrospective of ``period`` from ``facts`` (which must include the tickets
    of the previous period, for the trend), judged at ``now``."""
    before = period.previous()
    population = [f for f in facts if period.contains(f.ticket.opened_at)]
    earlier = [f for f in facts if before.contains(f.ticket.opened_at)]
    current = summary(population, now, noise_within)
    previous = summary(earlier, now, noise_within)
    days = period.day_starts()
    return {
        "report": "retro",
        "schema": SCHEMA,
        "generated_at": now,
        "period": period.as_dict(),
        "previous_period": before.as_dict(),
        "summary": current,
        "previous": previous,
        "trend": trend(current, previous),
        "by_priority": figures.grouped(population, lambda f: f.ticket.priority.value,
                                       [p.value for p in Priority]),
        "by_category": figures.grouped(population, lambda f: f.ticket.category),
        "by_team": figures.grouped(population, lambda f: f.team),
        "by_check_type": figures.grouped(population, lambda f: f.ticket.check_type),
        "sla": sla.compliance(population, now),
        "reopens": reopen_summary(population),
        "recurring": {
            "by_check": figures.recurring(population, lambda f: f.ticket.check, top),
            "by_host": figures.recurring(population, lambda f: f.ticket.host, top),
            "by_category": figures.recurring(population, lambda f: f.ticket.category, top),
        },
        "flapping": flapping(population),
        "noisy": noisy(population, noise_within, top),
        "per_day": {
            "days": [str(Period(s, s + 1).first_day) for s in days],
            "opened": figures.per_day((f.ticket.opened_at for f in population), days),
            "previous_opened": figures.per_day((f.ticket.opened_at for f in earlier),
                                               before.day_starts()),
        },
    }
