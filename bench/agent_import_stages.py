#!/usr/bin/env python3
"""Where the agent's memory goes: PSS after each stage of its imports, in one fresh
interpreter, and what validating the config in a child costs.

``python bench/agent_import_stages.py [CONFIG]`` (default: configs/agent.yaml without
``include``). Stages, in the order the agent meets them: the interpreter, the standard
library it needs, yaml, psutil, prometheus_client, the agent's runtime modules, the
config (validated in ``patrol.agent.validate_child``, received as plain data), the
check modules that config names, a first run of every check. Then, for comparison, what
validating in-process would add: pydantic, the check models, ``load_config``.
Each figure is printed with the load average beside it; nothing is asserted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

STAGES = r'''
import os, sys, time
def pss():
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
last = pss()
def stage(name):
    global last
    now = pss()
    print(f"{name:<44} {now:7.1f} MiB  {now - last:+6.1f}   load {os.getloadavg()[0]:.2f}")
    last = now
stage("interpreter")
import logging, threading, json, sqlite3, http.server, socketserver, ssl, gzip, uuid
import subprocess, pickle, zoneinfo, concurrent.futures, dataclasses, difflib
stage("stdlib the agent needs")
import yaml
stage("yaml")
import psutil
stage("psutil")
import prometheus_client
stage("prometheus_client")
from patrol.agent.agent import Agent
from patrol.agent.server import AgentServer
from patrol.agent.exposition import build_registry
from patrol.agent.validation import InChild
stage("patrol agent runtime modules")
path = sys.argv[1]
t0, c0 = time.perf_counter(), os.times()
config = InChild().load(path)
t1, c1 = time.perf_counter(), os.times()
stage("config from the validating child")
agent = Agent(path, config)
stage("check modules + runners (Agent built)")
for runner in agent.runners.values():
    runner.run()
stage("a first run of every check")
print(f"validation child: {t1 - t0:.3f} s wall, "
      f"{(c1.children_user + c1.children_system) - (c0.children_user + c0.children_system):.3f}"
      " s CPU in the child")
if "--in-process" in sys.argv:
    import pydantic
    stage("(in-process instead) pydantic")
    import patrol.checks.config
    stage("(in-process) patrol.checks.config")
    from patrol.agent.config import load_config
    t0 = time.perf_counter()
    load_config(path)
    stage("(in-process) load_config: the check models")
    print(f"in-process load_config: {time.perf_counter() - t0:.3f} s")
print("pydantic imported:", any(m.split(".")[0] == "pydantic" for m in sys.modules))
'''


def main() -> int:
    args = sys.argv[1:]
    with tempfile.TemporaryDirectory() as scratch:
        if args and not args[0].startswith("--"):
            config = args.pop(0)
        else:
            profile = yaml.safe_load((ROOT / "configs" / "agent.yaml").read_text())
            profile.pop("include", None)
            profile["agent"]["state_dir"] = str(Path(scratch) / "state")
            config = str(Path(scratch) / "agent.yaml")
            Path(config).write_text(yaml.safe_dump(profile))
        print(f"agent import stages, {config}, load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        done = subprocess.run([sys.executable, "-c", STAGES, config, *args], cwd=ROOT,
                              env={**os.environ, "PATROL_TOKEN": ""})
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
