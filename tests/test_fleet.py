"""A fleet incident is ONE helpdesk ticket, as the on-call engineer sees it.

The same check breaching on many hosts of one role within seconds: the helpdesk gets
the group's parent ticket only, naming every host, at the priority the scope gives
it; joins, the priority rising and recoveries reach it coalesced; it resolves there
once, after the last member's verified recovery. Every story runs on SQLite and on
PostgreSQL, through the real engine, applier, dispatch outbox and watchdog, with a
recording helpdesk (tests/test_dispatch.py's ``Desk``); tests/test_fleet_redmine.py
runs the burst against a real Redmine.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from patrol.collector.dispatch.dispatcher import Dispatcher
from patrol.collector.dispatch.routing import Route, RouteMatch, TicketingSettings
from patrol.collector.model import Priority, TicketStatus
from patrol.collector.policy.settings import LifecycleConfig, PolicyConfig
from tests.collector_fixtures import HOUR, MINUTE, World, event, store_for
from tests.test_dispatch import Desk

HOLD = 10.0
WEB = {"role": "web", "tier": "standard"}


class Fleet(World):
    """A World whose engine delivers to a recording helpdesk."""

    def __init__(self, store: Any, routes: list[Route] | None = None,
                 policy: PolicyConfig | None = None) -> None:
        super().__init__(store, policy)
        self.desk = Desk()
        settings = TicketingSettings(
            helpdesks={"desk": {"type": "desk"}}, group_hold=HOLD,
            routes=routes or [Route(helpdesk="desk", project="ops")])
        self.engine.dispatcher = Dispatcher(store, settings, {"desk": self.desk},
                                            {"desk": 4}, self.clock)

    def breach(self, host: str, status: str = "WARNING", **labels: str) -> Any:
        return self.one(event(host, "http", status=status, check_type="http",
                              labels={**WEB, **labels}, observed_at=self.clock(),
                              summary=f"https://{host}/health answered 503"))

    def recover(self, host: str) -> Any:
        return self.one(event(host, "http", status="OK", check_type="http", labels=WEB,
                              observed_at=self.clock()))

    def deliver(self, after: float = 0.0) -> None:
        """Move the clock by ``after`` seconds and deliver everything due."""
        self.clock.advance(after)
        while self.engine.dispatcher.run_once():
            pass

    def calls(self, what: str) -> list[str]:
        return [key for call, key in self.desk.calls if call == what]

    def open_in_desk(self) -> list[dict[str, Any]]:
        return [t for t in self.desk.tickets.values() if t["state"] == "open"]

    def parent(self) -> Any:
        [parent] = [t for t in self.store.list_tickets() if t.is_group]
        return parent

    def close(self) -> None:
        self.engine.dispatcher.close()


@pytest.fixture(params=["sqlite", "postgres"])
def fleet(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[Fleet]:
    store = store_for(request.param, request, tmp_path)
    world = Fleet(store)
    try:
        yield world
    finally:
        world.close()
        store.close()


HOSTS = [f"web-{n:02d}" for n in range(1, 31)]


def test_thirty_hosts_in_three_seconds_are_one_helpdesk_ticket_naming_all_of_them(
        fleet: Fleet) -> None:
    for host in HOSTS:
        fleet.breach(host)
        fleet.deliver(0.1)  # the dispatcher runs all along: nothing is due yet
    fleet.deliver(HOLD)

    parent = fleet.parent()
    assert fleet.calls("open") == [parent.number]
    [ticket] = fleet.desk.tickets.values()
    assert ticket["title"] == "http failing on 30 hosts with role=web"
    assert ticket["priority"] == "P1"  # P3 warning; +1 at 3 hosts, +2 at 10
    assert parent.priority is Priority.P1 and parent.hosts == HOSTS
    assert f"- **Impact scope**: 30 hosts: {', '.join(HOSTS)}" in parent.body
    members = fleet.store.children(parent.id)
    assert sorted(m.host for m in members) == HOSTS
    assert all(not fleet.store.link(m.id, "desk") for m in members)
    assert fleet.desk.calls[-1] == ("open", parent.number)  # no update after the open

    for host in HOSTS:  # all recover within seconds; the parent hears it once
        fleet.recover(host)
        fleet.clock.advance(0.1)
    fleet.deliver(HOLD)
    assert len(fleet.calls("priority")) == 1
    note = ticket["notes"][-1]
    assert note.startswith("Patrol: http failing on 30 hosts with role=web; priority P1.")
    assert "Failing (0): -" in note and "Recovering, being verified (30): web-01," in note

    fleet.tick(5 * MINUTE)  # verified: members resolve, the parent follows in the pass
    fleet.deliver(HOLD)
    assert fleet.store.get_ticket(parent.number).status is TicketStatus.RESOLVED
    assert fleet.calls("resolve") == ["1"] and ticket["state"] == "closed"
    assert ticket["notes"][-1] == ("Patrol verified the recovery: all 30 member tickets "
                                   "resolved")
    assert len(fleet.calls("open")) == 1 and len(fleet.calls("priority")) == 1


def test_joins_after_the_parent_reached_the_helpdesk_arrive_as_one_update(
        fleet: Fleet) -> None:
    for host in HOSTS[:3]:
        fleet.breach(host)
    fleet.deliver(HOLD)
    [ticket] = fleet.desk.tickets.values()
    assert (ticket["title"], ticket["priority"]) == (
        "http failing on 3 hosts with role=web", "P2")

    fleet.clock.advance(MINUTE)
    for host in HOSTS[3:10]:  # 7 more within 3 s: the scope reaches 10, P2 -> P1
        fleet.breach(host)
        fleet.deliver(0.4)
    fleet.deliver(HOLD)
    assert len(fleet.calls("open")) == 1
    assert len(fleet.calls("priority")) == 1 and ticket["priority"] == "P1"
    [note] = ticket["notes"]
    assert note.splitlines()[:2] == [
        "Patrol: http failing on 10 hosts with role=web; priority P1.",
        f"Failing (10): {', '.join(HOSTS[:10])}"]
    parent = fleet.parent()
    assert parent.title == "http failing on 10 hosts with role=web"
    assert fleet.texts(parent.number, "priority") == [
        "priority P2 -> P1 (warning on a standard-tier host; 10 hosts affected (+2))"]


def test_tickets_that_reached_the_helpdesk_before_the_group_are_merged_into_it(
        fleet: Fleet) -> None:
    fleet.breach("web-01")
    fleet.deliver(HOLD)
    fleet.breach("web-02")
    fleet.deliver(HOLD)  # two single-host tickets are in the helpdesk now
    assert len(fleet.open_in_desk()) == 2

    fleet.breach("web-03")  # the third host: a group forms
    fleet.deliver(HOLD)
    parent = fleet.parent()
    assert len(fleet.calls("open")) == 3  # web-01, web-02, then the parent; not web-03
    [still_open] = fleet.open_in_desk()
    assert still_open["title"] == "http failing on 3 hosts with role=web"
    merged = [t for t in fleet.desk.tickets.values() if t["state"] == "closed"]
    assert [t["notes"] for t in merged] == [[
        f"Patrol: merged into fleet incident {parent.number} (http failing on 3 hosts "
        f"with role=web). Patrol follows {host} there; this ticket is closed here so "
        "that the incident has one open ticket."] for host in ("web-01", "web-02")]
    for member in fleet.store.children(parent.id):  # open in Patrol, linked to the parent
        assert member.status.is_open and member.parent_id == parent.id

    fleet.engine.dispatcher.sync_once()  # the merged copies' close is not "reopen it"
    fleet.deliver()
    assert fleet.calls("reopen") == []
    assert all(m.status.is_open for m in fleet.store.children(parent.id))


def test_a_route_with_group_members_opens_the_members_there_too(
        request: pytest.FixtureRequest, tmp_path: object) -> None:
    routes = [Route(helpdesk="desk", project="storage", group_members=True,
                    match=RouteMatch(labels={"team": "storage"})),
              Route(helpdesk="desk", project="ops")]
    for kind in ("sqlite", "postgres"):
        store = store_for(kind, request, tmp_path / kind)  # type: ignore[operator]
        fleet = Fleet(store, routes)
        try:
            for host in HOSTS[:4]:  # web-01 and web-02 are the storage team's
                fleet.breach(host, **({"team": "storage"} if host < "web-03" else {}))
            fleet.deliver(HOLD)
            parent = fleet.parent()
            opened = {t["title"]: t["project"] for t in fleet.desk.tickets.values()}
            assert opened == {
                "https://web-01/health answered 503": "storage",
                "https://web-02/health answered 503": "storage",
                "http failing on 4 hosts with role=web": "ops"}, kind
            assert len(fleet.store.children(parent.id)) == 4
        finally:
            fleet.close()
            store.close()


def test_single_host_incidents_without_the_group_label_are_not_held(fleet: Fleet) -> None:
    fleet.one(event("db-01", "root-disk", labels={"tier": "standard"},
                    observed_at=fleet.clock()))
    fleet.deliver()
    assert len(fleet.calls("open")) == 1
    fleet.breach("web-01")
    fleet.deliver()
    assert len(fleet.calls("open")) == 1  # held: it may still become part of a group
    fleet.deliver(HOLD)
    assert len(fleet.calls("open")) == 2


def _resolved_incident(fleet: Fleet) -> Any:
    """Three hosts fail together, recover, and the incident is verified resolved."""
    for host in HOSTS[:3]:
        fleet.breach(host)
    fleet.deliver(HOLD)
    for host in HOSTS[:3]:
        fleet.recover(host)
    fleet.tick(5 * MINUTE)
    fleet.deliver(HOLD)
    parent = fleet.parent()
    assert parent.status is TicketStatus.RESOLVED and fleet.calls("resolve") == ["1"]
    return parent


def test_a_fleet_incident_that_comes_back_reopens_its_one_helpdesk_ticket(
        fleet: Fleet) -> None:
    parent = _resolved_incident(fleet)
    fleet.clock.advance(HOUR)
    fleet.breach("web-02")  # within the reopen window
    fleet.deliver(HOLD)
    assert fleet.store.get_ticket(parent.number).status is TicketStatus.IN_PROGRESS
    assert fleet.texts(parent.number, "reopened") == [
        "reopened as P2: web-02 failed again: https://web-02/health answered 503"]
    assert fleet.calls("reopen") == ["1"] and len(fleet.calls("open")) == 1
    [ticket] = fleet.desk.tickets.values()
    assert ticket["state"] == "open"
    assert ticket["notes"][-1].splitlines()[1:3] == ["Failing (1): web-02",
                                                     "Recovered (2): web-01, web-03"]


def test_a_member_failing_again_after_its_incident_closed_is_its_own_ticket(
        request: pytest.FixtureRequest, tmp_path: object) -> None:
    policy = PolicyConfig(lifecycle=LifecycleConfig(close_after=HOUR))
    for kind in ("sqlite", "postgres"):
        store = store_for(kind, request, tmp_path / kind)  # type: ignore[operator]
        fleet = Fleet(store, policy=policy)
        try:
            parent = _resolved_incident(fleet)
            fleet.tick(HOUR)  # the parent and its members close
            assert fleet.store.get_ticket(parent.number).status is TicketStatus.CLOSED
            fleet.clock.advance(MINUTE)
            again = fleet.breach("web-02")  # still within the member's reopen window
            fleet.deliver(HOLD)
            member = fleet.store.get_ticket(again.ticket)
            assert (again.outcome, member.parent_id) == ("reopened", None), kind
            assert fleet.store.get_ticket(parent.number).status is TicketStatus.CLOSED
            assert fleet.calls("reopen") == [] and fleet.calls("open")[-1] == member.number
            assert fleet.texts(member.number, "grouped")[-1] == (
                f"no longer part of {parent.number}, which is closed: this failure is "
                "its own incident")
        finally:
            fleet.close()
            store.close()


def test_the_worst_member_sets_the_incidents_severity_and_priority(fleet: Fleet) -> None:
    for host in HOSTS[:3]:
        fleet.breach(host)
    fleet.deliver(HOLD)
    [ticket] = fleet.desk.tickets.values()
    assert ticket["priority"] == "P2"  # warning on standard tier, +1 for 3 hosts

    fleet.clock.advance(MINUTE)
    fleet.breach("web-02", status="CRITICAL")
    fleet.deliver(HOLD)
    parent = fleet.parent()
    assert (parent.severity, parent.priority) == ("critical", Priority.P1)
    assert fleet.texts(parent.number, "severity") == [
        "severity warning -> critical; priority P2 -> P1 (critical on a standard-tier "
        "host; 3 hosts affected (+1))"]
    assert ticket["priority"] == "P1" and len(fleet.calls("priority")) == 1

    fleet.clock.advance(MINUTE)
    fleet.breach("web-02")  # back to warning: so is the incident
    fleet.deliver(HOLD)
    assert fleet.parent().priority is Priority.P2 and ticket["priority"] == "P2"


@pytest.mark.slow
def test_thirty_hosts_arriving_at_once_on_many_threads_are_still_one_ticket(
        fleet: Fleet) -> None:
    """The collector's HTTP workers ingest the burst concurrently: competing group
    openings retry into joins, and the helpdesk still gets one ticket."""
    barrier = threading.Barrier(len(HOSTS))

    def breach(host: str) -> str:
        barrier.wait()
        return fleet.breach(host).outcome  # type: ignore[no-any-return]

    with ThreadPoolExecutor(len(HOSTS)) as pool:
        assert list(pool.map(breach, HOSTS)) == ["opened"] * len(HOSTS)
    fleet.deliver(HOLD)
    parent = fleet.parent()
    assert sorted(parent.hosts) == HOSTS and parent.priority is Priority.P1
    assert sorted(m.host for m in fleet.store.children(parent.id)) == HOSTS
    assert fleet.calls("open") == [parent.number]
    [ticket] = fleet.desk.tickets.values()
    assert ticket["title"] == "http failing on 30 hosts with role=web"
