"""The daily inspection report: the state of the fleet and what the day's tickets say.

Two kinds of fact, labelled as such in the report:

* the fleet now: hosts, their last heartbeat and each check's latest status and
  summary (the summary carries the key value: "/var is 93.4% full on db-01"). The
  store keeps only the latest result per check, so for a past day this is still the
  latest state, never a reconstruction; hosts inspected and checks run are therefore
  known for today only;
* the day's tickets, ``[day start, as_of)`` where ``as_of`` is the end of the day, or
  ``now`` for today: opened, reopened, resolved, open at ``as_of``, SLAs at risk.

A ticket is open at ``as_of`` if it was opened before and not resolved since its
opening or its latest reopen (:meth:`TicketFacts.open_at`, from the timeline). An
SLA is at risk when its deadline has passed or less than ``1 - near_ratio`` of its
target is left (the watchdog's "near"), for a deadline still running: respond-by
until the ticket is answered, resolve-by until resolved.

Capacity forecasts come from the measurement rollups (collector/reports/capacity.py,
added by collector/reports/make.py, which reads the store).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from patrol.collector.model import Priority
from patrol.collector.policy.lifecycle import heartbeat_lost
from patrol.collector.policy.settings import PolicyConfig
from patrol.collector.reports.facts import TicketFacts
from patrol.collector.reports.period import Period

SCHEMA = 1
TOP_RISKS = 10
STATUSES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
STATUS_ORDER = {s: i for i, s in enumerate(("CRITICAL", "UNKNOWN", "WARNING", "OK"))}


def done_at(facts: TicketFacts) -> float | None:
    ticket = facts.ticket
    return ticket.resolved_at if ticket.resolved_at is not None else ticket.closed_at


def deadlines(facts: TicketFacts, moment: float,
              policy: PolicyConfig) -> list[dict[str, Any]]:
    """The still-running deadlines of a ticket open at ``moment``, with their risk."""
    ticket, config = facts.ticket, policy.sla
    running = []
    if facts.responded_at is None or facts.responded_at > moment:
        running.append(("respond", ticket.respond_by, config.respond[ticket.priority]))
    running.append(("resolve", ticket.resolve_by, config.resolve[ticket.priority]))
    return [{"deadline": name, "due_at": due, "left_seconds": due - moment,
             "overdue": moment > due,
             "at_risk": due - moment <= (1 - config.near_ratio) * target}
            for name, due, target in running]


def risk_row(facts: TicketFacts, moment: float, policy: PolicyConfig) -> dict[str, Any]:
    ticket = facts.ticket
    clocks = deadlines(facts, moment, policy)
    return {"ticket": ticket.number, "priority": ticket.priority.value, "title": ticket.title,
            "host": ticket.host, "check": ticket.check, "status": ticket.status.value,
            "opened_at": ticket.opened_at, "flapping": facts.flapped,
            "at_risk": any(c["at_risk"] for c in clocks),
            "overdue": any(c["overdue"] for c in clocks), "deadlines": clocks}


def ticket_row(facts: TicketFacts, at: float) -> dict[str, Any]:
    ticket = facts.ticket
    return {"ticket": ticket.number, "priority": ticket.priority.value, "title": ticket.title,
            "host": ticket.host, "check": ticket.check, "category": ticket.category,
            "at": at}


def not_reporting(hosts: Sequence[Mapping[str, Any]], now: float,
                  policy: PolicyConfig) -> list[dict[str, Any]]:
    """Hosts marked unreachable, or whose heartbeat is overdue at ``now``."""
    lost = set(heartbeat_lost([{**h, "interval_seconds": h["interval"]} for h in hosts],
                              now, policy.liveness.heartbeat_factor))
    return [{"host": h["host"], "last_heartbeat": h["last_heartbeat"],
             "silent_seconds": now - h["last_heartbeat"], "interval_seconds": h["interval"]}
            for h in hosts if h["host"] in lost or not h.get("reachable", True)]


def fleet(hosts: Sequence[Mapping[str, Any]], states: Sequence[Mapping[str, Any]],
          silent: set[str]) -> list[dict[str, Any]]:
    """Every host with its checks, worst status first within a host."""
    by_host: dict[str, list[dict[str, Any]]] = {h["host"]: [] for h in hosts}
    for state in states:
        by_host.setdefault(state["host"], []).append({
            "check": state["check"], "type": state["type"], "status": state["status"],
            "summary": state["summary"], "last_run": state["last_run"]})
    labels = {h["host"]: dict(h.get("labels") or {}) for h in hosts}
    beats = {h["host"]: h["last_heartbeat"] for h in hosts}
    return [{"host": name, "labels": labels.get(name, {}), "reporting": name not in silent,
             "last_heartbeat": beats.get(name),
             "checks": sorted(checks, key=lambda c: (STATUS_ORDER.get(c["status"], 0),
                                                     c["check"]))}
            for name, checks in sorted(by_host.items())]


def inspected(states: Sequence[Mapping[str, Any]], day: Period,
              now: float) -> list[Mapping[str, Any]] | None:
    """The check states whose latest run falls in ``day``; None for a day that has
    ended: a check that ran that day and again since shows only the later run, so the
    day's own count is not kept anywhere, and 0 would be a false figure."""
    if now >= day.end:
        return None
    return [s for s in states if s["last_run"] is not None and day.contains(s["last_run"])]


def per_hour(times: Sequence[float], day: Period) -> list[int]:
    counts = [0] * 24
    for at in times:
        if day.contains(at):
            counts[int((at - day.start) // 3600)] += 1
    return counts


def _day_tickets(facts: Sequence[TicketFacts], day: Period) -> dict[str, list[Any]]:
    opened = [f for f in facts if day.contains(f.ticket.opened_at)]
    reopened = [(f, at) for f in facts for at in f.reopened_at if day.contains(at)]
    resolved = [(f, at) for f in facts if (at := done_at(f)) is not None and day.contains(at)]
    return {"opened": opened, "reopened": reopened, "resolved": resolved}


def build(facts: Sequence[TicketFacts], hosts: Sequence[Mapping[str, Any]],
          states: Sequence[Mapping[str, Any]], day: Period, now: float,
          policy: PolicyConfig | None = None, *, top: int = TOP_RISKS) -> dict[str, Any]:
    """The inspection report of ``day`` (one UTC day), made at ``now``. ``facts`` must
    reach back to the previous day (for "since yesterday") and hold every open ticket."""
    policy = policy or PolicyConfig()
    as_of = min(now, day.end)
    today, yesterday = _day_tickets(facts, day), _day_tickets(facts, day.previous())
    silent = not_reporting(hosts, now, policy)
    open_now = [f for f in facts if f.open_at(as_of)]
    risks = sorted((risk_row(f, as_of, policy) for f in open_now),
                   key=lambda r: (not r["overdue"], not r["at_risk"],
                                  Priority(r["priority"]).rank,
                                  min(c["due_at"] for c in r["deadlines"]), r["ticket"]))
    status = Counter(s["status"] for s in states)
    ran = inspected(states, day, now)
    return {
        "report": "daily",
        "schema": SCHEMA,
        "generated_at": now,
        "date": str(day.first_day),
        "as_of": as_of,
        "summary": {
            "hosts": len(hosts),
            "hosts_inspected": None if ran is None else len({s["host"] for s in ran}),
            "hosts_not_reporting": len(silent),
            "checks": len(states),
            "checks_run": None if ran is None else len(ran),
            "status": {s: status.get(s, 0) for s in STATUSES},
            "tickets_opened": len(today["opened"]),
            "tickets_reopened": len(today["reopened"]),
            "tickets_resolved": len(today["resolved"]),
            "tickets_open": len(open_now),
            "sla_at_risk": sum(r["at_risk"] for r in risks),
        },
        "open_by_priority": {p.value: sum(f.ticket.priority is p for f in open_now)
                             for p in Priority},
        "not_reporting": silent,
        "fleet": fleet(hosts, states, {h["host"] for h in silent}),
        "top_risks": risks[:top],
        "changes": {
            "new_failures": [ticket_row(f, f.ticket.opened_at) for f in today["opened"]],
            "reopened": [ticket_row(f, at) for f, at in today["reopened"]],
            "recoveries": [ticket_row(f, at) for f, at in today["resolved"]],
            "yesterday": {"opened": len(yesterday["opened"]),
                          "reopened": len(yesterday["reopened"]),
                          "resolved": len(yesterday["resolved"])},
        },
        "per_hour": {"opened": per_hour([f.ticket.opened_at for f in today["opened"]], day),
                     "resolved": per_hour([at for _, at in today["resolved"]], day)},
    }
