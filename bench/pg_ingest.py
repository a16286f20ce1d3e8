#!/usr/bin/env python3
"""New events/s on SQLite and PostgreSQL side by side, in one run, with CPU per event.

One command, from the repository root: ``python bench/pg_ingest.py`` (``--quick`` for
a smaller load). bench/PG_INGEST.md explains the figures and lists results.

For each replica count (``--replicas 1,3``) and each store, in that order (so the
two stores of one row share the machine's state as closely as a shared VM allows):

- a fresh store: a SQLite file in a temporary directory, or a new PostgreSQL
  database on ``--pg`` (dropped afterwards);
- that many ``patrol collector`` processes on it (tests/procs.py), each on its own
  loopback port: several stateless replicas as behind a load balancer;
- ``--incidents`` trigger events with distinct dedup keys (each opens a ticket), in
  batches of 100 from ``--threads`` keep-alive client threads, thread i posting to
  replica i mod N. Only events in 202 answers count, and ``/healthz`` must then show
  that many open tickets or the figure is marked MISMATCH.

Printed per run: new events/s; collector CPU per event (user+system of every
replica, from /proc/PID/stat); PostgreSQL server CPU per event (the backends serving
this database, found in ``pg_stat_activity`` and read from /proc; background writers
shared with other databases are not counted); the load average before and after.
Then the PostgreSQL/SQLite ratio per replica count, and what 4 and 16 cores would
sustain, reasoned from the CPU per event. It asserts nothing; it prints.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.collector_bench import Client, encode, healthz, in_threads  # noqa: E402
from tests.procs import CollectorProcess, event_payload  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` so far (0 for a process that is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


class PgDatabase:
    """A database made for one run and dropped after it."""

    def __init__(self, admin: str) -> None:
        import psycopg

        self.admin = admin
        self.name = f"patrol_bench_{secrets.token_hex(4)}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        self.url = urlunsplit(urlsplit(admin)._replace(path=f"/{self.name}"))

    def backends(self) -> set[int]:
        """PIDs of the server processes now connected to this database."""
        import psycopg

        with psycopg.connect(self.admin, autocommit=True) as conn:
            rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s",
                                (self.name,)).fetchall()
        return {row[0] for row in rows}

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def one_run(store: str, replicas: int, incidents: int, threads: int, pg: str,
            durable: bool = False) -> dict[str, Any]:
    """Start ``replicas`` collectors on a fresh ``store`` ("sqlite" or "postgresql"),
    post the new incidents, and measure."""
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="patrol-pg-bench-")))
        database = None
        url = None
        if store == "postgresql":
            database = PgDatabase(pg)
            stack.callback(database.drop)
            url = database.url + ("?options=-csynchronous_commit%3Don" if durable else "")
        collectors = []
        for n in range(replicas):
            collector = CollectorProcess(tmp / f"c{n}", db=tmp / "collector.db",
                                         name=f"collector-{n}", store=url)
            stack.callback(collector.stop)
            collectors.append(collector.start())
        events = [event_payload(f"bench-{i // 10:05d}", f"check-{i % 10}", i + 1,
                                agent_id="bench-agent", check_type="disk",
                                labels={"tier": "standard", "team": "ops"})
                  for i in range(incidents)]
        bodies = [encode({"events": events[i:i + 100]}) for i in range(0, incidents, 100)]
        warm = encode({"events": [event_payload("warm-up", "check", 0, agent_id="warm")]})
        for collector in collectors:  # imports, first connections (one ticket in all)
            Client(collector.port).post("/api/v1/events", warm)
        before_load = load()
        backends = database.backends() if database else set()
        cpu0 = {c.pid: cpu_seconds(c.pid) for c in collectors}
        pg0 = {pid: cpu_seconds(pid) for pid in backends}
        wall, results = in_threads([c.port for c in collectors], threads, bodies,
                                   "/api/v1/events")
        collector_cpu = sum(cpu_seconds(c.pid) - cpu0[c.pid] for c in collectors)
        backends = (database.backends() if database else set()) | backends
        pg_cpu = sum(cpu_seconds(pid) - pg0.get(pid, 0.0) for pid in backends)
        accepted = sum(len(json.loads(body)["results"]) for status, body in results
                       if status == 202)
        opened = healthz(collectors[0].port)["open_tickets"] - 1  # minus the warm-up
        alive = all(c.alive() for c in collectors)
    return {"store": store, "replicas": replicas, "rate": accepted / wall, "wall": wall,
            "accepted": accepted, "verified": opened == accepted and alive,
            "errors": sum(1 for status, _ in results if status != 202),
            "collector_ms": collector_cpu / max(accepted, 1) * 1000,
            "pg_ms": pg_cpu / max(accepted, 1) * 1000, "backends": len(backends),
            "load_before": before_load, "load_after": load()}


def capacity(run: dict[str, Any], cores: int) -> str:
    """Events/s ``cores`` would sustain if CPU were the only limit and the client
    ran elsewhere. PostgreSQL on the same host shares the cores with the replicas
    (one Python process each, so one core each at most: the GIL). SQLite has one
    writer at a time, so one core's worth of collector CPU is its ceiling however
    many cores or replicas there are."""
    if run["store"] == "sqlite":
        return f"{1000 / run['collector_ms']:,.0f}/s (one writer)"
    per_event = (run["collector_ms"] + run["pg_ms"]) / 1000
    return f"{cores / per_event:,.0f}/s ({cores} replicas incl. PostgreSQL's share)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 incidents per run")
    parser.add_argument("--incidents", type=int, help="new incidents per run (3000)")
    parser.add_argument("--threads", type=int, default=6, help="client threads (6)")
    parser.add_argument("--replicas", default="1,3", help="replica counts (1,3)")
    parser.add_argument("--pg", default=os.environ.get("PATROL_BENCH_PG", DEFAULT_PG),
                        help="an admin libpq URL of the PostgreSQL server to use")
    parser.add_argument("--durable", action="store_true",
                        help="PostgreSQL with synchronous_commit=on (every commit flushed)")
    args = parser.parse_args(argv)
    incidents = args.incidents or (1000 if args.quick else 3000)
    runs: list[dict[str, Any]] = []
    for replicas in [int(r) for r in args.replicas.split(",")]:
        for store in ("sqlite", "postgresql"):
            print(f"{store}, {replicas} replica(s), {incidents} new incidents, "
                  f"{args.threads} client threads ...", flush=True)
            run = one_run(store, replicas, incidents, args.threads, args.pg, args.durable)
            runs.append(run)
            print(f"  {run['rate']:8.0f} new events/s  collector CPU {run['collector_ms']:.2f}"
                  f" ms/event  PostgreSQL CPU {run['pg_ms']:.2f} ms/event"
                  f" ({run['backends']} backends)  {run['errors']} non-202"
                  f"  {'verified' if run['verified'] else 'MISMATCH'}"
                  f"  [{run['load_before']} -> {run['load_after']}]", flush=True)
    print()
    print(f"{'replicas':>8} {'SQLite/s':>9} {'PG/s':>9} {'PG/SQLite':>9}   CPU per event, PG: "
          "collector + server")
    for replicas in sorted({r["replicas"] for r in runs}):
        lite = next(r for r in runs if r["replicas"] == replicas and r["store"] == "sqlite")
        pg = next(r for r in runs if r["replicas"] == replicas and r["store"] == "postgresql")
        print(f"{replicas:>8} {lite['rate']:>9.0f} {pg['rate']:>9.0f} "
              f"{pg['rate'] / lite['rate']:>9.2f}   {pg['collector_ms']:.2f} + "
              f"{pg['pg_ms']:.2f} ms (SQLite {lite['collector_ms']:.2f} ms)")
    print("\nCPU-bound capacity, client elsewhere, from the CPU per event above:")
    for run in runs:
        print(f"  {run['store']:10} {run['replicas']} replica(s): 4 cores {capacity(run, 4)};"
              f" 16 cores {capacity(run, 16)}")
    print(f"\nmachine: {os.cpu_count()} CPUs, {load()}")
    return 0 if all(r["accepted"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
