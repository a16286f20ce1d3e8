"""Scale scenarios end to end, through public interfaces only: real ``patrol collector``
processes (three replicas on one PostgreSQL database, or one on SQLite), events and
heartbeats posted round-robin through the HTTP API as a fleet's agents would, and a
helpdesk double in its own process (:mod:`tests.helpdesk_double`) whose journal says
what each Patrol ticket received.

Every scenario plays a few dozen to 200 incidents (break, repeat or escalate,
recover; verification shortened to 2 s) and then judges, at the helpdesk, that each
incident became exactly one helpdesk ticket that was opened once, re-prioritised once
if it escalated, and resolved once, in that order; in Patrol, one resolved ticket per
incident linked to that helpdesk ticket; from every client, no 5xx; in every
replica's /metrics, nothing left open or undelivered (only the watchdog resolves
verified recoveries, so "nothing open" is the public sign that it ran). The
scenarios differ in what goes wrong meanwhile: nothing, a slow helpdesk, a helpdesk
answering 503 and 429 for a while, a replica killed with SIGKILL mid-dispatch, the
helpdesk killed with SIGKILL and restarted.

The double is idempotent by fingerprint (as PagerDuty is by ``dedup_key``): where a
crash makes a second delivery unavoidable, the second one must carry the same
fingerprint and be absorbed ("exactly once"); with no crash, nothing may be
delivered twice at all. The replica-kill scenario also runs against a plain helpdesk
without idempotency: there a request in flight at the crash may make a second
ticket, and only such tickets may ("at-least-once, duplicates recognisable by
fingerprint").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpdesk_double_process import HelpdeskDouble
from tests.scale_fleet import Fleet, total
from tests.scale_verdict import Verdict, helpdesk_count, settle
from tests.scale_workload import Workload

pytestmark = pytest.mark.slow
TAKEOVER = 30.0  # "a dead replica's work is taken over within seconds" (DESIGN.md)
# collector/dispatch/dispatcher.py LEASE: how long a dead replica's rows wait now
LEASE_TODAY = 120.0


@pytest.fixture(params=["postgresql-3-replicas", "sqlite-1-replica"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, int]:
    """(store URL, replica count)."""
    if request.param.startswith("postgresql"):
        return request.getfixturevalue("pg_schema_url"), 3
    return f"sqlite:///{tmp_path}/patrol.db", 1


@pytest.fixture
def double(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HelpdeskDouble]:
    """Idempotent by fingerprint unless parametrised ``False``."""
    desk = HelpdeskDouble(tmp_path / "helpdesk",
                          idempotent=getattr(request, "param", True)).start()
    yield desk
    desk.stop()


@pytest.fixture
def fleet(tmp_path: Path, store: tuple[str, int], double: HelpdeskDouble) -> Iterator[Fleet]:
    replicas = Fleet(tmp_path, store[0], store[1], double)
    try:
        yield replicas.start()
    finally:
        replicas.stop()


def play(fleet: Fleet, workload: Workload, *phases: str) -> list[list[dict]]:
    """Post the phases' batches (heartbeats first, with the breach); returns them."""
    sent = []
    for phase in phases:
        if phase == "breach":
            fleet.post_all("/api/v1/heartbeats", list(workload.heartbeats()))
        batches = list(workload.batches(phase))
        fleet.post_all("/api/v1/events", [{"events": b} for b in batches])
        sent += batches
    return sent


def in_flight(double: HelpdeskDouble, replica: str | None = None) -> set[str]:
    """Fingerprints of requests the double is processing now (from ``replica``)."""
    return {r["fingerprint"] for r in double.state()["in_flight"]
            if replica is None or r["replica"] == replica}


def busiest(double: HelpdeskDouble) -> tuple[str, int]:
    """The replica with the most requests in flight at the double, and how many."""
    counted = Counter(r["replica"] for r in double.state()["in_flight"])
    return counted.most_common(1)[0] if counted else ("", 0)


def dispatch_retries(fleet: Fleet) -> float:
    return sum(total(samples, "patrol_collector_dispatch_attempts_total", outcome="retry")
               for samples in fleet.metrics().values())


def test_a_healthy_helpdesk_hears_of_every_incident_exactly_once(
        fleet: Fleet, double: HelpdeskDouble) -> None:
    workload = Workload(200)
    verdict = Verdict(fleet, double, workload)
    breach = play(fleet, workload, "breach", "repeat")
    # Agents retry a batch whose answer they lost, often to another replica.
    fleet.post_all("/api/v1/events", [{"events": b} for b in breach[:10]])
    verdict.wait_helpdesk("opened", "all opened")
    play(fleet, workload, "recover")
    verdict.wait_helpdesk("resolved", "all resolved")
    verdict.conclude()


def test_a_slow_helpdesk_never_receives_an_action_twice(
        fleet: Fleet, double: HelpdeskDouble) -> None:
    double.admin(delay=[2, 5])
    workload = Workload(40)
    verdict = Verdict(fleet, double, workload)
    play(fleet, workload, "breach", "repeat", "recover")
    verdict.wait_helpdesk("opened", "all opened through a slow helpdesk")
    verdict.wait_helpdesk("resolved", "all resolved through a slow helpdesk")
    verdict.conclude()


def test_a_helpdesk_failing_for_a_while_loses_nothing(
        fleet: Fleet, double: HelpdeskDouble) -> None:
    workload = Workload(100)
    verdict = Verdict(fleet, double, workload)
    double.admin(fail_for={"seconds": 10, "status": 503})
    play(fleet, workload, "breach", "repeat")
    verdict.wait_helpdesk("opened", "all opened after 10 s of 503")
    double.admin(fail={"count": 30, "status": 429, "retry_after": 2})
    play(fleet, workload, "recover")
    settle(lambda: double.state()["fault"]["count"] == 0, 30)
    double.admin(fail={"count": 10, "status": 500})
    verdict.wait_helpdesk("resolved", "all resolved after 429s and 500s")
    refused = Counter(e["status"] for e in double.entries() if e["effect"] == "failed")
    verdict.expect(refused[503] > 0 and refused[429] == 30,
                   f"the faults were not exercised as planned: {dict(refused)}")
    verdict.conclude()


@pytest.mark.parametrize("double", [True, False], indirect=True,
                         ids=["idempotent-helpdesk", "plain-helpdesk"])
def test_a_replica_killed_mid_dispatch_has_its_work_taken_over(
        fleet: Fleet, double: HelpdeskDouble) -> None:
    double.admin(delay=[1, 2])
    workload = Workload(60)
    verdict = Verdict(fleet, double, workload)
    play(fleet, workload, "breach", "repeat")
    busy = settle(lambda: busiest(double)[1] >= 4, 60, 0.1)
    verdict.expect(busy, "no replica ever had 4 helpdesk requests in flight")
    victim = busiest(double)[0] or "r1"
    explained = in_flight(double, victim)
    fleet.replicas[victim].kill()
    explained |= in_flight(double, victim)  # still being processed for the dead replica
    if not fleet.live():  # the only replica (SQLite): its restart takes the work over
        fleet.replicas[victim].start()
    verdict.wait_helpdesk("opened", f"{victim} killed mid-dispatch: its opens taken over "
                          f"within {TAKEOVER:.0f}s", deadline=TAKEOVER)
    verdict.wait_helpdesk("opened", "all opened eventually (after a lease expired?)",
                          stall=LEASE_TODAY + 30)
    play(fleet, workload, "recover")
    verdict.wait_helpdesk("resolved", "all resolved")
    verdict.conclude(explained=explained, replicas_survived=False)


def test_a_helpdesk_killed_and_restarted_gets_everything_once(
        fleet: Fleet, double: HelpdeskDouble) -> None:
    double.admin(delay=[0.5, 1])
    workload = Workload(100)
    verdict = Verdict(fleet, double, workload)
    play(fleet, workload, "breach")
    settle(lambda: helpdesk_count(double, "opened") >= 10 and bool(in_flight(double)), 60,
           0.1)
    explained = in_flight(double)
    verdict.expect(bool(explained), "nothing was in flight when the helpdesk was killed")
    double.kill()
    play(fleet, workload, "repeat", "recover")  # the collectors take it all meanwhile
    verdict.expect(settle(lambda: dispatch_retries(fleet) > 0, 30),
                   "no replica's /metrics counted a failed delivery while the helpdesk "
                   "was down")
    double.start()
    verdict.wait_helpdesk("opened", "all opened after the helpdesk's restart")
    verdict.wait_helpdesk("resolved", "all resolved after the helpdesk's restart")
    verdict.conclude(explained=explained)
