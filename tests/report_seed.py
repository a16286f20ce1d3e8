"""A day of realistic tickets, made by a real Engine and Watchdog on a fake clock, for
the report tests; every figure the reports show is computed by hand from it below.

The retrospective's period is 2023-10-27 (``T0`` is 09:00 that day), the previous
period 2023-10-26. Minutes are from ``T0``; P2 = CRITICAL on a standard-tier host
(respond 30m, resolve 24h), P1 = CRITICAL on a critical-tier host (15m, 4h),
P3 = WARNING on a standard host (1h, 72h); verification is 5 min.

Previous day, 09:00: J db-01/memory P2 (team dba), acknowledged after 20m, recovers
    at 60m, resolved at 65m.
The day:
  0  A db-01/root-disk P2 dba, B db-02/root-disk P2 dba, C web-01/site-http P2 web,
     D core-01/orders-api P1 web (never acknowledged, never recovers)
  5  A acknowledged;  10  B acknowledged;  45  C acknowledged (15m late)
 20  A OK -> resolved 25;  50  B OK -> resolved 55;  60  C OK -> resolved 65
 60  E web-02/cpu P3: OK at 62 -> resolved 67 by itself; breaks again at 120 ->
     reopened; OK at 123 -> resolved 128
180  H web-03/cpu P3: OK at 181 -> resolved 186 by itself
240  I db-03/swap P3 flaps: OK 241, WARNING 242, OK 243, WARNING 244 (still open)
200  old-01 sends its last heartbeat; 269 every other host sends one; now = 270
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from patrol.collector.tickets.actions import act
from tests.collector_fixtures import (
    DAY,
    HOUR,
    MINUTE,
    T0,
    World,
    event,
    heartbeat,
    snapshot,
    store_for,
)

NOW = T0 + 270 * MINUTE
DBA = {"tier": "standard", "team": "dba"}
WEB = {"tier": "standard", "team": "web"}
CORE = {"tier": "critical", "team": "web"}
PLAIN = {"tier": "standard"}


@dataclass
class Seeded:
    world: World
    numbers: dict[str, str]  # letter -> ticket number

    def number(self, letter: str) -> str:
        return self.numbers[letter]


def _at(world: World, minutes: float) -> None:
    target = T0 + minutes * MINUTE
    assert target >= world.clock(), "the story must move forward in time"
    world.clock.now[0] = target


SUMMARIES = {"root-disk": "/var is 96.2% full on {host} (critical at 95%)",
             "memory": "memory 97% used on {host} (critical at 95%)",
             "site-http": "the shop answered 503 on {host}",
             "orders-api": "orders-api refused the connection on {host}",
             "cpu": "CPU 88% busy on {host} (warning at 80%)",
             "swap": "swap 71% used on {host} (warning at 50%)"}


def _send(world: World, host: str, check: str, status: str, check_type: str,
          labels: dict[str, str]) -> str | None:
    summary = None if status == "OK" else SUMMARIES[check].format(host=host)
    outcome = world.one(event(host, check, status=status, check_type=check_type,
                              labels=labels, observed_at=world.clock(), summary=summary))
    return outcome.ticket


def _tick_at(world: World, minutes: float) -> None:
    _at(world, minutes)
    world.tick()


def seed(world: World) -> Seeded:
    numbers: dict[str, str] = {}
    clock = world.clock
    clock.now[0] = T0 - 24 * HOUR
    numbers["J"] = _send(world, "db-01", "memory", "CRITICAL", "memory", DBA)
    clock.advance(20 * MINUTE)
    act(world.engine, numbers["J"], "acknowledge", "alice")
    clock.advance(40 * MINUTE)
    _send(world, "db-01", "memory", "OK", "memory", DBA)
    clock.advance(5 * MINUTE)
    world.tick()

    _at(world, 0)
    for letter, host, check, kind, labels in (
            ("A", "db-01", "root-disk", "disk", DBA), ("B", "db-02", "root-disk", "disk", DBA),
            ("C", "web-01", "site-http", "http", WEB),
            ("D", "core-01", "orders-api", "http", CORE)):
        numbers[letter] = _send(world, host, check, "CRITICAL", kind, labels)
    steps: list[tuple[float, str, tuple[object, ...]]] = [
        (5, "ack", ("A",)), (10, "ack", ("B",)),
        (20, "send", ("db-01", "root-disk", "OK", "disk", DBA)), (25, "tick", ()),
        (45, "ack", ("C",)),
        (50, "send", ("db-02", "root-disk", "OK", "disk", DBA)), (55, "tick", ()),
        (60, "send", ("web-01", "site-http", "OK", "http", WEB)),
        (60, "send", ("web-02", "cpu", "WARNING", "cpu", PLAIN)),
        (62, "send", ("web-02", "cpu", "OK", "cpu", PLAIN)),
        (65, "tick", ()), (67, "tick", ()),
        (120, "send", ("web-02", "cpu", "WARNING", "cpu", PLAIN)),
        (123, "send", ("web-02", "cpu", "OK", "cpu", PLAIN)), (128, "tick", ()),
        (180, "send", ("web-03", "cpu", "WARNING", "cpu", PLAIN)),
        (181, "send", ("web-03", "cpu", "OK", "cpu", PLAIN)), (186, "tick", ()),
        (200, "silent host", ()),
        (240, "send", ("db-03", "swap", "WARNING", "swap", PLAIN)),
        (241, "send", ("db-03", "swap", "OK", "swap", PLAIN)),
        (242, "send", ("db-03", "swap", "WARNING", "swap", PLAIN)),
        (243, "send", ("db-03", "swap", "OK", "swap", PLAIN)),
        (244, "send", ("db-03", "swap", "WARNING", "swap", PLAIN)),
    ]
    for minutes, what, args in steps:
        _at(world, minutes)
        if what == "ack":
            act(world.engine, numbers[str(args[0])], "acknowledge", "alice")
        elif what == "tick":
            world.tick()
        elif what == "silent host":
            _beat(world, "old-01", PLAIN, [("root-disk", "disk", "OK",
                                            "/ is 41.0% full on old-01")])
        else:
            ticket = _send(world, *args)  # type: ignore[arg-type]
            letter = {"web-02": "E", "web-03": "H", "db-03": "I"}.get(str(args[0]))
            if letter and ticket:
                numbers.setdefault(letter, ticket)
    _heartbeats(world)
    _at(world, 270)
    return Seeded(world, numbers)


def _beat(world: World, host: str, labels: dict[str, str],
          checks: list[tuple[str, str, str, str]]) -> None:
    now = world.clock()
    world.engine.heartbeat(heartbeat(host, [
        snapshot(check, status, check_type=kind, summary=summary, since=now - HOUR,
                 last_run=now) for check, kind, status, summary in checks],
        sent_at=now, interval=30.0, labels=labels))


def _heartbeats(world: World) -> None:
    _at(world, 269)
    _beat(world, "db-01", DBA, [("root-disk", "disk", "OK", "/var is 71.5% full on db-01"),
                                ("memory", "memory", "OK", "memory 43% used on db-01")])
    _beat(world, "db-02", DBA, [("root-disk", "disk", "OK", "/var is 64.0% full on db-02")])
    _beat(world, "web-01", WEB, [("site-http", "http", "OK", "the shop answered 200 "
                                                            "in 84ms")])
    _beat(world, "core-01", CORE, [("orders-api", "http", "CRITICAL",
                                    "orders-api refused the connection on core-01")])
    _beat(world, "web-02", PLAIN, [("cpu", "cpu", "OK", "CPU 22% busy on web-02")])
    _beat(world, "web-03", PLAIN, [("cpu", "cpu", "OK", "CPU 31% busy on web-03")])
    _beat(world, "db-03", PLAIN, [("swap", "swap", "WARNING", "swap 71% used on db-03")])


def seeded_story(kind: str, request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Seeded]:
    """For a fixture: the story told on a fresh ``kind`` store, closed afterwards."""
    store = store_for(kind, request, tmp_path)
    try:
        yield seed(World(store))
    finally:
        store.close()


__all__ = ["DAY", "NOW", "Seeded", "seed", "seeded_story"]
