"""The fleet as the collector knows it from heartbeats: ``GET /api/v1/hosts`` and
Prometheus HTTP service discovery (``GET /api/v1/sd/prometheus``).

The inventory answers "which agents run where, which version, since when silent, what
is failing and which tickets are open" in one call, so rolling out a new version can be
watched host by host: an agent whose version differs from the collector's is flagged.

Service discovery lists every reachable agent that announced its /metrics address
(``metrics_address`` in its heartbeats) in Prometheus's ``http_sd_configs`` format, so
a team that runs Prometheus never lists agents by hand. Both need an operator token
(Prometheus: ``authorization: {credentials_file: ...}``): they name every host.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request

from patrol.collector.access.auth import OPERATOR, require
from patrol.collector.model import Ticket
from patrol.contract.wire import PATROL_VERSION

if TYPE_CHECKING:
    from patrol.collector.store.base import TicketStore

router = APIRouter()

_NOT_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")


def prometheus_label(key: str) -> str:
    """A Patrol label key as a Prometheus label name (``[a-zA-Z_][a-zA-Z0-9_]*``, and
    not the reserved ``__`` prefix)."""
    name = _NOT_LABEL_CHARS.sub("_", key).lstrip("_") or "label"
    return f"label_{name}" if name[0].isdigit() else name


def _ticket_brief(ticket: Ticket) -> dict[str, Any]:
    return {"number": ticket.number, "title": ticket.title, "priority": str(ticket.priority),
            "status": str(ticket.status), "check": ticket.check}


def hosts_inventory(store: TicketStore, now: float, collector_version: str = PATROL_VERSION
                    ) -> dict[str, Any]:
    """Every host with its labels, agent version, heartbeat, checks and open tickets,
    and, for a host that pulled check sets, the version it holds and the one assigned
    to it at its last pull (:mod:`collector.ingest.check_sets`)."""
    pulls = store.check_set_pulls()
    checks: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for state in store.check_states():
        checks[state["host"]].append({k: state[k] for k in
                                      ("check", "type", "status", "summary", "since")})
    tickets: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for page in store.open_ticket_pages():  # light and paged: no bodies, not all at once
        for ticket in page:
            for host in {ticket.host, *ticket.hosts} - {None, ""}:
                tickets[host].append(_ticket_brief(ticket))
    hosts = []
    for row in store.hosts():
        name = row["host"]
        beat = row["last_heartbeat"]
        hosts.append({
            "host": name, "labels": row["labels"], "agent_id": row["agent_id"],
            "agent_version": row["version"],
            "version_differs": row["version"] != collector_version,
            "last_heartbeat": beat,
            "seconds_since_heartbeat": None if beat is None else max(0.0, now - beat),
            "reachable": row["reachable"], "metrics_address": row.get("metrics_address"),
            "checks": checks.get(name, []),
            "open_tickets": sorted(tickets.get(name, []), key=lambda t: t["priority"]),
            "check_set": _check_set(pulls.get(name)),
        })
    return {"collector_version": collector_version, "hosts": hosts}


def _check_set(pull: dict[str, Any] | None) -> dict[str, Any] | None:
    if pull is None:
        return None
    return {"version": pull["held"], "assigned": pull["assigned"],
            "current": pull["held"] == pull["assigned"], "pulled_at": pull["at"]}


def prometheus_targets(store: TicketStore) -> list[dict[str, Any]]:
    """``http_sd_configs`` target groups: one per reachable agent that announced where
    its /metrics is, labelled with its Patrol labels and host name."""
    groups = []
    for row in store.hosts():
        address = row.get("metrics_address")
        if not address or not row["reachable"]:
            continue
        labels = {prometheus_label(k): str(v) for k, v in sorted(row["labels"].items())}
        labels.update({"patrol_host": row["host"], "patrol_agent_version": row["version"]})
        groups.append({"targets": [address], "labels": labels})
    return groups


def _now(request: Request) -> float:
    clock: Callable[[], float] = getattr(request.app.state, "clock", time.time)
    return clock()


@router.get("/api/v1/hosts", tags=["fleet"])
def list_hosts(request: Request) -> dict[str, Any]:
    """The fleet inventory; ``version_differs`` marks agents not on the collector's
    version."""
    require(request, OPERATOR)
    return hosts_inventory(request.app.state.store, _now(request))


@router.get("/api/v1/sd/prometheus", tags=["fleet"])
def prometheus_sd(request: Request) -> list[dict[str, Any]]:
    """Prometheus HTTP service discovery: the agents' /metrics targets."""
    require(request, OPERATOR)
    return prometheus_targets(request.app.state.store)
