"""systemd: unit state from `systemctl show`, UNKNOWN without systemd, status + journal."""

from __future__ import annotations

import os
import subprocess

import pytest
from pydantic import ValidationError

from patrol.checks.base import CheckError, Status
from patrol.checks.schemas.systemd import SystemdConfig
from patrol.checks.systemd import PROPERTIES, parse_show
from tests.helpers import build, run

ACTIVE = """Id=nginx.service
LoadState=loaded
ActiveState=active
SubState=running
Result=success
Type=forking
NRestarts=2
ExecMainStartTimestampMonotonic=1000000000
ExecMainStatus=0
Description=A high performance web server and a reverse proxy server
"""
FAILED = """Id=postgresql@15-main.service
LoadState=loaded
ActiveState=failed
SubState=failed
Result=exit-code
Type=forking
NRestarts=0
ExecMainStartTimestampMonotonic=0
ExecMainStatus=1
Description=PostgreSQL Cluster 15-main
"""
INACTIVE = """Id=cron.service
LoadState=loaded
ActiveState=inactive
SubState=dead
Result=success
Type=simple
NRestarts=0
ExecMainStartTimestampMonotonic=0
ExecMainStatus=0
Description=Regular background program processing daemon
"""
ONESHOT = """Id=apt-daily.service
LoadState=loaded
ActiveState=inactive
SubState=dead
Result=success
Type=oneshot
NRestarts=0
ExecMainStartTimestampMonotonic=0
ExecMainStatus=0
Description=Daily apt download activities
"""
NOT_FOUND = """Id=nosuch.service
LoadState=not-found
ActiveState=inactive
SubState=dead
Result=success
Type=simple
NRestarts=0
ExecMainStartTimestampMonotonic=0
ExecMainStatus=0
Description=nosuch.service
"""
CRASH_LOOP = """Id=app.service
LoadState=loaded
ActiveState=activating
SubState=auto-restart
Result=exit-code
Type=simple
NRestarts=17
ExecMainStartTimestampMonotonic=0
ExecMainStatus=1
Description=App
"""


class Runner:
    """Records argv lists and answers from a table keyed by the first two words."""

    def __init__(self, answers: dict[str, tuple[int, str, str]]) -> None:
        self.answers = answers
        self.calls: list[tuple[list[str], float]] = []

    def __call__(self, argv, timeout):
        self.calls.append((list(argv), timeout))
        code, out, err = self.answers[" ".join(argv[:2])]
        return subprocess.CompletedProcess(list(argv), code, out, err)


def world(show: str, code: int = 0, err: str = "", **answers) -> dict:
    table = {"systemctl show": (code, show, err), **answers}
    return {"runner": Runner(table), "booted": lambda: True, "pid1": lambda: "systemd",
            "monotonic": lambda: 4600.0}


@pytest.mark.parametrize(
    ("unit", "show", "status", "summary", "active", "restarts"),
    [
        ("nginx", ACTIVE, Status.OK,
         "nginx.service is active (running) on testhost (restarted 2 times, up 1h)", 1, 2),
        ("postgresql@15-main.service", FAILED, Status.CRITICAL,
         "postgresql@15-main.service has failed on testhost; last result: exit-code", 0, 0),
        ("cron", INACTIVE, Status.CRITICAL,
         "cron.service is not running on testhost (inactive)", 0, 0),
        ("apt-daily", ONESHOT, Status.OK,
         "apt-daily.service ran successfully on testhost (oneshot, inactive)", 0, 0),
        ("nosuch", NOT_FOUND, Status.CRITICAL, "nosuch.service is not installed on testhost",
         0, 0),
        ("app", CRASH_LOOP, Status.CRITICAL,
         "app.service is restarting after a crash on testhost; last result: exit-code", 0, 17),
    ],
    ids=["active", "failed", "inactive", "oneshot-done", "not-found", "crash-loop"],
)
def test_unit_states(unit, show, status, summary, active, restarts):
    w = world(show)
    result = run("systemd", world=w, unit=unit)
    full = unit if "." in unit else f"{unit}.service"
    assert result.status is status
    assert result.summary == summary
    assert result.measurement("active", full) == active
    assert result.measurement("restarts", full) == restarts
    assert w["runner"].calls == [(
        ["systemctl", "show", f"--property={','.join(PROPERTIES)}", "--no-pager", "--", full],
        5.0,
    )]


def test_uptime_from_monotonic_start():
    result = run("systemd", world=world(ACTIVE), unit="nginx")
    assert result.measurement("uptime_seconds", "nginx.service") == 3600.0  # 4600 s - 1000 s


def test_several_units_one_call_and_worst_named():
    w = world(ACTIVE + "\n" + FAILED + "\n" + INACTIVE)
    result = run("systemd", world=w, units=["nginx", "postgresql@15-main", "cron"])
    assert result.status is Status.CRITICAL
    assert result.summary == ("postgresql@15-main.service has failed on testhost; "
                              "last result: exit-code (and 1 more unit not OK)")
    assert result.diagnostics["not_ok"] == ["postgresql@15-main.service", "cron.service"]
    assert len(w["runner"].calls) == 1


def test_all_units_active():
    result = run("systemd", world=world(ACTIVE + "\n" + ACTIVE.replace("nginx", "ssh")),
                 units=["nginx", "ssh"])
    assert result.status is Status.OK
    assert result.summary == "all 2 units are active on testhost"


def test_restart_threshold():
    result = run("systemd", world=world(ACTIVE), unit="nginx",
                 thresholds={"restarts": {"warning": 2}})
    assert result.status is Status.WARNING


def test_parse_show_keeps_equals_in_values():
    assert parse_show("Id=a.service\nDescription=x=y\n\nId=b.service\n") == [
        {"Id": "a.service", "Description": "x=y"}, {"Id": "b.service"}]


def test_systemctl_failure_is_unknown_with_its_message():
    w = world("", code=1, err="Failed to connect to bus: No such file or directory\n")
    with pytest.raises(CheckError, match=r"systemctl show failed \(exit 1\): Failed to connect "
                                         "to bus: No such file or directory"):
        run("systemd", world=w, unit="nginx")


def test_systemctl_timeout_is_unknown():
    def hang(argv, timeout):
        raise subprocess.TimeoutExpired(argv, timeout)

    with pytest.raises(CheckError, match="systemctl show did not answer within 5s"):
        run("systemd", world={**world(""), "runner": hang}, unit="nginx")


def test_without_systemd_is_unknown_with_reason():
    result = run("systemd", world={**world(ACTIVE), "booted": lambda: False,
                                   "pid1": lambda: "tini"}, units=["nginx", "cron"])
    assert result.status is Status.UNKNOWN
    assert result.summary == ("systemd is not running on testhost (PID 1 is tini); cannot "
                              "inspect units nginx.service, cron.service; run the agent on a "
                              "host booted with systemd, not inside a container, or leave this "
                              "check out here")


def test_diagnose_collects_status_and_journal_of_failed_units():
    journal = "\n".join(f"Jan 01 00:00:{i:02d} host postgres[1]: line {i}" for i in range(30))
    w = world(FAILED, **{"systemctl status": (3, "× postgresql@15-main.service - PG\n", ""),
                         "journalctl --no-pager": (0, journal, "")})
    check, ctx = build("systemd", world=w, unit="postgresql@15-main")
    found = check.diagnose(check.run(ctx))
    unit = found["units"]["postgresql@15-main.service"]
    assert unit == {"status": "× postgresql@15-main.service - PG\n", "journal": journal}
    assert [argv for argv, _ in w["runner"].calls[1:]] == [
        ["systemctl", "status", "--no-pager", "--lines=0", "--", "postgresql@15-main.service"],
        ["journalctl", "--no-pager", "-n", "30", "-u", "postgresql@15-main.service"],
    ]


def test_diagnose_truncates_long_output_keeping_the_end():
    w = world(FAILED, **{"systemctl status": (3, "x" * 5000 + "END", ""),
                         "journalctl --no-pager": (0, "", "")})
    check, ctx = build("systemd", world=w, unit="postgresql@15-main")
    status = check.diagnose(check.run(ctx))["units"]["postgresql@15-main.service"]["status"]
    assert len(status) == 4097 and status.startswith("…") and status.endswith("END")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "set exactly one of unit: (one unit) or units: (a list)"),
        ({"unit": "a", "units": ["b"]}, "set exactly one of unit:"),
        ({"unit": "nginx*"}, "'nginx*': globs are not supported; list each unit"),
        ({"units": ["--all"]}, "'--all' is not a systemd unit name, like nginx.service"),
        ({"unit": "a b"}, "'a b' is not a systemd unit name"),
    ],
    ids=["neither", "both", "glob", "option-injection", "space"],
)
def test_config_errors(options, message):
    with pytest.raises(ValidationError) as info:
        SystemdConfig.model_validate({"name": "s", "type": "systemd", **options})
    assert message in str(info.value)


@pytest.mark.skipif(os.path.isdir("/run/systemd/system"), reason="this host runs systemd")
def test_real_host_without_systemd_is_unknown():
    with open("/proc/1/comm", encoding="utf-8") as fh:
        pid1 = fh.read().strip()
    check, ctx = build("systemd", unit="nginx")
    result = check.run(ctx)
    assert result.status is Status.UNKNOWN
    assert result.summary == (f"systemd is not running on testhost (PID 1 is {pid1}); "
                              "cannot inspect unit nginx.service; run the agent on a host "
                              "booted with systemd, not inside a container, or leave this check "
                              "out here")
    assert check.diagnose(result) == {}


@pytest.mark.skipif(not os.path.isdir("/run/systemd/system"), reason="systemd is not PID 1")
def test_real_host_with_systemd_reads_journald():
    result = run("systemd", unit="systemd-journald")
    assert result.status is Status.OK
    assert result.measurement("active", "systemd-journald.service") == 1
