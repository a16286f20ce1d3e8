#!/usr/bin/env python3
"""What fleet one collector core carries: collector CPU per heartbeat, measured.

One command, from the repository root: ``python bench/heartbeat_capacity.py``
(``--checks 25 --hosts 1000 --rounds 5``). It starts one real ``patrol collector``
(SQLite in a temporary directory, tests/procs.py), registers ``--hosts`` hosts (round
0, every heartbeat new: the full path), then sends, per phase, ``--rounds`` rounds of
one heartbeat per host:

- *unchanged*: only ``sent_at`` and ``last_run`` move, as a quiet fleet's agents send
  them (the quiet path, recognised by its bytes);
- *values change*: every check also has a new summary ("CPU 37% busy on fleet-00012")
  and new measurement values (two per check), as a real fleet's cpu/load/disk checks
  send them: the values-only path since it exists, the full path before;
- *state changes*: one check per host flips between OK and WARNING (new ``since``), so
  every heartbeat takes the full path and its reconciliation opens or resolves a
  ticket (``--state-rounds``, 2).

Printed per phase: heartbeats/s, the collector's CPU per heartbeat (user+system from
/proc/PID/stat, the one-second group writes included), and the fleet that CPU allows
at a 30 s heartbeat on one core (30 s / CPU per heartbeat); with the load average.
The client runs on the same machine, so heartbeats/s understates a dedicated core;
the CPU per heartbeat does not depend on it. It asserts nothing; it prints.

``--breakdown`` instead splits a values-changing heartbeat's CPU into its stages, in
process (an engine on a SQLite file, ``time.process_time``, no HTTP): JSON parse, wire
validation, keeping it (digest, samples), and its share of the group write.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.collector_bench import SINCE, encode, heartbeat_bodies, in_threads  # noqa: E402
from bench.pg_ingest import cpu_seconds, load  # noqa: E402
from tests.procs import CollectorProcess  # noqa: E402

INTERVAL = 30.0  # seconds between an agent's heartbeats


def changing_bodies(hosts: int, checks: int, round_: int, flip: bool = False
                    ) -> list[bytes]:
    """One heartbeat per host whose every check says and measures something new this
    round (``round_`` varies the numbers); with ``flip``, each host's ``check-0`` is
    WARNING on odd rounds and OK on even ones, since now (a state change)."""
    now = datetime.now(UTC).isoformat()
    bodies = []
    for h in range(hosts):
        host = f"fleet-{h:05d}"
        grid = []
        for c in range(checks):
            busy = (h * 7 + c * 13 + round_ * 29) % 97 + 1
            status = "WARNING" if flip and c == 0 and round_ % 2 else "OK"
            grid.append({
                "check": f"check-{c}", "type": "cpu", "status": status,
                "summary": f"CPU {busy}% busy on {host}",
                "since": now if flip and c == 0 else SINCE, "last_run": now, "labels": {},
                "interval_seconds": 30,
                "measurements": [{"name": "busy_ratio", "value": busy / 100},
                                 {"name": "load1", "item": "", "value": busy / 25}]})
        bodies.append(encode({
            "schema_version": 1, "source": host,
            "agent": {"id": f"agent-{h:05d}", "version": "1.0"}, "sequence": round_,
            "sent_at": now, "interval_seconds": 30,
            "labels": {"tier": "standard", "team": "ops"}, "checks": grid}))
    return bodies


def phase(name: str, pid: int, port: int, rounds: Iterable[list[bytes]], threads: int) -> None:
    """Send ``rounds`` (each made just before it is sent: fresh times) and print."""
    before, wall, sent, errors = cpu_seconds(pid), 0.0, 0, 0
    for bodies in rounds:
        seconds, results = in_threads(port, threads, bodies, "/api/v1/heartbeats")
        wall += seconds
        sent += len(bodies)
        errors += sum(1 for status, _ in results if status != 202)
    time.sleep(1.5)  # the group write of the last round's times is part of the cost
    cpu = cpu_seconds(pid) - before
    per = cpu / sent
    print(f"{name:<28} {sent / wall:8.0f} heartbeats/s  collector CPU {per * 1e3:.3f} ms"
          f"/heartbeat  one core at {INTERVAL:g} s: {INTERVAL / per:9,.0f} hosts  "
          f"{errors} non-202  [{load()}]", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--checks", type=int, default=25, help="checks per host (25)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=4, help="client threads (4)")
    parser.add_argument("--state-rounds", type=int, default=2,
                        help="rounds in which one check per host changes state (2)")
    parser.add_argument("--phases", default="quiet,values,state",
                        help="which phases after the new hosts (quiet,values,state)")
    parser.add_argument("--breakdown", action="store_true",
                        help="the values path's CPU per stage, in process")
    args = parser.parse_args(argv)
    if args.breakdown:
        return breakdown(args.hosts, args.checks, args.rounds)
    print(f"machine: {os.cpu_count()} CPUs, {load()}; {args.hosts} hosts x "
          f"{args.checks} checks", flush=True)
    with tempfile.TemporaryDirectory(prefix="patrol-hb-") as tmp:
        collector = CollectorProcess(Path(tmp))
        try:
            collector.start()
            pid, port = collector.pid, collector.port
            phase("new hosts (full path)", pid, port,
                  [heartbeat_bodies(args.hosts, args.checks)], args.threads)
            phases = args.phases.split(",")
            if "quiet" in phases:
                phase("unchanged (quiet path)", pid, port,
                      (heartbeat_bodies(args.hosts, args.checks) for _ in range(args.rounds)),
                      args.threads)
            if "values" in phases:
                values(pid, port, args)
            if "state" in phases:
                phase("one check changes state", pid, port,
                      (changing_bodies(args.hosts, args.checks, r, flip=True)
                       for r in range(1, args.state_rounds + 1)), args.threads)
        finally:
            collector.stop()
    return 0


def values(pid: int, port: int, args: argparse.Namespace) -> None:
    """The values-change phase, after a round (not counted) that gives every host's last
    full pass these checks."""
    in_threads(port, args.threads, changing_bodies(args.hosts, args.checks, 0),
               "/api/v1/heartbeats")
    phase("values change", pid, port,
          (changing_bodies(args.hosts, args.checks, 2 * r)
           for r in range(1, args.rounds + 1)), args.threads)


def breakdown(hosts: int, checks: int, rounds: int) -> int:
    """Per stage, CPU per values-changing heartbeat, in process."""
    import json

    from patrol.collector.engine import Engine
    from patrol.collector.policy.settings import PolicyConfig
    from patrol.collector.store import open_store
    from patrol.contract.wire import Heartbeat

    with tempfile.TemporaryDirectory(prefix="patrol-hb-") as tmp:
        store = open_store(f"sqlite:///{tmp}/patrol.db")
        engine = Engine(store, PolicyConfig())
        for body in changing_bodies(hosts, checks, 0):
            engine.heartbeat(Heartbeat.model_validate(json.loads(body)))
        for r in range(1, rounds + 1):
            bodies = changing_bodies(hosts, checks, 2 * r)
            began = time.process_time()
            payloads = [json.loads(body) for body in bodies]
            parsed = time.process_time()
            beats = [Heartbeat.model_validate(payload) for payload in payloads]
            validated = time.process_time()
            kept = sum(engine.heartbeat_unchanged(beat) is not None for beat in beats)
            done = time.process_time()
            engine.flush_heartbeats()
            flushed = time.process_time()
            ms = [(b - a) / hosts * 1e3 for a, b in ((began, parsed), (parsed, validated),
                                                     (validated, done), (done, flushed))]
            print(f"values path, ms/heartbeat: parse {ms[0]:.3f}  validate {ms[1]:.3f}  "
                  f"keep {ms[2]:.3f}  group write {ms[3]:.3f}  total {sum(ms):.3f}  "
                  f"({kept}/{hosts} kept)  [{load()}]", flush=True)
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
