"""What a scale scenario must have achieved, judged from the outside: the helpdesk
double's journal, Patrol's operator API, and the replicas' /metrics.

Every check adds a sentence to a list instead of failing at once, so one run of a
scenario reports everything that went wrong (which is what the branches fixing
dispatch, replicas and the watchdog need to read).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from tests.helpdesk_double_process import HelpdeskDouble
from tests.scale_fleet import Fleet, total
from tests.scale_workload import Workload

# Effects that change a ticket at the helpdesk, in the order a ticket's life has them.
LIFE = ("opened", "reprioritised", "resolved")


def settle(condition: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    """Wait until ``condition`` holds; False (not an exception) when it never did,
    so the scenario can still report everything else."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def helpdesk_count(double: HelpdeskDouble, effect: str) -> int:
    """Fingerprints that had ``effect`` at least once."""
    return sum(1 for counted in double.effects().values() if counted[effect])


class Verdict:
    """Collects problems; ``problems`` empty means the scenario passed."""

    def __init__(self, fleet: Fleet, double: HelpdeskDouble, workload: Workload) -> None:
        self.fleet, self.double, self.workload = fleet, double, workload
        self.problems: list[str] = []

    def expect(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)

    def conclude(self, **checks: Any) -> None:
        """Run every check (:meth:`check_all`) and fail with all the problems found,
        followed by the end of each replica's log."""
        self.check_all(**checks)
        assert not self.problems, f"{len(self.problems)} problem(s):\n- " + \
            "\n- ".join(self.problems) + "\n" + self.fleet.output()

    # -- waiting ---------------------------------------------------------------------------

    def wait_helpdesk(self, effect: str, what: str, stall: float = 30.0,
                      deadline: float | None = None) -> None:
        """Wait until every incident's ticket had ``effect`` at the helpdesk, for as
        long as the count keeps growing (a failure is reported after ``stall`` s
        without progress, not after a fixed time a slow machine might need), or at
        most ``deadline`` s when the scenario promises a time."""
        n, started = self.workload.count, time.monotonic()
        seen, progress = -1, started
        while True:
            have = helpdesk_count(self.double, effect)
            now = time.monotonic()
            if have >= n:
                return
            if have > seen:
                seen, progress = have, now
            if now - progress > stall or (deadline is not None and now - started > deadline):
                self.problems.append(f"{what}: after {now - started:.0f}s the helpdesk had "
                                     f"{effect} {have} of {n} tickets")
                return
            time.sleep(0.5)

    # -- the checks ------------------------------------------------------------------------

    def check_all(self, *, explained: set[str] = frozenset(),  # type: ignore[assignment]
                  replicas_survived: bool = True) -> None:
        """Every check. ``explained``: fingerprints whose request was in flight when a
        process was killed; only they may have been delivered (2xx) more than once."""
        numbers = self.check_patrol_tickets()
        self.check_helpdesk(numbers, explained)
        self.check_links()
        self.check_metrics(replicas_survived)
        self.check_clients()  # last: the checks above were client requests too

    def check_clients(self) -> None:
        errors = self.fleet.server_errors()
        self.expect(not errors, f"{len(errors)} client request(s) answered 5xx, first: "
                    f"{errors[:3]}")
        refused = self.fleet.refused()
        self.expect(not refused, f"{len(refused)} valid request(s) refused 4xx: {refused[:3]}")

    def check_patrol_tickets(self) -> dict[str, str]:
        """Patrol's own view: one ticket per incident, all resolved. Returns
        number -> dedup_key."""
        tickets = [t for t in self.fleet.tickets() if not t["is_group"]]
        per_key = Counter(t["dedup_key"] for t in tickets)
        wanted = {i.dedup_key for i in self.workload.incidents}
        self.expect(set(per_key) == wanted, f"Patrol has tickets for {len(per_key)} keys, "
                    f"{len(wanted)} incidents; extra {sorted(set(per_key) - wanted)[:5]}, "
                    f"missing {sorted(wanted - set(per_key))[:5]}")
        doubled = [k for k, n in per_key.items() if n > 1]
        self.expect(not doubled, f"{len(doubled)} incidents have several Patrol tickets: "
                    f"{doubled[:5]}")
        unresolved = Counter(t["status"] for t in tickets if t["status"] != "resolved")
        self.expect(not unresolved, f"Patrol tickets not resolved: {dict(unresolved)}")
        return {t["number"]: t["dedup_key"] for t in tickets}

    def check_helpdesk(self, numbers: dict[str, str], explained: set[str]) -> None:
        entries = self.double.entries()
        fingerprints: dict[str, set[str]] = {}
        for entry in entries:
            if entry["number"]:
                fingerprints.setdefault(entry["number"], set()).add(entry["fingerprint"])
        self.expect(set(fingerprints) == set(numbers),
                    f"the helpdesk heard of {len(fingerprints)} Patrol tickets, Patrol has "
                    f"{len(numbers)}; unknown there {sorted(set(numbers) - set(fingerprints))[:5]}")
        ambiguous = {n: f for n, f in fingerprints.items() if len(f) > 1}
        self.expect(not ambiguous, f"tickets with several fingerprints: {ambiguous}")
        escalating = self.workload.escalating
        counted = self.double.effects()
        # Without idempotency at the helpdesk, an open in flight at a crash is made twice:
        # allowed only there, and recognisable by its fingerprint.
        twice = set() if self.double.idempotent else explained
        opened = sum(c["opened"] for c in counted.values())
        extra = sum(counted[f]["opened"] - 1 for f in twice if counted[f]["opened"] > 1)
        self.expect(opened - extra == self.workload.count,
                    f"helpdesk tickets opened: {opened} ({extra} duplicates after a crash), "
                    f"incidents: {self.workload.count}")
        wrong, orphans = [], []
        for number, found in fingerprints.items():
            fingerprint = next(iter(found))
            have = counted[fingerprint]
            escalated = 1 if numbers.get(number) in escalating else 0
            # a priority change is sent as the change and a comment saying why
            want = {"opened": 1, "resolved": 1, "reprioritised": escalated,
                    "commented": escalated}
            if fingerprint in twice and have["opened"] > 1:
                want["opened"] = have["opened"]
            if any(have[effect] != n for effect, n in want.items()) or have["reopened"]:
                wrong.append(f"{number}: {dict(have)}")
            if have["orphan"]:
                orphans.append(number)
        self.expect(not wrong, f"{len(wrong)} tickets without exactly one open, priority "
                    "change and comment (escalating only) and resolve at the helpdesk: "
                    f"{wrong[:5]}")
        self.expect(not orphans, f"actions reached the helpdesk before their ticket: "
                    f"{orphans[:5]}")
        self._check_order(entries)
        self._check_sent_once(explained)

    def _check_order(self, entries: list[dict[str, Any]]) -> None:
        life: dict[str, list[str]] = {}
        for entry in entries:
            if entry["effect"] in LIFE:
                life.setdefault(entry["fingerprint"], []).append(entry["effect"])
        disordered = {f: seq for f, seq in life.items()
                      if seq != sorted(seq, key=LIFE.index)}
        self.expect(not disordered, f"{len(disordered)} tickets changed out of order at the "
                    f"helpdesk: {list(disordered.items())[:3]}")

    def _check_sent_once(self, explained: set[str]) -> None:
        """No action delivered twice, unless a crash explains it (then the duplicate
        is recognisable by the fingerprint, and idempotency must have absorbed it)."""
        twice = {f: dict(c) for f, c in self.double.accepted().items()
                 if any(n > 1 for n in c.values()) and f not in explained}
        self.expect(not twice, f"{len(twice)} tickets had an action delivered more than "
                    f"once with no crash to explain it: {list(twice.items())[:3]}")

    def check_metrics(self, replicas_survived: bool) -> None:
        per_replica = self.fleet.metrics()
        for name, samples in per_replica.items():
            still_open = total(samples, "patrol_collector_open_tickets")
            self.expect(still_open == 0, f"{name}: /metrics shows {still_open:.0f} open "
                        "tickets (the watchdog resolves verified recoveries)")
            backlog = total(samples, "patrol_collector_dispatch_backlog")
            self.expect(backlog == 0, f"{name}: /metrics shows {backlog:.0f} helpdesk "
                        "actions not delivered")
        if replicas_survived:
            accepted = sum(total(s, "patrol_collector_events_total", result="accepted")
                           for s in per_replica.values())
            self.expect(accepted == self.workload.events_sent,
                        f"the replicas accepted {accepted:.0f} events, "
                        f"{self.workload.events_sent} distinct ones were sent")

    def check_links(self, sample: int = 5) -> None:
        """The ticket page of a few tickets names the helpdesk ticket the double made
        (one of them, where a crash made two)."""
        made: dict[str, set[str]] = {}
        for entry in self.double.entries():
            if entry["effect"] == "opened":
                made.setdefault(entry["number"], set()).add(entry["ticket"])
        unreadable = []
        for number in sorted(made)[:sample]:
            page = self.fleet.ticket(number)
            if page is None:
                unreadable.append(number)
                continue
            links = [link["external_id"] for link in page.get("helpdesks") or []]
            self.expect(len(links) == 1 and links[0] in made[number],
                        f"{number}: Patrol links {links}, the helpdesk made {made[number]}")
            undelivered = [row for row in page.get("dispatch") or [] if row["state"] != "done"]
            self.expect(not undelivered, f"{number}: undelivered actions {undelivered}")
        self.expect(not unreadable, f"the ticket pages of {unreadable} could not be read")
