#!/usr/bin/env python3
"""What measurement history costs: bytes per host per day, and 10,000 hosts x 25 checks
on PostgreSQL, measured rather than guessed.

One command, from the repository root: ``python bench/history_bench.py`` (``--hosts``,
``--pg``). It prints; it asserts nothing. bench/HISTORY.md explains and lists results.

Measured, in one run on a fresh PostgreSQL database (dropped afterwards):

1. Storage. ``--hosts`` hosts x 25 checks x ``--measurements`` measurements get a full
   day of rollups (24 hourly rows and 1 daily row each) through the store's own
   ``record_samples``; then ``pg_total_relation_size`` of both rollup tables (heap,
   primary key and bucket index) divided by hosts: bytes per host per day. A rollup
   row's size does not depend on how many samples were folded into it, so two samples
   an hour fill the day as well as sixty.
2. Write rate. ``--beats`` heartbeats' worth of samples (one transaction each, as the
   engine does: 25 checks x measurements) from ``--threads`` threads, half of them
   repeats of a run already counted (the next heartbeat before the check ran again):
   samples/s, and the PostgreSQL backend's CPU per sample from /proc.
3. The agent side: the ring buffer's memory per measurement (tracemalloc) and the wire
   bytes a heartbeat's measurements and a breach event's series add.

Then the projection to 10,000 hosts: steady-state disk (hourly rows kept 14 days, daily
rows 400 days) and the sample rate with checks every minute against the rate measured.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pg_ingest import cpu_seconds, load  # noqa: E402
from patrol.agent.history import MeasurementHistory  # noqa: E402
from patrol.collector.store import open_store  # noqa: E402
from patrol.collector.store.history import (  # noqa: E402
    DAILY_RETENTION,
    DAY,
    HOUR,
    HOURLY_RETENTION,
    Sample,
)
from patrol.contract.wire import MeasurementSeries, MeasurementValue  # noqa: E402

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
CHECKS = 25
FLEET = 10_000
DAY0 = 1_700_006_400.0  # a UTC midnight


def _database(base: str, name: str) -> str:
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _samples(host: int, measurements: int, at: float) -> list[Sample]:
    return [Sample(f"check-{c}", f"m{m}", "", at, (host + c + m + at / 3600) % 100)
            for c in range(CHECKS) for m in range(measurements)]


def fill_day(store: object, hosts: int, measurements: int) -> None:
    for host in range(hosts):
        with store.transaction() as tx:  # type: ignore[attr-defined]
            for hour in range(24):
                for minute in (5, 35):
                    tx.record_samples(f"host-{host}",
                                      _samples(host, measurements, DAY0 + hour * HOUR
                                               + minute * 60))


def rollup_bytes(conninfo: str) -> int:
    import psycopg

    with psycopg.connect(conninfo) as conn:
        row = conn.execute("SELECT pg_total_relation_size('measurement_hourly')"
                           " + pg_total_relation_size('measurement_daily')").fetchone()
        return int(row[0])


def backend_pids(conninfo: str, database: str) -> list[int]:
    import psycopg

    with psycopg.connect(conninfo) as conn:
        return [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,)).fetchall()]


def write_rate(store: object, conninfo: str, database: str, beats: int, threads: int,
               measurements: int) -> tuple[float, float, int]:
    """Samples/s and PostgreSQL CPU seconds per 1,000 samples, over ``beats`` heartbeats."""
    per_thread = beats // threads
    start_at = DAY0 + DAY  # the next day: fresh hourly rows

    def work(t: int) -> None:
        for i in range(per_thread):
            run = start_at + (i // 2) * 60  # every run heard twice (30 s beats, 60 s checks)
            with store.transaction() as tx:  # type: ignore[attr-defined]
                tx.record_samples(f"rate-{t}", _samples(t, measurements, run))

    with store.transaction() as tx:  # type: ignore[attr-defined]
        tx.record_samples("warm", _samples(0, measurements, start_at))
    pids = backend_pids(conninfo, database)
    cpu_before = sum(cpu_seconds(p) for p in pids)
    began = time.perf_counter()
    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - began
    cpu = sum(cpu_seconds(p) for p in pids) - cpu_before
    samples = per_thread * threads * CHECKS * measurements
    return samples / elapsed, cpu / samples * 1000, samples


def agent_side(measurements: int) -> dict[str, float]:
    tracemalloc.start()
    history = MeasurementHistory()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(8640):  # a day of 10-second runs
        history.record("disk", 10.0 * i, [(f"m{m}", "", float(i)) for m in range(10)])
    ring = (tracemalloc.get_traced_memory()[0] - before) / 10
    tracemalloc.stop()
    (series,) = history.series("disk", 86390.0, [("m0", "")])
    breach = len(MeasurementSeries(name="used_ratio", item="/var",
                                   points=series.points).model_dump_json())
    values = [MeasurementValue(name="used_ratio", value=0.8312, item="/var")
              for _ in range(CHECKS * measurements)]
    beat = len(json.dumps([v.model_dump(mode="json") for v in values]))
    return {"ring_bytes_per_measurement": ring, "breach_series_bytes": breach,
            "heartbeat_extra_bytes": beat}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg", default=DEFAULT_PG)
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--measurements", type=int, default=2,
                        help="measurements per check (disk: used_ratio + inodes)")
    parser.add_argument("--beats", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()

    import psycopg

    name = f"patrol_history_{secrets.token_hex(4)}"
    with psycopg.connect(args.pg, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    conninfo = _database(args.pg, name)
    print(f"load average before: {load()}")
    try:
        store = open_store(conninfo, pool_size=args.threads + 2)
        try:
            began = time.perf_counter()
            fill_day(store, args.hosts, args.measurements)
            filled = time.perf_counter() - began
            written = rollup_bytes(conninfo) / args.hosts
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute("VACUUM FULL ANALYZE measurement_hourly")
                conn.execute("VACUUM FULL ANALYZE measurement_daily")
                rows = conn.execute("SELECT (SELECT count(*) FROM measurement_hourly)"
                                    " + (SELECT count(*) FROM measurement_daily)").fetchone()[0]
            per_host_day = rollup_bytes(conninfo) / args.hosts
            rate, cpu_per_k, samples = write_rate(store, conninfo, name, args.beats,
                                                  args.threads, args.measurements)
        finally:
            store.close()
    finally:
        with psycopg.connect(args.pg, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    agent = agent_side(args.measurements)
    per_host_measurements = CHECKS * args.measurements
    hourly_share = 24 / 25  # of a day's rows, hourly ones (24 of 25)
    steady = per_host_day * FLEET * (hourly_share * HOURLY_RETENTION / DAY
                                     + (1 - hourly_share) * DAILY_RETENTION / DAY)
    needed = FLEET * per_host_measurements / 60.0  # checks every minute
    print(f"load average after:  {load()}")
    print(f"fleet shape: {CHECKS} checks x {args.measurements} measurements per host,"
          f" {args.hosts} hosts filled for one day in {filled:.1f} s")
    print(f"rollup storage: {per_host_day:,.0f} bytes per host per day"
          f" ({per_host_day * args.hosts / rows:,.0f} per row, {rows:,} rows; heap + primary"
          f" key + bucket index, compacted; {written:,.0f} as written, before VACUUM FULL:"
          " the dead versions of rows updated all hour, which autovacuum reuses)")
    print(f"write rate: {rate:,.0f} samples/s from {args.threads} threads"
          f" ({samples:,} samples, half of them repeats); PostgreSQL CPU"
          f" {cpu_per_k:.3f} s per 1,000 samples")
    print(f"agent: ring {agent['ring_bytes_per_measurement']:,.0f} bytes per measurement;"
          f" a breach series {agent['breach_series_bytes']:,} bytes of JSON; a heartbeat"
          f" grows by {agent['heartbeat_extra_bytes']:,} bytes")
    print(f"10,000 hosts x {CHECKS} checks: {per_host_day * FLEET / 1e9:.2f} GB of rollups"
          f" per day written; steady state {steady / 1e9:,.1f} GB (hourly 14 d, daily 400 d)")
    print(f"10,000 hosts x {CHECKS} checks every minute: {needed:,.0f} new samples/s"
          f" (x2 with 30 s heartbeats repeating them) against {rate:,.0f}/s measured here:"
          f" {needed * 2 / rate:.1f}x this machine's measured rate;"
          f" PostgreSQL CPU {needed * 2 * cpu_per_k / 1000:.1f} cores")
    print(f"wire: {agent['heartbeat_extra_bytes'] * 2880 / 1e6:.1f} MB per host per day of"
          " heartbeat measurements (30 s heartbeats), before HTTP compression")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
