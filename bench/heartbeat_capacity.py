#!/usr/bin/env python3
"""What fleet one collector core carries: collector CPU per heartbeat, measured.

One command, from the repository root: ``python bench/heartbeat_capacity.py``
(``--checks 25 --hosts 1000 --rounds 5``). It starts one real ``patrol collector``
(SQLite in a temporary directory, tests/procs.py), registers ``--hosts`` hosts (round
0, every heartbeat new: the full path), then sends ``--rounds`` rounds in which only
``sent_at`` and ``last_run`` move, as a quiet fleet's agents send them. Printed per
phase: heartbeats/s, the collector's CPU per heartbeat (user+system from
/proc/PID/stat, the one-second group writes included), and the fleet that CPU allows
at a 30 s heartbeat on one core (30 s / CPU per heartbeat); with the load average.
The client runs on the same machine, so heartbeats/s understates a dedicated core;
the CPU per heartbeat does not depend on it. It asserts nothing; it prints.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.collector_bench import heartbeat_bodies, in_threads  # noqa: E402
from bench.pg_ingest import cpu_seconds, load  # noqa: E402
from tests.procs import CollectorProcess  # noqa: E402

INTERVAL = 30.0  # seconds between an agent's heartbeats


def phase(name: str, pid: int, port: int, rounds: list[list[bytes]], threads: int) -> None:
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
    args = parser.parse_args(argv)
    print(f"machine: {os.cpu_count()} CPUs, {load()}; {args.hosts} hosts x "
          f"{args.checks} checks", flush=True)
    with tempfile.TemporaryDirectory(prefix="patrol-hb-") as tmp:
        collector = CollectorProcess(Path(tmp))
        try:
            collector.start()
            phase("new hosts (full path)", collector.pid, collector.port,
                  [heartbeat_bodies(args.hosts, args.checks)], args.threads)
            phase("unchanged (quiet path)", collector.pid, collector.port,
                  [heartbeat_bodies(args.hosts, args.checks) for _ in range(args.rounds)],
                  args.threads)
        finally:
            collector.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
