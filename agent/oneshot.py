"""``patrol check``: run the configured checks once, now, and report.

For an operator at a terminal ("is this host healthy right now?") and for cron or
another monitor (the exit code is the worst status, Nagios style). Checks run in
parallel, each bounded by its timeout; while slow ones run, a progress line says
which are still pending.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TextIO

from patrol.agent.config import AgentConfig
from patrol.agent.runner import CheckRunner
from patrol.checks.base import Result, Status
from patrol.contract.units import format_duration

PROGRESS_AFTER = 0.5  # seconds before the first progress line


@dataclass
class Outcome:
    runner: CheckRunner
    result: Result
    duration: float
    diagnostics: dict[str, Any] = field(default_factory=dict)


def run_all(
    config: AgentConfig,
    names: list[str] | None = None,
    progress: TextIO | None = None,
    diagnose: bool = False,
) -> list[Outcome]:
    """Run every (or the named) check once, in config order."""
    settings = config.agent
    selected = [c for c in config.checks if not names or c.config.name in names]
    policy = config.policy()
    runners = [CheckRunner(c.config, c.cls, settings.hostname, settings.timeout,
                           unavailable=c.missing_driver, policy=policy) for c in selected]
    if not runners:
        return []
    done = threading.Event()
    with ThreadPoolExecutor(max_workers=min(settings.workers, len(runners))) as pool:
        futures = {r.config.name: pool.submit(r.run) for r in runners}
        reporter = None
        if progress is not None:
            reporter = threading.Thread(target=_report_progress,
                                        args=(futures, progress, done), daemon=True)
            reporter.start()
        outcomes = [Outcome(r, *futures[r.config.name].result()) for r in runners]
        done.set()
        if reporter is not None:
            reporter.join()
    if diagnose:
        from patrol.agent.diagnostics import capture

        budget = settings.diagnostics
        for outcome in outcomes:
            if outcome.result.status is not Status.OK and outcome.runner.config.diagnostics:
                outcome.diagnostics = capture(
                    outcome.runner.instance, outcome.result,
                    extras=outcome.runner.diagnostics_extras,
                    time_budget=budget.time_budget, size_budget=int(budget.size_budget),
                    secrets=config.secrets(), names=settings.secret_names)
    return outcomes


def _report_progress(futures: dict[str, Future], out: TextIO, done: threading.Event) -> None:
    start = time.monotonic()
    tty = out.isatty()
    if done.wait(PROGRESS_AFTER):
        return
    last = ""
    while True:
        pending = [name for name, f in futures.items() if not f.done()]
        if not pending or done.is_set():
            break
        line = (f"running {len(futures) - len(pending)}/{len(futures)} done; waiting for "
                f"{', '.join(pending[:4])}{' ...' if len(pending) > 4 else ''} "
                f"({time.monotonic() - start:.1f}s)")
        if tty:
            out.write("\r\033[K" + line)
        elif line.split(" (")[0] != last:
            out.write(line + "\n")
            last = line.split(" (")[0]
        out.flush()
        if done.wait(0.25 if tty else 1.0):
            break
    if tty:
        out.write("\r\033[K")
        out.flush()


def worst(outcomes: list[Outcome]) -> Status:
    return Status.worst(*(o.result.status for o in outcomes))


_COLOURS = {Status.OK: "32", Status.WARNING: "33", Status.CRITICAL: "31", Status.UNKNOWN: "35"}


def table(outcomes: list[Outcome], colour: bool = False) -> str:
    """A fixed-width table: STATUS NAME SUMMARY DURATION."""
    width = max([len("NAME")] + [len(o.runner.config.name) for o in outcomes])
    lines = [f"{'STATUS':<8}  {'NAME':<{width}}  {'DURATION':>8}  SUMMARY"]
    for o in outcomes:
        status = o.result.status
        label = f"{status.name:<8}"
        if colour:
            label = f"\033[{_COLOURS[status]}m{label}\033[0m"
        lines.append(f"{label}  {o.runner.config.name:<{width}}  "
                     f"{format_duration(o.duration):>8}  {o.result.summary}")
    counts = {s: sum(o.result.status is s for o in outcomes) for s in Status}
    lines.append("")
    lines.append(", ".join(f"{n} {s.name.lower()}" for s, n in counts.items() if n)
                 + f"; worst: {worst(outcomes).name}")
    return "\n".join(lines)


def as_json(config: AgentConfig, outcomes: list[Outcome]) -> str:
    settings = config.agent
    return json.dumps({
        "host": settings.hostname,
        "labels": dict(settings.labels),
        "worst": worst(outcomes).name,
        "checks": [
            {"name": o.runner.config.name, "type": o.runner.config.type,
             "duration_seconds": round(o.duration, 6), **o.result.as_dict(),
             "breach_diagnostics": o.diagnostics}
            for o in outcomes
        ],
    }, indent=2, default=str)


def main(config: AgentConfig, names: list[str] | None, as_json_output: bool,
         out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    outcomes = run_all(config, names, progress=err, diagnose=as_json_output)
    if as_json_output:
        out.write(as_json(config, outcomes) + "\n")
    else:
        out.write(table(outcomes, colour=out.isatty()) + "\n")
    return int(worst(outcomes))
