#!/usr/bin/env python3
"""What each database driver candidate costs the agent: PSS and one check's time.

One command, from the repository root: ``python bench/driver_footprint.py``. For each
candidate, a fresh interpreter first imports what the agent has loaded anyway (ssl,
http.client, json, socket, threading), then reports PSS (``/proc/self/smaps_rollup``)
after importing the driver, and after one real connection with the check's queries
against the servers on 127.0.0.1 (PostgreSQL 5432 trust user ``postgres``, MariaDB
3306 ``root``, Redis 6379), then the median wall time of ``--runs`` more such
connections. Also the real checks (``patrol.checks.*``) as the agent runs them, and
all three in one interpreter. A candidate whose driver is not installed is skipped.
Prints figures with the load average; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PRELUDE = """
import ssl, http.client, json, socket, threading, time, sys
def pss():
    with open('/proc/self/smaps_rollup') as f:
        for line in f:
            if line.startswith('Pss:'):
                return int(line.split()[1]) / 1024
base = pss()
"""

PG_SQL = ("SELECT current_setting('max_connections')::int",
          "SELECT coalesce(state, 'unknown'), count(*)::int FROM pg_stat_activity GROUP BY 1")
CANDIDATES = {
    "psycopg": ("import psycopg", """
c = psycopg.connect('postgresql://postgres@127.0.0.1:5432/postgres', autocommit=True)
for q in SQL: c.execute(q).fetchall()
c.close()"""),
    "pg8000": ("import pg8000.native", """
c = pg8000.native.Connection('postgres', host='127.0.0.1', database='postgres')
for q in SQL: c.run(q)
c.close()"""),
    "pymysql": ("import pymysql", """
c = pymysql.connect(host='127.0.0.1', user='root', password='', ssl_disabled=True)
with c.cursor() as cur:
    cur.execute("SHOW GLOBAL STATUS LIKE 'Threads_%'"); cur.fetchall()
    cur.execute('SELECT @@GLOBAL.max_connections'); cur.fetchall()
c.close()"""),
    "pymysql without cryptography": (
        "sys.modules['cryptography'] = None\nimport pymysql\ndel sys.modules['cryptography']",
        None),  # same connection code as pymysql
    "redis-py": ("import redis", """
c = redis.Redis.from_url('redis://127.0.0.1:6379/0', decode_responses=True)
c.ping(); c.info('clients'); c.info('memory'); c.close()"""),
    "patrol.checks.redis_resp": ("from patrol.checks import redis_resp", """
c = redis_resp.Client.from_url('redis://127.0.0.1:6379/0')
c.ping(); c.info('clients'); c.info('memory'); c.close()"""),
}
CHECKS = {
    "postgres": {"dsn": "postgresql://postgres@127.0.0.1:5432/postgres"},
    "mysql": {"host": "127.0.0.1", "user": "root"},
    "redis": {"url": "redis://127.0.0.1:6379/0"},
}


def _check_code(types: list[str]) -> tuple[str, str]:
    setup = ("from patrol.checks.registry import load\n"
             "from patrol.checks.base import RunContext\n"
             "from patrol.checks.thresholds import Evaluator\n"
             "import patrol.checks.base, patrol.checks.config\n"
             "base = pss()\n"
             "runs = []\n")
    for name in types:
        setup += (f"cls = load({name!r})\n"
                  f"cfg = cls.Config.model_validate({{'name': {name!r}, 'type': {name!r}, "
                  f"**{CHECKS[name]!r}}})\n"
                  "ctx = RunContext('bench', Evaluator(cfg, cls.MEASUREMENTS))\n"
                  "runs.append((cls(cfg), ctx))\n")
    work = ("for check, ctx in runs:\n"
            "    r = check.run(ctx)\n"
            "    assert r.status.name == 'OK', r.summary\n")
    return setup, work


def measure(setup: str, work: str, runs: int) -> dict[str, float]:
    code = PRELUDE + setup + "\nimported = pss()\n" + f"""
def work():
    SQL = {PG_SQL!r}
{_indent(work)}
work()
connected = pss()
times = []
for _ in range({runs}):
    t = time.perf_counter(); work(); times.append((time.perf_counter() - t) * 1000)
times.sort()
print(json.dumps({{'import': imported - base, 'connected': connected - base,
                  'ms': times[len(times) // 2],
                  'crypto': 'cryptography' in sys.modules}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    if done.returncode:
        raise RuntimeError(done.stderr.strip().splitlines()[-1])
    return dict(json.loads(done.stdout))


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.strip().splitlines())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=20, help="timed connections per candidate")
    args = p.parse_args()
    print(f"{'candidate':34} {'import MiB':>10} {'+1 run MiB':>10} {'run ms':>8} "
          f"{'cryptography':>12}  load")
    rows: list[tuple[str, str, str]] = []
    for name, (setup, work) in CANDIDATES.items():
        rows.append((name, setup, work or CANDIDATES["pymysql"][1] or ""))
    for name in CHECKS:
        rows.append((f"check {name}", *_check_code([name])))
    rows.append(("checks postgres+mysql+redis", *_check_code(list(CHECKS))))
    for name, setup, work in rows:
        load = " ".join(f"{v:.2f}" for v in os.getloadavg())
        try:
            got = measure(setup, work, args.runs)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"{name:34} skipped: {exc}")
            continue
        print(f"{name:34} {got['import']:10.1f} {got['connected']:10.1f} {got['ms']:8.2f} "
              f"{'loaded' if got['crypto'] else '-':>12}  {load}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
