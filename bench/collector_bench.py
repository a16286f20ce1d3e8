#!/usr/bin/env python3
"""Benchmark the Patrol collector as agents use it: a real process, real HTTP, SQLite.

One command, from the repository root: ``python bench/collector_bench.py``
(``--quick`` for smaller loads; ``--profile DIR`` records each phase with py-spy).
bench/COLLECTOR.md explains every figure and lists the latest results.

Phases, in order, against ONE ``patrol collector`` process (SQLite store in a
temporary directory, a free loopback port):

1. **new events/s**: ``--incidents`` trigger events with distinct dedup_keys (so
   every one opens a ticket), in batches of 100 (``POST /api/v1/events``) from
   ``--threads`` keep-alive client threads. Only events in 202 responses count;
   afterwards ``/healthz`` must show that many open tickets, or the figure is void.
2. **heartbeats/s**: ``--hosts`` simulated hosts x 10 checks each (all OK), one
   ``POST /api/v1/heartbeats`` per host per round. Round 1 registers the hosts and
   is reported apart; the figure is rounds 2.. (the steady state of a fleet).
3. **latency**: single new-incident events, paced at 50/s from one keep-alive
   connection, for ``--latency-seconds``; p50/p99/max of the round trip.
4. **memory**: RSS and PSS of the collector from /proc/PID/smaps_rollup, with the
   open incidents of phase 1 (10,000 by default) still open.

Request bodies are encoded before each timed window and the client uses
http.client, so the client's own CPU (it shares the machine) is as small as it
can be. The collector is stopped by PID (SIGTERM, then SIGKILL) also on Ctrl-C.
The exit code is 0 whatever the figures are; 1 only when nothing could be measured.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.procs import AGENT_TOKEN, CollectorProcess, event_payload  # noqa: E402

TARGETS = {  # name -> (target, higher is better)
    "new events/s": (2000.0, True),
    "heartbeats/s": (5000.0, True),
    "p99 latency at 50 events/s (ms)": (5.0, False),
    "collector RSS with open incidents (MiB)": (150.0, False),
}
HEADERS = {"Authorization": f"Bearer {AGENT_TOKEN}", "Content-Type": "application/json"}
CHECKS_PER_HOST = 10


class Client:
    """One keep-alive connection; reconnects after an error (the error is counted)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        try:
            self.conn.request("POST", path, body, HEADERS)
            response = self.conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            return 0, repr(exc).encode()

    def close(self) -> None:
        self.conn.close()


def in_threads(port: int | list[int], threads: int, bodies: list[bytes], path: str
               ) -> tuple[float, list[tuple[int, bytes]]]:
    """POST every body (thread i sends bodies i, i+threads, ...; to port[i % len]
    when given several replicas' ports); wall seconds and (status, response) per
    body, in body order."""
    results: list[tuple[int, bytes]] = [(0, b"")] * len(bodies)
    start = threading.Barrier(threads + 1)
    ports = port if isinstance(port, list) else [port]

    def work(first: int) -> None:
        client = Client(ports[first % len(ports)])
        start.wait()
        for i in range(first, len(bodies), threads):
            results[i] = client.post(path, bodies[i])
        client.close()

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    return time.perf_counter() - began, results


def healthz(port: int) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", "/healthz")
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def encode(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


# -- phases ---------------------------------------------------------------------------


def new_events(port: int, incidents: int, batch: int, threads: int) -> dict[str, Any]:
    events = [event_payload(f"bench-{i // 10:05d}", f"check-{i % 10}", i + 1,
                            agent_id="bench-agent", check_type="disk",
                            labels={"tier": "standard", "team": "ops"})
              for i in range(incidents)]
    bodies = [encode({"events": events[i:i + batch]}) for i in range(0, incidents, batch)]
    before = healthz(port)["open_tickets"]
    wall, results = in_threads(port, threads, bodies, "/api/v1/events")
    accepted = sum(len(json.loads(body)["results"]) for status, body in results
                   if status == 202)
    errors = [status for status, _ in results if status != 202]
    opened = healthz(port)["open_tickets"] - before
    return {"rate": accepted / wall, "accepted": accepted, "seconds": wall,
            "errors": len(errors), "opened": opened, "verified": opened == accepted}


SINCE = datetime.now(UTC).isoformat()  # when the checks became OK: fixed, as on an agent


def heartbeat_bodies(hosts: int, checks: int = CHECKS_PER_HOST) -> list[bytes]:
    """One heartbeat per host as an agent sends it: ``sent_at`` and each check's
    ``last_run`` are now; ``since`` (when the check entered its status) stays put."""
    now = datetime.now(UTC).isoformat()
    return [encode({
        "schema_version": 1, "source": f"fleet-{h:05d}",
        "agent": {"id": f"agent-{h:05d}", "version": "1.0"}, "sequence": 0, "sent_at": now,
        "interval_seconds": 30, "labels": {"tier": "standard", "team": "ops"},
        "checks": [{"check": f"check-{c}", "type": "disk", "status": "OK",
                    "summary": f"check-{c} is OK on fleet-{h:05d}", "since": SINCE,
                    "last_run": now, "labels": {}, "interval_seconds": 30}
                   for c in range(checks)]})
        for h in range(hosts)]


def heartbeats(port: int, hosts: int, rounds: int, threads: int) -> dict[str, Any]:
    """Each round is encoded afresh (outside the timed window) with the current time
    in ``sent_at``/``last_run``: a heartbeat replaying old times would make the
    collector's watchdog open "stopped reporting" tickets for every check."""
    first_wall, first = in_threads(port, threads, heartbeat_bodies(hosts),
                                   "/api/v1/heartbeats")
    wall, ok, errors = 0.0, 0, sum(1 for status, _ in first if status != 202)
    for _ in range(rounds):
        bodies = heartbeat_bodies(hosts)
        seconds, results = in_threads(port, threads, bodies, "/api/v1/heartbeats")
        wall += seconds
        ok += sum(1 for status, _ in results if status == 202)
        errors += sum(1 for status, _ in results if status != 202)
    return {"rate": ok / wall if wall else 0.0, "first_round_rate": hosts / first_wall,
            "accepted": ok, "seconds": wall, "errors": errors}


def paced_latency(port: int, rate: float, seconds: float) -> dict[str, Any]:
    count = int(rate * seconds)
    bodies = [encode(event_payload(f"paced-{i:05d}", "latency", i + 1, agent_id="paced",
                                   check_type="disk")) for i in range(count)]
    client = Client(port)
    client.post("/api/v1/events", encode(event_payload("paced-warmup", "latency", 0,
                                                       agent_id="paced-warmup")))
    samples, errors = [], 0
    began = time.perf_counter()
    for i, body in enumerate(bodies):
        delay = began + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        t0 = time.perf_counter()
        status, _ = client.post("/api/v1/events", body)
        samples.append((time.perf_counter() - t0) * 1000)
        errors += status != 202
    client.close()
    cuts = statistics.quantiles(samples, n=100)
    return {"p50": statistics.median(samples), "p99": cuts[98], "max": max(samples),
            "count": len(samples), "errors": errors}


def memory(pid: int) -> dict[str, float]:
    """RSS and PSS in MiB from /proc/PID/smaps_rollup."""
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("Rss", "Pss"):
            out[name.lower()] = int(rest.split()[0]) / 1024
    return out


# -- reporting and profiling ----------------------------------------------------------


def verdict(name: str, value: float) -> str:
    target, higher = TARGETS[name]
    good = value >= target if higher else value <= target
    return f"{'PASS' if good else 'MISS'} (target {'>=' if higher else '<='} {target:g})"


class Profiler:
    """``py-spy record --format raw`` around a phase, when ``--profile DIR`` is given."""

    def __init__(self, directory: Path | None, pid: int) -> None:
        self.directory, self.pid = directory, pid

    def phase(self, name: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        if self.directory is None:
            return work()
        self.directory.mkdir(parents=True, exist_ok=True)
        out = self.directory / f"{name}.txt"
        spy = subprocess.Popen(["py-spy", "record", "--pid", str(self.pid), "--rate", "250",
                                "--format", "raw", "--threads", "-o", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # py-spy attaches
        try:
            return work()
        finally:
            spy.send_signal(2)  # SIGINT: py-spy writes its file and exits
            spy.wait(30)
            print(f"  profile: {out}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller loads (~1 minute)")
    parser.add_argument("--incidents", type=int, help="new incidents in phase 1 (10000)")
    parser.add_argument("--hosts", type=int, default=1000, help="simulated hosts (1000)")
    parser.add_argument("--rounds", type=int, help="steady-state heartbeat rounds (5)")
    parser.add_argument("--threads", type=int, default=4, help="client threads (4)")
    parser.add_argument("--latency-seconds", type=float, help="paced window (20 s)")
    parser.add_argument("--profile", type=Path, help="record each phase with py-spy here")
    args = parser.parse_args(argv)
    incidents = args.incidents or (10_000 if not args.quick else 3_000)
    rounds = args.rounds or (5 if not args.quick else 2)
    latency_seconds = args.latency_seconds or (20.0 if not args.quick else 6.0)

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="patrol-bench-")))
        collector = CollectorProcess(tmp)
        stack.callback(collector.stop)
        collector.start()
        pid, port = collector.pid, collector.port
        spy = Profiler(args.profile, pid)
        print(f"collector pid {pid} on {collector.url}, store {collector.db}", flush=True)
        base = memory(pid)

        print(f"1. {incidents} new incidents, batches of 100, {args.threads} threads",
              flush=True)
        events = spy.phase("new_events", lambda: new_events(port, incidents, 100,
                                                            args.threads))
        print(f"2. heartbeats: {args.hosts} hosts x {CHECKS_PER_HOST} checks, 1 + {rounds} "
              "rounds", flush=True)
        beats = spy.phase("heartbeats", lambda: heartbeats(port, args.hosts, rounds,
                                                           args.threads))
        mem = memory(pid)
        open_now = healthz(port)["open_tickets"]
        print(f"3. latency: new incidents paced at 50/s for {latency_seconds:g}s", flush=True)
        latency = spy.phase("latency", lambda: paced_latency(port, 50.0, latency_seconds))
        mem_after = memory(pid)
        if not collector.alive():
            print(collector.output()[-3000:], file=sys.stderr)
            return 1

    rows = [
        ("new events/s", events["rate"],
         f"{events['accepted']} in {events['seconds']:.1f}s, {events['errors']} non-202, "
         f"tickets opened {events['opened']} ({'verified' if events['verified'] else 'MISMATCH'})"),
        ("heartbeats/s", beats["rate"],
         f"{beats['accepted']} in {beats['seconds']:.1f}s, {beats['errors']} non-202; "
         f"first round (new hosts) {beats['first_round_rate']:.0f}/s"),
        ("p99 latency at 50 events/s (ms)", latency["p99"],
         f"p50 {latency['p50']:.2f} ms, max {latency['max']:.1f} ms, "
         f"{latency['count']} events, {latency['errors']} non-202"),
        ("collector RSS with open incidents (MiB)", mem["rss"],
         f"PSS {mem['pss']:.1f} MiB with {open_now} open incidents (idle at start: RSS "
         f"{base['rss']:.1f}, PSS {base['pss']:.1f}); after phase 3 RSS {mem_after['rss']:.1f}"),
    ]
    print()
    for name, value, detail in rows:
        print(f"{name:42} {value:10.2f}  {verdict(name, value)}")
        print(f"{'':42} {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
