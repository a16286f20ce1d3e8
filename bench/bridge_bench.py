#!/usr/bin/env python3
"""Breach-to-ticket and recovery-to-resolve latency through the whole chain, measured
over real breaches: agent -> collector -> dispatch -> a helpdesk.

One command, from the repository root::

    python bench/bridge_bench.py [--helpdesk redmine|webhook] [--rounds N]

bench/BRIDGE.md explains every figure and lists the latest results. In short: one
``patrol up`` process (agent and collector, SQLite store in a temporary directory) runs
a ``tcp`` check every ``--interval`` (``for: 1``) on a port the bench opens and closes.
Each round closes the port (a real breach: connections are refused), waits until the
helpdesk confirmed the new ticket, opens the port again and waits until the helpdesk
confirmed the resolve. ``reopen_window: 0`` makes every breach a NEW ticket (nothing
reopens), and a round starts only after the previous one's resolve is confirmed, so
rounds never overlap. The first round is a warm-up (the adapter resolves names once,
drivers import): reported apart, not counted.

Timestamps (all from this host's clock) are read afterwards from what the processes
recorded: the agent's log line for the hard state change, the stored events'
``observed_at`` and ``received_at``, the ticket timeline entry "opened in <helpdesk> as
#N" (written the moment the helpdesk's reference is stored), the dispatch rows' done_at.
The helpdesk's own time is measured on the helpdesk's side: for Redmine the sum of
"Completed ... in X ms" of the bench's own Redmine process (its PID) in production.log,
for the webhook the receiver's time from request to response. Every process the bench
starts is stopped by PID. Exit code 0 whatever the figures, 1 if nothing was measured.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import select
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from datetime import datetime
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CHECK = "bench-port"
REDMINE_LOG = Path("/var/log/redmine/default/production.log")
AGENT_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ patrol\.agent: "
                        + CHECK + r": (\w+) -> (\w+):")
RAILS_LINE = re.compile(r"^\w, \[(\S+) #(\d+)\]\s+\w+ -- : \[([0-9a-f-]+)\] "
                        r"(?:Started (\w+) \"([^\"]*)\"|Completed (\d+) .*? in (\d+)ms)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """The monitored TCP service: accepts (and drops) connections until stopped, so a
    full accept queue can never cause a breach of its own."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.closed_at = 0.0

    def start(self) -> float:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        opened = time.time()
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
        self._thread.start()
        return opened

    def _serve(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            if select.select([sock], [], [], 0.02)[0]:
                conn, _ = sock.accept()
                conn.close()
        sock.close()  # the breach: from here connections are refused
        self.closed_at = time.time()

    def stop(self) -> float:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        return self.closed_at


class Receiver(ThreadingHTTPServer):
    """The webhook helpdesk: records (arrived, answered, action, number) per request."""

    daemon_threads = True

    def __init__(self) -> None:
        self.calls: list[tuple[float, float, str, str]] = []
        super().__init__(("127.0.0.1", 0), _Hook)


class _Hook(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the adapter's session expects

    def do_POST(self) -> None:
        arrived = time.time()
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        reply = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)
        self.wfile.flush()
        self.server.calls.append((arrived, time.time(), body["action"], body["number"]))

    def log_message(self, *args: Any) -> None:
        pass


def write_configs(tmp: Path, args: argparse.Namespace, port: int, host: str,
                  helpdesk: str) -> None:
    (tmp / "agent.yaml").write_text(f"""
agent:
  listen: 127.0.0.1:{free_port()}
  hostname: {host}
  state_dir: {tmp}/state
checks:
  - name: {CHECK}
    type: tcp
    host: 127.0.0.1
    port: {port}
    interval: {args.interval}s
    timeout: 1s
    for: 1
""")
    # stale_factor: the collector judges staleness from the heartbeat's last_run, sent
    # every 15 s; with a 0.2 s check the default factor 3 would ticket "stale" between
    # heartbeats. reopen_window 0: every breach is a new ticket; close_after 0: the
    # resolved ticket is closed by the next watchdog pass, before the next breach (a
    # breach while the old ticket is still "resolved" after its reopen window makes the
    # collector answer 500 (DuplicateTicket) for ever; see BRIDGE.md).
    (tmp / "collector.yaml").write_text(f"""
collector:
  listen: 127.0.0.1:{free_port()}
  store: sqlite:///{tmp}/state/collector.db
  watchdog_interval: {args.watchdog}s
policy:
  lifecycle: {{verify_for: {args.verify_for}s, reopen_window: 0, close_after: 0}}
  liveness: {{stale_factor: 1000}}
ticketing:
  helpdesks:
{helpdesk}
  routes:
    - helpdesk: bench
  sync_interval: 1h
""")


def wait(predicate: Any, timeout: float, proc: subprocess.Popen, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        if proc.poll() is not None:
            raise RuntimeError(f"patrol up exited ({proc.returncode}) while waiting for {what}")
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def run_rounds(db: Path, service: Service, proc: subprocess.Popen, total: int,
               gap: float) -> list[dict[str, float]]:
    """Breach and recover ``total`` times; the bench's own clock readings per round."""
    conn = sqlite3.connect(db, timeout=10)
    one = lambda sql, *a: conn.execute(sql, a).fetchone()  # noqa: E731
    rounds = []
    for i in range(total):
        closed = service.stop()
        ticket = wait(partial(one, "SELECT id FROM tickets WHERE check_name=? ORDER BY id "
                              "LIMIT 1 OFFSET ?", CHECK, i), 60, proc, f"ticket {i + 1}")[0]
        for action in ("open", "resolve"):
            row = wait(partial(one, "SELECT state, last_error FROM dispatch WHERE ticket_id=? "
                               "AND action=? AND state IN ('done', 'failed')", ticket, action),
                       60, proc, f"{action} of ticket {i + 1}")
            if row[0] == "failed":
                raise RuntimeError(f"the helpdesk refused {action}: {row[1]}")
            if action == "open":
                opened = service.start()
        wait(partial(one, "SELECT 1 FROM tickets WHERE id=? AND status='closed'", ticket),
             60, proc, f"ticket {i + 1} closed")
        rounds.append({"closed": closed, "opened": opened, "ticket": ticket})
        print(f"  round {i + 1}/{total} done", end="\r" if sys.stdout.isatty() else "\n",
              flush=True)
        time.sleep(gap)
    print()
    conn.close()
    return rounds


def _local(text: str, fmt: str | None = None) -> float:
    """A log timestamp in local time (both logs write this host's local time)."""
    moment = datetime.strptime(text, fmt) if fmt else datetime.fromisoformat(text)
    return moment.timestamp()


def agent_changes(log: Path) -> tuple[list[float], list[float]]:
    """Times of the agent's hard state changes OK -> bad and bad -> OK, in order."""
    down, up = [], []
    for line in log.read_text(errors="replace").splitlines():
        match = AGENT_LINE.match(line)
        if match:
            moment = _local(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
            (up if match.group(3) == "OK" else down).append(moment)
    return down, up


def redmine_requests(pid: int, since_offset: int) -> list[tuple[float, str, float]]:
    """(started, "METHOD path", server ms) of every request of Redmine process ``pid``."""
    pending: dict[str, tuple[float, str]] = {}
    done: list[tuple[float, str, float]] = []
    if not REDMINE_LOG.exists():
        print(f"note: no {REDMINE_LOG}: the helpdesk's own time is counted as 0")
        return done
    with open(REDMINE_LOG, "rb") as handle:
        handle.seek(since_offset)
        for raw in handle:
            match = RAILS_LINE.match(raw.decode(errors="replace"))
            if not match or int(match.group(2)) != pid:
                continue
            if match.group(4):
                pending[match.group(3)] = (_local(match.group(1)),
                                           f"{match.group(4)} {match.group(5)}")
            elif match.group(3) in pending:
                started, what = pending.pop(match.group(3))
                done.append((started, what, float(match.group(7)) / 1000))
    return done


def measure(db: Path, rounds: list[dict[str, float]], log: Path, own: Any) -> list[dict]:
    """Per round: every timestamp of the chain, and the helpdesk's own time per action."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    down, up = agent_changes(log)
    events: dict[str, list[dict]] = {"trigger": [], "resolve": []}
    for row in conn.execute("SELECT received_at, payload FROM events ORDER BY received_at"):
        payload = json.loads(row["payload"])
        if payload["check"] == CHECK and payload["agent"]["id"] != "collector":
            events[payload["action"]].append({
                "observed": datetime.fromisoformat(payload["observed_at"]).timestamp(),
                "received": row["received_at"]})
    out = []
    for r in rounds:
        t = conn.execute("SELECT * FROM tickets WHERE id=?", (r["ticket"],)).fetchone()
        confirmed = conn.execute("SELECT at FROM timeline WHERE ticket_id=? AND kind="
                                 "'helpdesk' ORDER BY id LIMIT 1", (t["id"],)).fetchone()[0]
        resolved_done = conn.execute("SELECT done_at FROM dispatch WHERE ticket_id=? AND "
                                     "action='resolve'", (t["id"],)).fetchone()[0]
        # the first of each after the bench's own move (1 ms: log times are truncated)
        trigger = next(e for e in events["trigger"] if e["observed"] >= r["closed"] - 0.001)
        resolve = next(e for e in events["resolve"] if e["observed"] >= r["opened"] - 0.001)
        out.append({
            "closed": r["closed"], "down": next(d for d in down if d >= r["closed"] - 0.001),
            "trigger": trigger, "confirmed": confirmed, "opened": r["opened"],
            "up": next(u for u in up if u >= r["opened"] - 0.001), "resolve": resolve,
            "recovered_at": t["recovered_at"], "resolved_at": t["resolved_at"],
            "resolve_done": resolved_done, "number": t["number"],
            "own_open": own("open", t["number"], trigger["received"], confirmed),
            "own_resolve": own("resolve", t["number"], t["resolved_at"], resolved_done)})
    if len(down) != len(rounds) or len(up) != len(rounds):
        print(f"note: the agent logged {len(down)} breaches and {len(up)} recoveries for "
              f"{len(rounds)} rounds (a transition the bench did not cause)")
    conn.close()
    return out


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile: p99 of fewer than 100 samples is their maximum."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def report(samples: list[dict], args: argparse.Namespace, warmup: list[dict]) -> None:
    hold = args.verify_for + args.watchdog
    rows: list[tuple[str, list[float], float | None]] = []

    def row(label: str, values: list[float], target: float | None = None) -> None:
        rows.append((label, values, target))

    s = samples
    row("breach -> ticket confirmed, from the agent's hard change",
        [x["confirmed"] - x["down"] for x in s])
    row("  the helpdesk's own time (open)", [x["own_open"] for x in s])
    row("  NOT counting the helpdesk's own time",
        [x["confirmed"] - x["down"] - x["own_open"] for x in s], 1.0)
    row("  from the event's observed_at, not counting the helpdesk",
        [x["confirmed"] - x["trigger"]["observed"] - x["own_open"] for x in s])
    row("  from the port's close (adds detection, <= one interval)",
        [x["confirmed"] - x["closed"] for x in s])
    row("  stage: hard change -> event built (diagnostics capture)",
        [x["trigger"]["observed"] - x["down"] for x in s])
    row("  stage: event built -> stored by the collector",
        [x["trigger"]["received"] - x["trigger"]["observed"] for x in s])
    row("  stage: stored -> helpdesk reference stored",
        [x["confirmed"] - x["trigger"]["received"] for x in s])
    row("recovery -> resolve confirmed, from the agent's hard change (raw)",
        [x["resolve_done"] - x["up"] for x in s])
    row("  the helpdesk's own time (resolve)", [x["own_resolve"] for x in s])
    row(f"  NET: minus verify_for + watchdog interval ({hold:g} s) and the helpdesk",
        [x["resolve_done"] - x["up"] - hold - x["own_resolve"] for x in s], 1.0)
    row("  from the OK event's observed_at, net as above",
        [x["resolve_done"] - x["resolve"]["observed"] - hold - x["own_resolve"] for x in s])
    row("  hold-down actually waited (recovered_at -> resolved_at)",
        [x["resolved_at"] - x["recovered_at"] for x in s])
    row("  pipeline only: raw - actual hold-down - helpdesk",
        [x["resolve_done"] - x["up"] - (x["resolved_at"] - x["recovered_at"])
         - x["own_resolve"] for x in s])
    print(f"\n{args.helpdesk}: {len(s)} breaches (+{len(warmup)} warm-up), check interval "
          f"{args.interval:g} s, for: 1, verify_for {args.verify_for:g} s, watchdog "
          f"{args.watchdog:g} s; seconds")
    print(f"{'':72}{'p50':>8}{'p99':>8}{'max':>8}")
    for label, values, target in rows:
        verdict = "" if target is None else \
            f"  {'PASS' if pct(values, 99) <= target else 'MISS'} (p99 <= {target:g})"
        print(f"{label:72}{pct(values, 50):8.3f}{pct(values, 99):8.3f}{max(values):8.3f}"
              f"{verdict}")
    for w in warmup:
        print(f"warm-up round: breach -> ticket {w['confirmed'] - w['down']:.3f} s (helpdesk "
              f"{w['own_open']:.3f}), recovery -> resolve {w['resolve_done'] - w['up']:.3f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = "redmine" if Path("/usr/share/redmine").exists() and os.geteuid() == 0 \
        else "webhook"
    parser.add_argument("--helpdesk", choices=("redmine", "webhook"), default=default)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--interval", type=float, default=0.2, help="check interval, s")
    parser.add_argument("--verify-for", type=float, default=1.0, help="s")
    parser.add_argument("--watchdog", type=float, default=0.2, help="watchdog interval, s")
    parser.add_argument("--gap", type=float, default=0.3, help="s between rounds")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="patrol-bridge-bench-"))
    host = f"bench-{os.getpid()}-{int(time.time())}"
    with ExitStack() as stack:
        if args.helpdesk == "redmine":
            from tests.helpdesk_servers import redmine

            offset = REDMINE_LOG.stat().st_size if REDMINE_LOG.exists() else 0
            print("starting Redmine ...", flush=True)
            import pytest

            try:
                server = stack.enter_context(redmine(tmp, free_port()))
            except (pytest.fail.Exception, pytest.skip.Exception) as exc:
                print(f"Redmine did not start: {exc}; try --helpdesk webhook", file=sys.stderr)
                return 1
            helpdesk = (f"    bench: {{type: redmine, url: '{server.url}', "
                        f"api_key: '{server.token}', project: monitoring}}")

            parsed: list[list[tuple[float, str, float]]] = []

            def own(action: str, number: str, start: float, end: float) -> float:
                if not parsed:  # read once, after the run
                    parsed.append(redmine_requests(server.pid, offset))
                return sum(ms for started, _, ms in parsed[0] if start <= started <= end)
        else:
            receiver = Receiver()
            threading.Thread(target=receiver.serve_forever, daemon=True).start()
            stack.callback(receiver.shutdown)
            url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
            helpdesk = (f"    bench: {{type: webhook, url: '{url}', template: "
                        "{action: '{action}', number: '{number}', title: '{title}'}}")

            def own(action: str, number: str, start: float, end: float) -> float:
                return sum(b - a for a, b, act, num in receiver.calls
                           if act == action and num == number)
        port = free_port()
        service = Service(port)
        service.start()
        stack.callback(service.stop)
        write_configs(tmp, args, port, host, helpdesk)
        log = tmp / "up.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "patrol.cli", "up", "--config", str(tmp / "agent.yaml"),
                 "--collector-config", str(tmp / "collector.yaml")],
                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        stack.callback(stop, proc)
        try:
            wait(lambda: "operator token" in log.read_text(), 60, proc, "patrol up")
            time.sleep(1.0)  # the check has run OK a few times: a clean start
            print(f"patrol up PID {proc.pid}; {args.rounds} rounds + 1 warm-up against "
                  f"{args.helpdesk}; temporary directory {tmp}", flush=True)
            rounds = run_rounds(tmp / "state" / "collector.db", service, proc,
                                args.rounds + 1, args.gap)
        except RuntimeError as exc:
            print(f"bench aborted: {exc}; log {log}", file=sys.stderr)
            return 1
        stop(proc)
        samples = measure(tmp / "state" / "collector.db", rounds, log, own)
        numbers = {s["number"] for s in samples}
        print(f"{len(numbers)} distinct tickets for {len(samples)} breaches")
        report(samples[1:], args, samples[:1])
    if not args.keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


if __name__ == "__main__":
    sys.exit(main())
