"""Which helpdesk, project, team and assignee a ticket goes to: the ``ticketing:``
block of the collector's config.

Routes are tried in order; the first whose ``match`` fits the ticket decides, unless
it says ``continue: true``, in which case later routes may add more destinations
(e.g. every P1 also pages through PagerDuty). An empty ``match`` fits everything, so
a last catch-all route is the default. Globs (``db-*``) work for hosts, checks and
label values.

Fleet incidents (:mod:`collector.tickets.fleet`): when hosts of a group fail together, the
group's parent ticket is routed like any ticket and its members stay in Patrol,
linked to it. A route with ``group_members: true`` sends the member tickets it
matches to its helpdesk as well.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from patrol.collector.model import Ticket
from patrol.collector.policy.settings import Seconds
from patrol.ticketing_bridge.protocol import Destination


class RouteMatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    hosts: list[str] = Field(default_factory=list)
    checks: list[str] = Field(default_factory=list)
    types: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    priorities: list[Literal["P1", "P2", "P3", "P4"]] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)

    def fits(self, ticket: Ticket) -> bool:
        def any_glob(value: str, patterns: list[str]) -> bool:
            return not patterns or any(fnmatch.fnmatchcase(value, p) for p in patterns)

        hosts = ticket.hosts or [ticket.host]
        return (any(any_glob(h, self.hosts) for h in hosts)
                and any_glob(ticket.check, self.checks)
                and any_glob(ticket.check_type, self.types)
                and any_glob(ticket.category, self.categories)
                and (not self.priorities or str(ticket.priority) in self.priorities)
                and all(fnmatch.fnmatchcase(ticket.labels.get(k, ""), v)
                        for k, v in self.labels.items()))


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    match: RouteMatch = Field(default_factory=RouteMatch)
    helpdesk: str
    project: str | None = None
    team: str | None = None
    assignee: str | None = None
    fields: dict[str, Any] = Field(default_factory=dict)
    continue_: bool = Field(default=False, alias="continue")
    group_members: bool = Field(
        default=False, description="also open the member tickets of a fleet incident "
        "here (by default only the incident's parent ticket goes to the helpdesk)")


class TicketingSettings(BaseModel):
    """The ``ticketing:`` block (the helpdesks themselves are validated by their
    adapters' own models, see :mod:`collector.config`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    helpdesks: dict[str, dict[str, Any]] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)
    on_remote_close: Literal["reopen", "respect"] = "reopen"
    sync_interval: Seconds = 60.0
    dispatch_interval: Seconds = 1.0
    workers: int = Field(default=4, ge=1, le=64)
    group_hold: Seconds = Field(
        default=10.0, description="how long the helpdesk open of a ticket that could "
        "still become part of a fleet incident (it has the grouping label) waits, and "
        "how long updates of a fleet incident gather before they are sent")
    base_url: str | None = Field(default=None, description="Patrol's web address, for links "
                                 "from helpdesk tickets back to Patrol")


def destinations(ticket: Ticket, routes: list[Route]) -> list[Destination]:
    """Where ``ticket`` goes, in route order; one destination per helpdesk. A member
    of a fleet incident (``parent_id`` set) goes only where its route says
    ``group_members``."""
    found: dict[str, Destination] = {}
    for route in routes:
        if not route.match.fits(ticket):
            continue
        member_kept_home = ticket.parent_id is not None and not route.group_members
        if route.helpdesk not in found and not member_kept_home:
            found[route.helpdesk] = Destination(route.helpdesk, route.project, route.team,
                                                route.assignee, dict(route.fields))
        if not route.continue_:
            break
    return list(found.values())
