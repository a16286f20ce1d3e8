"""process: presence, count between min and max, RSS and CPU of matching processes."""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import subprocess
import sys
import uuid
from collections import namedtuple

import psutil
import pytest
from pydantic import ValidationError

from patrol.checks.base import Status
from patrol.checks.process import ProcessCheck
from patrol.checks.schemas.process import ProcessConfig
from tests.helpers import build, run

MiB = 1024**2
Mem = namedtuple("Mem", "rss vms")
Cpu = namedtuple("Cpu", "user system")


class FakeProc:
    """psutil.Process as process_iter yields it: ``info`` holds the attributes asked
    for; ``as_dict`` reads more (and counts how often it was asked to)."""

    details_read = 0

    def __init__(self, full, attrs=None):
        self.full = full
        self.info = {k: v for k, v in full.items() if attrs is None or k in attrs}

    def oneshot(self):
        return contextlib.nullcontext()

    def as_dict(self, attrs, ad_value=None):
        FakeProc.details_read += 1
        return {k: self.full[k] for k in attrs}


def proc(pid, name, cmdline, user="www-data", rss_mib=10, cpu=(1.0, 0.5), status="sleeping",
         created=1000.0):
    return FakeProc({
        "pid": pid, "name": name, "cmdline": cmdline, "username": user,
        "memory_info": Mem(rss_mib * MiB, 0), "cpu_times": Cpu(*cpu),
        "create_time": created, "status": status,
    })


TABLE = [
    proc(100, "nginx", ["nginx: master process /usr/sbin/nginx"], user="root"),
    proc(101, "nginx", ["nginx: worker process"], rss_mib=20),
    proc(102, "nginx", ["nginx: worker process"], rss_mib=30),
    proc(200, "python3", ["/usr/bin/python3", "/opt/app/worker.py", "--queue", "mail"]),
    proc(201, "python3", ["/usr/bin/python3", "/opt/app/worker.py", "--queue", "mail"],
         status=psutil.STATUS_ZOMBIE),
    proc(300, "kworker/0:1", [], user="root"),
    proc(999, "patrol", ["/usr/bin/patrol", "check", "--pattern", "worker.py"], user="root"),
]


def world(table=TABLE, **extra) -> dict:
    def process_iter(attrs=None, ad_value=None):
        assert "cmdline" in attrs and ad_value is None
        return iter([type(p)(p.full, attrs) for p in table])

    return {"process_iter": process_iter, "self_pid": 999, **extra}


@pytest.mark.parametrize(
    ("options", "count", "rss_mib", "status", "summary"),
    [
        ({"process_name": "nginx"}, 3, 60, Status.OK,
         "3 processes matching 'nginx' on testhost using 60.0 MiB RSS"),
        ({"process_name": "nginx", "user": "www-data"}, 2, 50, Status.OK,
         "2 processes matching 'nginx' owned by www-data on testhost using 50.0 MiB RSS"),
        ({"pattern": r"worker\.py --queue mail"}, 1, 10, Status.OK,
         "1 process matching 'worker\\.py --queue mail' on testhost using 10.0 MiB RSS"),
        ({"pattern": "^kworker/"}, 1, 10, Status.OK,
         "1 process matching '^kworker/' on testhost using 10.0 MiB RSS"),
        ({"process_name": "postgres"}, 0, 0, Status.CRITICAL,
         "no process matching 'postgres' on testhost"),
        ({"process_name": "nginx", "min": 4}, 3, 60, Status.CRITICAL,
         "only 3 processes matching 'nginx' on testhost (expected at least 4)"),
        ({"process_name": "nginx", "max": 2}, 3, 60, Status.CRITICAL,
         "3 processes matching 'nginx' on testhost (expected at most 2)"),
        ({"process_name": "postgres", "min": 0, "max": 0}, 0, 0, Status.OK,
         "0 processes matching 'postgres' on testhost"),
        ({"process_name": "nginx", "warning": 3}, 3, 60, Status.WARNING,
         "3 processes matching 'nginx' on testhost (warning at 3) using 60.0 MiB RSS"),
    ],
    ids=["by-name", "by-name-and-user", "by-pattern-zombie-and-self-excluded",
         "kernel-thread-matched-on-name", "absent-is-critical", "below-min", "above-max",
         "must-not-run", "too-many-threshold"],
)
def test_matching_and_counting(options, count, rss_mib, status, summary):
    result = run("process", world=world(), **options)
    assert result.status is status
    assert result.summary == summary
    assert result.measurement("count") == count
    assert result.measurement("rss_bytes") == rss_mib * MiB
    assert len(result.diagnostics["processes"]) == count


def test_cpu_ratio_since_previous_run():
    first = [proc(101, "nginx", ["nginx"], cpu=(10.0, 2.0)), proc(102, "nginx", ["nginx"])]
    second = [proc(101, "nginx", ["nginx"], cpu=(14.0, 3.0)),  # 5 s of CPU in 10 s
              proc(103, "nginx", ["nginx"], cpu=(50.0, 0.0))]  # new: no baseline
    tables, clock = iter([first, second]), iter([100.0, 110.0])
    check, ctx = build("process", process_name="nginx", world={
        "process_iter": lambda attrs, ad_value: iter(next(tables)), "clock": lambda: next(clock)})
    assert check.run(ctx).measurement("cpu_ratio") is None
    result = check.run(ctx)
    assert result.measurement("cpu_ratio") == 0.5
    assert result.summary == ("2 processes matching 'nginx' on testhost using 20.0 MiB RSS "
                              "and 50% CPU")


def test_recycled_pid_is_a_new_process():
    first = [proc(101, "nginx", ["nginx"], cpu=(10.0, 0.0), created=1.0)]
    second = [proc(101, "nginx", ["nginx"], cpu=(12.0, 0.0), created=2.0)]
    tables, clock = iter([first, second]), iter([0.0, 10.0])
    check, ctx = build("process", process_name="nginx", world={
        "process_iter": lambda attrs, ad_value: iter(next(tables)), "clock": lambda: next(clock)})
    check.run(ctx)
    assert check.run(ctx).measurement("cpu_ratio") == 0.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, ("set exactly one of process_name: (the exact process name, like pgrep -x) "
             "or pattern: (a regular expression on the command line, like pgrep -f)")),
        ({"process_name": "a", "pattern": "b"}, "set exactly one of process_name:"),
        ({"pattern": "([a-z"},
         "'([a-z' is not a valid regular expression: unterminated character set at position 1; "
         "Python re syntax, e.g. 'ERROR|FATAL' or '\\bOOM\\b'"),
        ({"process_name": "a", "min": 3, "max": 2}, "max: 2 is below min: 3; no count can pass"),
    ],
    ids=["neither", "both", "bad-regex", "max-below-min"],
)
def test_config_errors(options, message):
    with pytest.raises(ValidationError) as info:
        ProcessConfig.model_validate({"name": "p", "type": "process", **options})
    assert message in str(info.value)


def test_declares_top_processes_diagnostics():
    assert ProcessCheck.DIAGNOSTICS == ("top_processes",)


@pytest.fixture
def sleeper():
    marker = f"patrol-test-{uuid.uuid4().hex}"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", marker])
    try:
        yield child, marker
    finally:
        child.kill()
        child.wait()


@pytest.mark.slow
def test_real_process_found_by_pattern(sleeper):
    child, marker = sleeper
    user = getpass.getuser()
    result = run("process", pattern=marker, user=user)
    assert result.status is Status.OK
    assert result.measurement("count") == 1
    assert result.measurement("rss_bytes") > 0
    assert [p["pid"] for p in result.diagnostics["processes"]] == [child.pid]
    assert result.summary.startswith(
        f"1 process matching '{marker}' owned by {user} on testhost using ")


@pytest.mark.slow
def test_real_process_found_by_name(sleeper):
    child, _ = sleeper
    name = psutil.Process(child.pid).name()
    result = run("process", process_name=name)
    assert child.pid in [p["pid"] for p in result.diagnostics["processes"]]


def test_real_absent_process_is_critical():
    marker = f"patrol-absent-{uuid.uuid4().hex}"
    result = run("process", pattern=marker)
    assert result.status is Status.CRITICAL
    assert result.summary == f"no process matching '{marker}' on testhost"
    assert result.measurement("count") == 0


def test_real_agent_never_matches_itself():
    own = " ".join(psutil.Process().cmdline())
    result = run("process", pattern=re.escape(own), min=0)
    assert os.getpid() not in [p["pid"] for p in result.diagnostics["processes"]]


@pytest.mark.parametrize(
    ("options", "selecting", "details", "count"),
    [
        ({"process_name": "nginx"}, {"pid", "name", "cmdline"}, 3, 3),
        ({"process_name": "nginx", "user": "www-data"}, {"pid", "name", "cmdline", "username"},
         2, 2),
        ({"pattern": r"worker\.py"}, {"pid", "name", "cmdline"}, 2, 1),  # one is a zombie
    ],
    ids=["by-name", "with-user", "by-pattern"],
)
def test_only_matching_processes_have_their_details_read(options, selecting, details, count):
    asked = []

    def process_iter(attrs=None, ad_value=None):
        asked.append(set(attrs))
        return iter([FakeProc(p.full, attrs) for p in TABLE])

    FakeProc.details_read = 0
    result = run("process", world={"process_iter": process_iter, "self_pid": 999}, **options)
    assert asked == [selecting]
    assert FakeProc.details_read == details
    assert result.measurement("count") == count


def test_a_process_that_exits_during_the_walk_is_left_out():
    class Gone(FakeProc):
        def as_dict(self, attrs, ad_value=None):
            raise psutil.NoSuchProcess(self.full["pid"])

    table = [Gone(TABLE[0].full), *TABLE[1:]]
    result = run("process", world=world(table), process_name="nginx")
    assert result.measurement("count") == 2
    assert [p["pid"] for p in result.diagnostics["processes"]] == [101, 102]
