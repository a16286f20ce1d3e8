#!/usr/bin/env python3
"""Scale of state (issue 10 item 4): the collector's memory and ticket list latency
with 100,000 open incidents, measured after the watchdog has run over them.

One command, from the repository root: ``python bench/state_scale.py`` (``--stores
sqlite,postgres``, ``--incidents 100000``). For each store in turn: a fresh SQLite
file or PostgreSQL database on ``--pg`` (dropped afterwards); one ``patrol
collector`` (tests/procs.py) with ``watchdog_interval: 5s``; ``--incidents`` new
incidents (distinct dedup keys) in batches of 100; then it waits until the watchdog
has completed ``--passes`` full passes that started after the last incident was in
(``patrol_collector_watchdog_last_success_timestamp_seconds{duty="timers"}`` in
/metrics), sampling the collector's RSS every 0.2 s all along. Printed: RSS after the
passes and the peak during them (target <= 300 MiB), then the p50/p99 of
``GET /api/v1/tickets`` (the default first page of 100, and ``status=new`` at
offset 5,000, and one host's) over ``--requests`` requests from one keep-alive
connection (target p99 <= 50 ms), with the max and how many missed the target; each
with the load average. It asserts nothing; it prints.
"""

from __future__ import annotations

import argparse
import http.client
import re
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.alertmanager_side_by_side import events, loadavg  # noqa: E402
from bench.collector_bench import encode, healthz, in_threads, memory  # noqa: E402
from bench.pg_ingest import DEFAULT_PG, PgDatabase  # noqa: E402
from tests.procs import CollectorProcess, operator_headers  # noqa: E402

RSS_TARGET_MIB = 300.0
LIST_P99_TARGET_MS = 50.0
_TIMERS = re.compile(r'^patrol_collector_watchdog_last_success_timestamp_seconds\{duty="timers"\}'
                     r" (\S+)$", re.M)


def get(port: int, path: str, conn: http.client.HTTPConnection | None = None
        ) -> tuple[int, bytes]:
    own = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        own.request("GET", path, headers=operator_headers())
        response = own.getresponse()
        return response.status, response.read()
    finally:
        if conn is None:
            own.close()


def timers_done_at(port: int) -> float:
    """When the watchdog last completed its ``timers`` duty (0 before the first)."""
    found = _TIMERS.search(get(port, "/metrics")[1].decode())
    return float(found.group(1)) if found else 0.0


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            try:
                self.peak = max(self.peak, memory(self.pid)["rss"])
            except OSError:
                return


def list_latency(port: int, path: str, requests: int) -> tuple[float, float, float, int, int]:
    """p50, p99 and max in ms, errors, and how many requests missed the target: a
    plan that goes wrong for the first requests only (custom plans, before psycopg
    prepares the statement) shows in the max and the count, not in the p50."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    samples, errors = [], 0
    for _ in range(requests):
        t0 = time.perf_counter()
        status, _ = get(port, path, conn)
        samples.append((time.perf_counter() - t0) * 1e3)
        errors += status != 200
    conn.close()
    slow = sum(ms > LIST_P99_TARGET_MS for ms in samples)
    return (statistics.median(samples), statistics.quantiles(samples, n=100)[98],
            max(samples), errors, slow)


def one_store(store: str, incidents: int, passes: int, requests: int, pg: str) -> None:
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="patrol-scale-")))
        url = None
        if store == "postgres":
            database = PgDatabase(pg)
            stack.callback(database.drop)
            url = database.url
        collector = CollectorProcess(tmp, store=url, settings=("watchdog_interval: 5s",))
        stack.callback(collector.stop)
        collector.start()
        pid, port = collector.pid, collector.port
        sampler = RssSampler(pid)
        sampler.start()
        stack.callback(sampler.stop.set)
        evs = events("scale", incidents)
        bodies = [encode({"events": evs[i:i + 100]}) for i in range(0, incidents, 100)]
        began = time.time()
        wall, results = in_threads(port, 2, bodies, "/api/v1/events")
        failed = sum(status != 202 for status, _ in results)
        in_at = time.time()
        print(f"[{store}] {incidents} incidents in {wall:.0f}s ({incidents / wall:,.0f}/s, "
              f"{failed} failed requests); open now {healthz(port)['open_tickets']}; RSS "
              f"{memory(pid)['rss']:.1f} MiB (peak while ingesting {sampler.peak:.1f})  "
              f"[{loadavg()}]", flush=True)
        sampler.peak = 0.0
        done, seen = 0, timers_done_at(port)
        while done < passes:  # a pass that started after the ingest ended
            time.sleep(0.5)
            at = timers_done_at(port)
            if at != seen and at > in_at:
                done += 1
            seen = at
            if time.time() - began > 3600:
                raise SystemExit("no watchdog pass completed within the hour")
        after = memory(pid)
        print(f"[{store}] after {passes} watchdog passes: RSS {after['rss']:.1f} MiB, PSS "
              f"{after['pss']:.1f} (peak during the passes {sampler.peak:.1f}; target "
              f"<= {RSS_TARGET_MIB:g})  [{loadavg()}]", flush=True)
        for label, path in (("first page (default)", "/api/v1/tickets"),
                            ("status=new, offset 5000", "/api/v1/tickets?status=new&offset=5000"),
                            ("host= (one host's)", "/api/v1/tickets?host=scale-004242")):
            p50, p99, most, errors, slow = list_latency(port, path, requests)
            print(f"[{store}] GET {label:<26} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms "
                  f"max {most:7.2f} ms (target <= {LIST_P99_TARGET_MS:g}; {slow} of "
                  f"{requests} over) {errors} errors  [{loadavg()}]", flush=True)
        final = memory(pid)
        print(f"[{store}] RSS at the end {final['rss']:.1f} MiB (peak overall "
              f"{max(sampler.peak, final['rss']):.1f})", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL admin URL")
    args = parser.parse_args(argv)
    for store in args.stores.split(","):
        one_store(store, args.incidents, args.passes, args.requests, args.pg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
