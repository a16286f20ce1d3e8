#!/usr/bin/env python3
"""Collector replicas on one PostgreSQL database delivering to a slow helpdesk: how many
helpdesk tickets for how many incidents, how long, and how fast a killed replica's work
is taken over.

One command, from the repository root (PostgreSQL on 127.0.0.1:5432, user postgres)::

    .venv/bin/python bench/dispatch_replicas.py [--replicas 3] [--incidents 300]
        [--delay 5] [--helpdesk webhook|zendesk] [--kill-after SECONDS]

``--replicas`` ``patrol collector`` processes share a database made for the run (and
dropped after it); each delivers to the loopback helpdesk of tests/slow_helpdesk.py,
which takes ``--delay`` seconds per create. ``--incidents`` events (one incident each)
are posted round-robin to the replicas, as a load balancer would. With
``--kill-after``, the first replica gets SIGKILL that many seconds after the first post.
Printed: opens at the helpdesk (and incidents opened twice), the time from the first
post to the last delivery, and for a kill, how long after it the survivors first sent
something the dead replica had in flight. Every process is stopped by PID.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.procs import event_payload
from tests.slow_helpdesk import serving
from tests.test_dispatch_replicas import Replica, helpdesk_yaml, outbox

ADMIN = os.environ.get("PATROL_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--incidents", type=int, default=300)
    parser.add_argument("--delay", type=float, default=5.0)
    parser.add_argument("--helpdesk", choices=("webhook", "zendesk"), default="webhook")
    parser.add_argument("--kill-after", type=float, default=None)
    args = parser.parse_args()
    name = f"patrol_bench_{os.getpid()}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    store = ADMIN.rsplit("/", 1)[0] + f"/{name}"
    replicas: list[Replica] = []
    try:
        with TemporaryDirectory() as tmp, serving(args.delay) as desk:
            for i in range(args.replicas):
                label = chr(ord("a") + i)
                replicas.append(Replica(Path(tmp) / label, label, store,
                                        helpdesk_yaml(args.helpdesk, desk, label)).start())
            started = time.monotonic()
            for i in range(args.incidents):
                replicas[i % len(replicas)].post_events(
                    [event_payload(f"web-{i:04d}", "orders-port", 1)]).raise_for_status()
            posted = time.monotonic() - started
            killed_at, in_flight = None, set()
            while outbox(store) != {"done": args.incidents}:
                now = time.monotonic()
                if args.kill_after is not None and killed_at is None \
                        and now - started >= args.kill_after:
                    in_flight = {r.fingerprint for r in desk.in_flight("a")}
                    replicas[0].kill()
                    killed_at = now
                time.sleep(0.2)
            elapsed = time.monotonic() - started
            opens = desk.opens_per_fingerprint()
            print(f"{args.replicas} replicas, {args.incidents} incidents, helpdesk "
                  f"{args.helpdesk} at {args.delay:g} s per create")
            print(f"  posted in {posted:.1f} s; all delivered {elapsed:.1f} s after the first "
                  f"post ({args.incidents / elapsed:.2f} incidents/s)")
            print(f"  helpdesk opens: {sum(opens.values())} for {len(opens)} incidents; "
                  f"opened twice: {sum(1 for c in opens.values() if c > 1)}")
            if killed_at is not None:
                taken = [r.started - killed_at for r in desk.requests
                         if r.replica != "a" and r.fingerprint in in_flight
                         and r.started > killed_at]
                first = f"{min(taken):.1f} s" if taken else "n/a"
                print(f"  killed replica a at {killed_at - started:.1f} s with "
                      f"{len(in_flight)} requests in flight; first taken over after {first}")
            print(f"  load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
                  f"{os.getloadavg()[2]:.2f}")
    finally:
        for replica in replicas:
            replica.stop()
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
