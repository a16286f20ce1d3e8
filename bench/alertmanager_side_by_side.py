#!/usr/bin/env python3
"""Patrol's collector beside Prometheus Alertmanager, fresh in one run, one client.

One command, from the repository root: ``python bench/alertmanager_side_by_side.py``
(``--quick`` for a smaller load, ``--store postgres`` for a fresh PostgreSQL database
instead of a SQLite file, ``--burn 2`` for a latency phase with two busy-looping
processes added to the machine). bench/ALERTMANAGER.md explains the figures and
lists results.

Both servers start fresh: Debian's ``prometheus-alertmanager`` on a free loopback
port with a temporary storage path, no cluster and a null receiver; ``patrol
collector`` (tests/procs.py) with its store in a temporary directory. Each is stopped
by its PID. The same client (http.client, keep-alive, bodies encoded before each
timed window) sends each server the same events in the same phases, one server after
the other within each phase:

1. **one per request**: ``--events`` new events (distinct labels / dedup keys), one
   per request, from ``--threads`` client threads;
2. **batches of 100**: ``--events`` x 5 new events, 100 per request (Alertmanager's
   ``POST /api/v2/alerts`` takes a list, Patrol's ``POST /api/v1/events`` takes
   ``{"events": [...]}``);
3. **p99 at 50 events/s**: single new events paced at 50/s from one connection for
   ``--latency-seconds``; with ``--burn N`` repeated while N busy loops run.

Server CPU per new event is user+system from /proc/PID/stat over the phase plus one
second after it (background work caused by the phase counts), divided by the events
answered 2xx. Every figure is printed with ``os.getloadavg()`` taken right after it,
then a table with the targets of issue 10 and the ratios Patrol/Alertmanager. It
asserts nothing; it prints.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.collector_bench import HEADERS, encode, in_threads  # noqa: E402
from bench.pg_ingest import DEFAULT_PG, PgDatabase, cpu_seconds  # noqa: E402
from tests.procs import CollectorProcess, event_payload, free_port, port_open  # noqa: E402

AM_CONFIG = """\
route:
  receiver: "null"
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
receivers:
  - name: "null"
"""
SETTLE = 1.0  # seconds after a phase whose CPU still counts (background work)


def loadavg() -> str:
    return "load " + " ".join(f"{v:.2f}" for v in os.getloadavg())


# -- the two servers ----------------------------------------------------------------


class Alertmanager:
    """``prometheus-alertmanager`` on 127.0.0.1, storage in ``workdir``, stopped by PID."""

    name = "Alertmanager"
    path = "/api/v2/alerts"

    def __init__(self, workdir: Path, binary: str) -> None:
        self.port = free_port()
        config = workdir / "alertmanager.yml"
        config.write_text(AM_CONFIG)
        (workdir / "am-data").mkdir()
        self.log = (workdir / "alertmanager.log").open("wb")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.path={workdir / 'am-data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=",
             "--log.level=warn"], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"alertmanager did not start: {self.output()}")
            time.sleep(0.05)

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _ready(self) -> bool:
        if not port_open(self.port):
            return False
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", "/-/ready")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    @staticmethod
    def body(events: list[dict[str, Any]]) -> bytes:
        """The events as Alertmanager alerts: the same identity (labels) and summary."""
        return encode([{
            "labels": {"alertname": e["check"], "instance": e["source"],
                       "severity": e["severity"], "type": e["type"], **e["labels"]},
            "annotations": {"summary": e["summary"]},
            "startsAt": e["observed_at"]} for e in events])

    @staticmethod
    def accepted(status: int, _body: bytes, sent: int) -> int:
        return sent if status == 200 else 0


class Patrol:
    """``patrol collector`` (tests/procs.py) on a fresh SQLite file or PostgreSQL database."""

    name = "Patrol"
    path = "/api/v1/events"

    def __init__(self, workdir: Path, database: PgDatabase | None) -> None:
        self.database = database
        self.server = CollectorProcess(workdir, store=database and database.url)
        self.port = self.server.port

    def start(self) -> None:
        self.server.start()
        self.pid = self.server.pid

    def cpu(self) -> float:
        """The collector's CPU, plus on PostgreSQL that of the backends serving its
        database (Alertmanager's work is all in its one process; Patrol's is not)."""
        backends = self.database.backends() if self.database else set()
        return sum(cpu_seconds(pid) for pid in {self.pid, *backends})

    def alive(self) -> bool:
        return self.server.alive()

    def stop(self) -> None:
        self.server.stop()

    @staticmethod
    def body(events: list[dict[str, Any]]) -> bytes:
        return encode(events[0] if len(events) == 1 else {"events": events})

    @staticmethod
    def accepted(status: int, body: bytes, sent: int) -> int:
        return len(json.loads(body)["results"]) if status == 202 else 0


Server = Alertmanager | Patrol


# -- phases ------------------------------------------------------------------------


def events(prefix: str, count: int) -> list[dict[str, Any]]:
    """``count`` new events with distinct identities (one new ticket / alert each)."""
    return [event_payload(f"{prefix}-{i // 10:06d}", f"check-{i % 10}", i + 1,
                          agent_id="bench-agent", check_type="disk",
                          labels={"tier": "standard", "team": "ops"})
            for i in range(count)]


@dataclass
class Figure:
    value: float
    load: str
    detail: str = ""
    extra: dict[str, float] = field(default_factory=dict)


def cpu_per_event(server: Server, evs: list[dict[str, Any]], batch: int,
                  threads: int) -> Figure:
    bodies = [server.body(evs[i:i + batch]) for i in range(0, len(evs), batch)]
    before = server.cpu()
    wall, results = in_threads(server.port, threads, bodies, server.path)
    time.sleep(SETTLE)
    cpu = server.cpu() - before
    sizes = [len(evs[i:i + batch]) for i in range(0, len(evs), batch)]
    accepted = sum(server.accepted(status, body, n)
                   for (status, body), n in zip(results, sizes, strict=True))
    per = cpu / accepted * 1e3 if accepted else float("nan")
    return Figure(per, loadavg(), f"{accepted}/{len(evs)} accepted in {wall:.2f}s "
                  f"({accepted / wall:,.0f}/s), server CPU {cpu:.2f}s")


def paced(server: Server, evs: list[dict[str, Any]], rate: float) -> Figure:
    bodies = [server.body([e]) for e in evs]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    samples, errors = [], 0
    began = time.perf_counter()
    for i, body in enumerate(bodies):
        delay = began + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        t0 = time.perf_counter()
        conn.request("POST", server.path, body, HEADERS)
        response = conn.getresponse()
        response.read()
        samples.append((time.perf_counter() - t0) * 1e3)
        errors += response.status not in (200, 202)
    conn.close()
    p99 = statistics.quantiles(samples, n=100)[98]
    return Figure(p99, loadavg(), f"p50 {statistics.median(samples):.2f} ms, max "
                  f"{max(samples):.1f} ms, {len(samples)} events, {errors} errors",
                  {"p50": statistics.median(samples)})


def _spin(stop: Any) -> None:
    while not stop.is_set():
        sum(range(10_000))


class Burn:
    """``n`` busy-looping processes for a loaded phase (stopped by their own handles)."""

    def __init__(self, n: int) -> None:
        self.stop = multiprocessing.Event()
        self.procs = [multiprocessing.Process(target=_spin, args=(self.stop,), daemon=True)
                      for _ in range(n)]

    def __enter__(self) -> Burn:
        for proc in self.procs:
            proc.start()
        time.sleep(1.0)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for proc in self.procs:
            proc.join(5)


# -- report ------------------------------------------------------------------------


@dataclass
class Row:
    figure: str
    target: str
    patrol: Figure
    am: Figure
    unit: str
    meets: Callable[[float, float], bool]


def report(rows: list[Row]) -> None:
    head = ("figure", "target", "Patrol", "Alertmanager", "ratio", "verdict",
            "load (Patrol | AM)")
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for row in rows:
        ratio = row.patrol.value / row.am.value if row.am.value else float("inf")
        verdict = "PASS" if row.meets(row.patrol.value, ratio) else "MISS"
        print(f"| {row.figure} | {row.target} | {row.patrol.value:.3f} {row.unit} | "
              f"{row.am.value:.3f} {row.unit} | {ratio:.2f}x | {verdict} | "
              f"{row.patrol.load} \\| {row.am.load} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller loads (~1 minute)")
    parser.add_argument("--events", type=int, help="events one per request (3000); "
                        "the batch phase sends 5x as many")
    parser.add_argument("--threads", type=int, default=4, help="client threads (4)")
    parser.add_argument("--latency-seconds", type=float, help="paced window (20 s)")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL admin URL")
    parser.add_argument("--burn", type=int, default=0,
                        help="also measure p99 with this many busy loops running (0)")
    parser.add_argument("--alertmanager", default=shutil.which("prometheus-alertmanager"))
    args = parser.parse_args(argv)
    if not args.alertmanager:
        print("prometheus-alertmanager is not installed (apt-get install "
              "prometheus-alertmanager)", file=sys.stderr)
        return 1
    single = args.events or (3000 if not args.quick else 1000)
    latency_seconds = args.latency_seconds or (20.0 if not args.quick else 8.0)
    paced_count = int(50 * latency_seconds)

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="patrol-am-")))
        (tmp / "am").mkdir()
        am = Alertmanager(tmp / "am", args.alertmanager)
        stack.callback(am.stop)
        database = None
        if args.store == "postgres":
            database = PgDatabase(args.pg)
            stack.callback(database.drop)
        patrol = Patrol(tmp / "patrol", database)
        stack.callback(patrol.stop)
        patrol.start()
        servers: list[Server] = [patrol, am]
        print(f"{os.cpu_count()} CPUs, {loadavg()}; Alertmanager pid {am.proc.pid} "
              f"port {am.port}; Patrol pid {patrol.pid} port {patrol.port} "
              f"({args.store}); {args.threads} client threads", flush=True)

        results: dict[str, dict[str, Figure]] = {s.name: {} for s in servers}

        def measure(key: str, label: str, work: Callable[[Server], Figure]) -> None:
            for server in servers:
                figure = work(server)
                results[server.name][key] = figure
                print(f"{label:<34} {server.name:<13} {figure.value:9.3f}  "
                      f"{figure.detail}  [{figure.load}]", flush=True)

        measure("single", "CPU ms/event, one per request",
                lambda s: cpu_per_event(s, events(f"single-{s.name}", single), 1,
                                        args.threads))
        measure("batch", "CPU ms/event, batches of 100",
                lambda s: cpu_per_event(s, events(f"batch-{s.name}", single * 5), 100,
                                        args.threads))
        measure("p99", "p99 ms at 50 events/s",
                lambda s: paced(s, events(f"paced-{s.name}", paced_count), 50.0))
        if args.burn:
            with Burn(args.burn):
                measure("p99_burn", f"p99 ms at 50/s, {args.burn} busy loops",
                        lambda s: paced(s, events(f"burn-{s.name}", paced_count), 50.0))
        for server in servers:
            if not server.alive():
                print(f"{server.name} died during the run", file=sys.stderr)
                return 1

    p, a = results["Patrol"], results["Alertmanager"]
    quiet = os.getloadavg()[0] < 1.0
    rows = [
        Row("server CPU per new event, one per request", "<= 5x AM", p["single"],
            a["single"], "ms", lambda _v, r: r <= 5),
        Row("server CPU per new event, batches of 100", "<= 4x AM", p["batch"], a["batch"],
            "ms", lambda _v, r: r <= 4),
        Row("p99 at 50 events/s" + (" (quiet)" if quiet else " (loaded machine)"),
            "<= 5 ms quiet; <= 2x AM under load", p["p99"], a["p99"], "ms",
            (lambda v, _r: v <= 5) if quiet else (lambda _v, r: r <= 2)),
    ]
    if "p99_burn" in p:
        rows.append(Row(f"p99 at 50 events/s, {args.burn} busy loops", "<= 2x AM",
                        p["p99_burn"], a["p99_burn"], "ms", lambda _v, r: r <= 2))
    report(rows)
    print(f"\nstore: {args.store}; finished at {datetime.now(UTC):%H:%M:%S} UTC, {loadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
