#!/usr/bin/env python3
"""Benchmark the Patrol agent (and node_exporter, when installed) on this host.

One command, from the repository root: ``python bench/agent_bench.py``
(``--quick`` for a 15 s window, ``--duration N`` for another one).

What it does, in order (bench/README.md explains every figure):

1. writes an agent config with ~20 realistic checks at a 15 s interval into a
   temporary directory: system checks, tcp checks on the local database ports,
   file/log/textfile checks on temporary files, a process check, http and https
   checks against tiny stdlib servers running in threads of THIS process (so their
   cost is not the agent's), a tls_cert check on a generated certificate, and the
   postgres/mysql/redis checks when those servers answer on 127.0.0.1;
2. spawns ``sys.executable -m patrol.cli agent`` and polls ``/metrics`` to time
   the start-up (listening, first check result, every check has a result);
3. lets it settle, then measures over the window, scraping it every 15 s the way
   Prometheus would and nothing more: PSS/RSS from /proc/PID/smaps_rollup, CPU
   from /proc/PID/stat (utime+stime+cutime+cstime) over wall time;
4. AFTER the window, a burst of keep-alive scrapes for /metrics latency p50/p99
   (so the burst cannot inflate the CPU figure);
5. repeats 2-4 for /usr/bin/prometheus-node-exporter (default collectors) on
   another free loopback port, then prints the table with targets.

Every process it starts is stopped by PID (SIGTERM, then SIGKILL after 5 s), also
on Ctrl-C. The exit code is 0 whatever the figures are (a benchmark reports, it
does not judge); it is 1 only when the agent could not be measured at all.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SCRAPE_EVERY = 15.0  # seconds: the check interval and the simulated Prometheus scrape
STARTUP_TIMEOUT = 30.0
# What Prometheus 2.x sends; the plain burst sends neither header (like curl).
PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
    "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
}
# Issue 10 item 5. PSS in MiB per profile; CPU as a ratio to node_exporter's in the
# same run; /metrics p50 in ms; start-up to the first real data in s.
PSS_TARGETS = {"shipped": 28.0, "bench": 40.0}
TARGETS = {"cpu_ratio": 2.0, "p50": 2.0, "startup": 0.3}
_CHECK = re.compile(r'check="([^"]*)"')


# -- the world the agent inspects ------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class _Hello(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b"<html><title>bench app</title><body>ok</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def start_http_server() -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True, name="bench-http").start()
    return server


def make_cert(directory: Path) -> tuple[Path, Path] | None:
    """A self-signed certificate for 127.0.0.1 valid for 90 days, and its key; None
    without cryptography."""
    try:
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        return None
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench.local")])
    now = datetime.datetime.now(datetime.UTC)
    san = x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                       x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=90))
            .add_extension(san, critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "bench.crt", directory / "bench.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def start_https_server(cert: Path, key: Path) -> ThreadingHTTPServer:
    """The same page over TLS, so the http check pays what an https probe costs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True, name="bench-https").start()
    return server


def log_writer(path: Path, stop: threading.Event) -> None:
    """An application log that grows by one line a second, an ERROR now and then."""
    n = 0
    with path.open("a") as f:
        while not stop.wait(1.0):
            n += 1
            level = "ERROR" if n % 30 == 0 else "INFO"
            f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {level} request {n} served\n")
            f.flush()


def build_config(tmp: Path, port: int, http_port: int, cert: Path | None,
                 https_port: int | None = None) -> tuple[dict[str, Any], list[str]]:
    """The bench profile and the notes on what had to be left out."""
    notes: list[str] = []
    (tmp / "heartbeat").write_text("alive\n")
    (tmp / "backup.dump").write_bytes(b"\0" * 200_000)
    (tmp / "app.log").write_text("")
    (tmp / "backup.prom").write_text(
        "# TYPE backup_size_bytes gauge\nbackup_size_bytes 200000\n"
        "# TYPE backup_last_success_timestamp_seconds gauge\n"
        f"backup_last_success_timestamp_seconds {time.time():.0f}\n")
    checks: list[dict[str, Any]] = [
        {"name": "cpu", "type": "cpu", "warning": "80%", "critical": "95%", "for": "5m"},
        {"name": "memory", "type": "memory", "warning": "90%", "critical": "95%"},
        {"name": "swap", "type": "swap", "warning": "50%", "critical": "80%"},
        {"name": "load", "type": "load", "warning": 1.5, "critical": 3},
        {"name": "disk", "type": "disk", "warning": "85%", "critical": "95%",
         "thresholds": {"inodes_used_ratio": {"warning": "85%", "critical": "95%"}}},
        {"name": "bench-tmp-disk", "type": "disk", "path": str(tmp)},
        {"name": "app-port", "type": "tcp", "host": "127.0.0.1", "port": http_port},
        {"name": "app-http", "type": "http", "url": f"http://127.0.0.1:{http_port}/health",
         "expect_status": ["2xx"], "body_match": "ok", "warning": "800ms", "critical": "3s"},
        {"name": "heartbeat-file", "type": "file", "path": str(tmp / "heartbeat"),
         "warning": "1h", "critical": "2h"},
        {"name": "nightly-backup", "type": "file", "path": str(tmp / "*.dump"),
         "warning": "26h", "critical": "50h", "min_size": "100KiB"},
        {"name": "app-log-errors", "type": "log", "path": str(tmp / "app.log"),
         "pattern": "ERROR|FATAL", "warning": 5, "critical": 20},
        {"name": "backup-textfile", "type": "textfile", "path": str(tmp / "backup.prom"),
         "metric": "backup_size_bytes"},
        {"name": "bench-runner", "type": "process", "pattern": "agent_bench\\.py"},
    ]
    if cert is not None:
        checks.append({"name": "bench-cert", "type": "tls_cert", "path": str(cert)})
    else:
        notes.append("tls_cert check left out: the cryptography package is not importable")
    if cert is not None and https_port is not None:
        checks.append({"name": "app-https", "type": "http",
                       "url": f"https://127.0.0.1:{https_port}/", "ca_file": str(cert),
                       "expect_status": ["2xx"], "warning": "800ms", "critical": "3s"})
    else:
        notes.append("https check left out: no certificate (cryptography missing)")
    services = [
        (5432, "postgres", {"name": "postgres-connections", "type": "postgres",
                            "dsn": "postgresql://postgres@127.0.0.1:5432/postgres",
                            "warning": "80%", "critical": "90%"}),
        (3306, "mariadb", {"name": "mariadb-connections", "type": "mysql",
                           "host": "127.0.0.1", "port": 3306, "user": "root",
                           "warning": "80%", "critical": "90%"}),
        (6379, "redis", {"name": "redis-clients", "type": "redis",
                         "url": "redis://127.0.0.1:6379/0",
                         "warning": "80%", "critical": "90%"}),
    ]
    for svc_port, label, db_check in services:
        if reachable(svc_port):
            checks.append({"name": f"{label}-port", "type": "tcp", "host": "127.0.0.1",
                           "port": svc_port, "timeout": "3s"})
            checks.append(db_check)
        else:
            notes.append(f"{label} tcp and connection checks left out: nothing answers "
                         f"on 127.0.0.1:{svc_port}")
    config = {
        "agent": {"listen": f"127.0.0.1:{port}", "state_dir": str(tmp / "state"),
                  "interval": "15s", "timeout": "10s",
                  "labels": {"tier": "standard", "team": "ops", "env": "bench"}},
        "checks": checks,
    }
    return config, notes


def shipped_config(tmp: Path, port: int) -> dict[str, Any]:
    """``configs/agent.yaml`` as shipped, on a free port and a temporary state
    directory, without its ``include:`` (conf.d holds only a README)."""
    config = yaml.safe_load((ROOT / "configs" / "agent.yaml").read_text())
    config.pop("include", None)
    config["agent"].update(listen=f"127.0.0.1:{port}", state_dir=str(tmp / "state"))
    config["agent"].pop("token", None)  # ${PATROL_TOKEN:-}: unset here anyway
    return config


# -- processes and /proc ----------------------------------------------------------------

def spawn(argv: list[str], log: Path, started: list[subprocess.Popen]) -> subprocess.Popen:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT)
    started.append(proc)
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def memory_mib(pid: int) -> tuple[float, float]:
    """(PSS, RSS) in MiB from smaps_rollup (values there are in kB)."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, rest = line.partition(":")
        fields[key] = int(rest.split()[0])
    return fields["Pss"] / 1024, fields["Rss"] / 1024


def cpu_seconds(pid: int) -> float:
    """utime+stime (all threads, also exited ones) + cutime+cstime (reaped children)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    after_comm = stat[stat.rindex(")") + 2:].split()
    return sum(int(v) for v in after_comm[11:15]) / CLK_TCK


# -- HTTP -------------------------------------------------------------------------------

def get_metrics(conn: http.client.HTTPConnection,
                headers: dict[str, str] | None = None) -> tuple[float, bytes]:
    """(seconds from request to the last body byte, body)."""
    start = time.perf_counter()
    conn.request("GET", "/metrics", headers=headers or {})
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - start
    if response.status != 200:
        raise RuntimeError(f"/metrics answered {response.status}")
    return elapsed, body


def checks_with_results(body: bytes) -> set[str]:
    """Checks that have completed a run: they have a last-run timestamp series."""
    return {m.group(1) for line in body.decode().splitlines()
            if line.startswith("patrol_check_last_run_timestamp_seconds{")
            and (m := _CHECK.search(line))}


def time_startup(proc: subprocess.Popen, t0: float, port: int,
                 names: set[str] | None) -> dict[str, float | None]:
    """Poll /metrics (fresh connection every ~5 ms) and note when each milestone came.

    ``names`` None means an exporter that collects at scrape time: its first 200 is
    real data. Milestones that never came within STARTUP_TIMEOUT are None.
    """
    found: dict[str, float | None] = {"listening": None, "first": None, "all": None}
    while time.perf_counter() - t0 < STARTUP_TIMEOUT:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode} during start-up")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            _, body = get_metrics(conn)
        except (OSError, http.client.HTTPException, RuntimeError):
            time.sleep(0.002)
            continue
        finally:
            conn.close()
        now = time.perf_counter() - t0
        found["listening"] = found["listening"] or now
        done = checks_with_results(body) if names is not None else {"*"}
        if done and found["first"] is None:
            found["first"] = now
        if names is None or done >= names:
            found["all"] = now
            return found
        time.sleep(0.005)
    return found


def measure_window(pid: int, port: int, duration: float) -> dict[str, float]:
    """CPU and memory over ``duration`` s, with one Prometheus-style scrape per 15 s."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    pss, rss = [], []
    wall0, cpu0 = time.perf_counter(), cpu_seconds(pid)
    next_scrape = next_sample = wall0
    end = wall0 + duration
    while (now := time.perf_counter()) < end:
        if now >= next_scrape:
            get_metrics(conn, PROMETHEUS_HEADERS)
            next_scrape += SCRAPE_EVERY
        if now >= next_sample:
            p, r = memory_mib(pid)
            pss.append(p)
            rss.append(r)
            next_sample += 5.0
        time.sleep(max(0.0, min(next_scrape, next_sample, end) - time.perf_counter()))
    cpu1, wall1 = cpu_seconds(pid), time.perf_counter()
    conn.close()
    p, r = memory_mib(pid)
    pss.append(p)
    rss.append(r)
    return {"cpu": 100.0 * (cpu1 - cpu0) / (wall1 - wall0), "cpu_seconds": cpu1 - cpu0,
            "pss": max(pss), "pss_end": p, "rss": max(rss), "rss_end": r}


def latency_burst(port: int, count: int, headers: dict[str, str] | None = None
                  ) -> dict[str, float]:
    """``count`` back-to-back scrapes on one keep-alive connection (after 20 warm-ups)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for _ in range(20):
            get_metrics(conn, headers)
        samples, size = [], 0
        for _ in range(count):
            elapsed, body = get_metrics(conn, headers)
            samples.append(elapsed * 1000.0)
            size = len(body)
    finally:
        conn.close()
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": statistics.median(samples), "p99": cuts[98], "bytes": size}


# -- the two subjects ------------------------------------------------------------------

def bench_process(label: str, argv: list[str], port: int, names: set[str] | None,
                  args: argparse.Namespace, log: Path,
                  started: list[subprocess.Popen]) -> dict[str, Any]:
    print(f"\n== {label}: {' '.join(argv)}", flush=True)
    t0 = time.perf_counter()
    proc = spawn(argv, log, started)
    try:
        figures: dict[str, Any] = {"startup": time_startup(proc, t0, port, names),
                                   "load": os.getloadavg()[0]}
        if names is not None and figures["startup"]["all"] is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            missing = names - checks_with_results(get_metrics(conn)[1])
            print(f"   checks without a result after {STARTUP_TIMEOUT:.0f} s: "
                  f"{', '.join(sorted(missing))}")
        print(f"   start-up: {_fmt_startup(figures['startup'])}; settling {args.settle:.0f} s",
              flush=True)
        time.sleep(args.settle)
        print(f"   measuring CPU and memory over {args.duration:.0f} s "
              f"(one scrape every {SCRAPE_EVERY:.0f} s)", flush=True)
        figures.update(measure_window(proc.pid, port, args.duration))
        print(f"   latency: {args.scrapes} keep-alive scrapes, plain, then Prometheus "
              "headers (Accept: OpenMetrics first, text 0.0.4 too; gzip)", flush=True)
        figures["plain"] = latency_burst(port, args.scrapes)
        figures["prom"] = latency_burst(port, args.scrapes, PROMETHEUS_HEADERS)
        if names is not None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            figures["final"] = get_metrics(conn)[1].decode()
            conn.close()
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode}")
        return figures
    finally:
        stop(proc)


def _fmt_startup(s: dict[str, float | None]) -> str:
    return ", ".join(f"{k} {'-' if v is None else f'{v:.3f} s'}" for k, v in s.items())


def report_checks(text: str) -> None:
    """Per-check sanity: a bench full of UNKNOWN checks would measure the wrong thing."""
    statuses, durations = {}, {}
    for line in text.splitlines():
        m = _CHECK.search(line)
        if m and line.startswith("patrol_check_status{"):
            statuses[m.group(1)] = int(float(line.rsplit(" ", 1)[1]))
        elif m and line.startswith("patrol_check_duration_seconds{"):
            durations[m.group(1)] = float(line.rsplit(" ", 1)[1])
    names = ["OK", "WARNING", "CRITICAL", "UNKNOWN"]
    bad = {n: names[s] for n, s in statuses.items() if s}
    print(f"\nagent checks: {len(statuses)}, not OK: "
          f"{', '.join(f'{n}={s}' for n, s in bad.items()) or 'none'}")
    slow = sorted(durations.items(), key=lambda kv: -kv[1])[:5]
    print("slowest last runs: " + ", ".join(f"{n} {d * 1000:.0f} ms" for n, d in slow))


# -- the table -------------------------------------------------------------------------

def print_table(agent: dict[str, Any], node: dict[str, Any] | None, args: argparse.Namespace
                ) -> None:
    """figure | target | patrol | node_exporter | ratio | verdict; the 1-minute load
    average when each process was measured is in the header."""
    def value(fig: dict[str, Any] | None, key: str, sub: str | None) -> float | None:
        if fig is None:
            return None
        return fig[key][sub] if sub else fig[key]

    def shown(number: float | None, fmt: str) -> str:
        return "-" if number is None else format(number, fmt)

    window = f"{args.duration:.0f} s"
    cpu_ratio_target = TARGETS["cpu_ratio"]
    rows = [
        ("PSS, MiB (max in window)", PSS_TARGETS[args.profile], "pss", None, ".1f"),
        ("RSS, MiB (max in window)", None, "rss", None, ".1f"),
        (f"CPU, % of one core ({window})", None, "cpu", None, ".3f"),
        (f"/metrics p50, ms ({args.scrapes} plain)", TARGETS["p50"], "plain", "p50", ".2f"),
        ("/metrics p99, ms (plain)", None, "plain", "p99", ".2f"),
        ("/metrics p50, ms (Prometheus hdrs)", None, "prom", "p50", ".2f"),
        ("/metrics p99, ms (Prometheus hdrs)", None, "prom", "p99", ".2f"),
        ("/metrics body, bytes (plain)", None, "plain", "bytes", "d"),
        ("start-up: /metrics answers, s", None, "startup", "listening", ".3f"),
        ("start-up: first real data, s", TARGETS["startup"], "startup", "first", ".3f"),
        ("start-up: every check has data, s", None, "startup", "all", ".3f"),
    ]
    loads = f"load {agent['load']:.2f}" + (f" / {node['load']:.2f}" if node else "")
    print(f"\nprofile {args.profile}; 1-min load average when measured (agent / "
          f"node_exporter): {loads}")
    print(f"{'figure':<38} {'target':>8} {'patrol':>9} {'node_exp':>9} {'ratio':>7}  verdict")
    print("-" * 86)
    for title, target, key, sub, fmt in rows:
        mine, theirs = value(agent, key, sub), value(node, key, sub)
        ratio = mine / theirs if mine is not None and theirs else None
        if key == "cpu":
            target_text, verdict = f"<={cpu_ratio_target:g}x", (
                "" if ratio is None else "PASS" if ratio <= cpu_ratio_target else "MISS")
        else:
            target_text = "" if target is None else f"<={target:g}"
            verdict = "" if target is None else (
                "MISS" if mine is None or mine > target else "PASS")
        print(f"{title:<38} {target_text:>8} {shown(mine, fmt):>9} {shown(theirs, fmt):>9} "
              f"{shown(ratio, '.2f'):>7}  {verdict}")
    print("\nfirst real data = the first /metrics response in which at least one check has "
          "completed a run\n(it has a patrol_check_last_run_timestamp_seconds series; before "
          "its first run a check is\nlisted in patrol_check_status only). every check has "
          "data = all configured checks have one.\nFor node_exporter, which collects at "
          "scrape time, its first 200 on /metrics is real data.")


# -- main -------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=60.0,
                   help="CPU/memory window in seconds (default 60)")
    p.add_argument("--quick", action="store_true", help="a 15 s window instead")
    p.add_argument("--settle", type=float, default=5.0,
                   help="seconds between every check having data and the window (default 5)")
    p.add_argument("--scrapes", type=int, default=500, help="scrapes per latency burst")
    p.add_argument("--no-node-exporter", action="store_true",
                   help="measure the agent only")
    p.add_argument("--profile", choices=("bench", "shipped"), default="bench",
                   help="bench: the 21-check profile (default); shipped: configs/agent.yaml")
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary directory (config, logs) and print its path")
    args = p.parse_args(argv)
    if args.quick:
        args.duration = 15.0
    return args


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _interrupt(*_: Any) -> None:
    """SIGTERM takes the same way out as Ctrl-C, so the finally block stops everything."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # also when started with SIGINT ignored
    tmp = Path(tempfile.mkdtemp(prefix="patrol-bench-"))
    started: list[subprocess.Popen] = []
    stop_log = threading.Event()
    servers = [start_http_server()]
    try:
        threading.Thread(target=log_writer, args=(tmp / "app.log", stop_log),
                         daemon=True).start()
        port = free_port()
        tls = make_cert(tmp)
        if tls is not None:
            servers.append(start_https_server(*tls))
        if args.profile == "shipped":
            config, notes = shipped_config(tmp, port), []
        else:
            config, notes = build_config(tmp, port, servers[0].server_address[1],
                                         tls[0] if tls else None,
                                         servers[1].server_address[1] if tls else None)
        config_path = tmp / "agent-bench.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        names = {c["name"] for c in config["checks"]}
        print(f"patrol agent bench: profile {args.profile}, {len(names)} checks, "
              f"{os.cpu_count()} cores, "
              f"window {args.duration:.0f} s, load average {_load()}, config {config_path}")
        for note in notes:
            print(f"note: {note}")
        argv_agent = [sys.executable, "-m", "patrol.cli", "agent", "--config", str(config_path),
                      "--log-level", "WARNING"]
        try:
            agent = bench_process("patrol agent", argv_agent, port, names, args,
                                  tmp / "agent.log", started)
        except (RuntimeError, OSError, http.client.HTTPException) as exc:
            print(f"\npatrol agent could not be measured: {exc}\n--- agent log tail ---")
            print("\n".join((tmp / "agent.log").read_text().splitlines()[-30:]))
            return 1
        report_checks(agent["final"])
        node = None
        if args.no_node_exporter:
            print("\nnode_exporter: skipped (--no-node-exporter)")
        elif not os.access(NODE_EXPORTER, os.X_OK):
            print(f"\nnode_exporter: skipped ({NODE_EXPORTER} is not installed; "
                  "apt-get install prometheus-node-exporter)")
        else:
            ne_port = free_port()
            argv_ne = [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{ne_port}"]
            try:
                node = bench_process("node_exporter", argv_ne, ne_port, None, args,
                                     tmp / "node_exporter.log", started)
            except (RuntimeError, OSError, http.client.HTTPException) as exc:
                print(f"node_exporter could not be measured: {exc}")
        print_table(agent, node, args)
        print(f"load average at the end: {_load()} (other work on the host skews every figure)")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping what the bench started", file=sys.stderr)
        return 130
    finally:
        for proc in started:
            stop(proc)
        stop_log.set()
        for server in servers:
            server.shutdown()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
