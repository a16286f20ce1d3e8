"""The nagios check with real plugins from monitoring-plugins, real sockets and
real processes; the perfdata parser against the guidelines' tricky cases."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from pydantic import ValidationError

from patrol.checks.base import CheckError, Status
from patrol.checks.perfdata import PerfDatum, measurement_name, parse_output, parse_perfdata
from tests.conftest import free_port, require_command
from tests.helpers import build, run

PLUGINS = "/usr/lib/nagios/plugins"


def plugin(name: str) -> str:
    return require_command(f"{PLUGINS}/{name}", "monitoring-plugins")


# --- perfdata parser -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "label", "value", "uom", "name"),
    [
        ("time=0.000403s;;;0.000000;10.000000", "time", 0.000403, "s", "time_seconds"),
        ("load1=0.790;5.000;10.000;0;", "load1", 0.79, "", "load1"),
        ("rta=250ms;100;500", "rta", 0.25, "ms", "rta_seconds"),
        ("jitter=50us", "jitter", 50e-6, "us", "jitter_seconds"),
        ("pct=85%;80;90;0;100", "pct", 0.85, "%", "pct_ratio"),
        ("'/ home'=12MB;;;0;100", "/ home", 12 * 1024**2, "MB", "home_bytes"),
        ("/=24148705280B;243497277849", "/", 24148705280.0, "B", "root_bytes"),
        ("swap=2KB", "swap", 2048.0, "KB", "swap_bytes"),
        ("'it''s'=1", "it's", 1.0, "", "it_s"),
        ("packets=123c", "packets", 123.0, "c", "packets_total"),
        ("temp=-5.5", "temp", -5.5, "", "temp"),
        ("'Time Seconds'=2s", "Time Seconds", 2.0, "s", "time_seconds"),
        ("5min=1", "5min", 1.0, "", "perf_5min"),
        ("rx=1.5GiB", "rx", 1.5 * 1024**3, "GiB", "rx_bytes"),
    ],
    ids=lambda v: v if isinstance(v, str) and "=" in v else None,
)
def test_perfdata_items(text: str, label: str, value: float, uom: str, name: str) -> None:
    items, errors = parse_perfdata(text)
    assert errors == []
    [item] = items
    assert (item.label, item.uom) == (label, uom)
    assert item.value == pytest.approx(value)
    assert measurement_name(item) == name


def test_perfdata_min_max_in_base_units() -> None:
    [item], _ = parse_perfdata("pct=85%;80;90;0;100")
    assert (item.warn, item.crit, item.minimum, item.maximum) == ("80", "90", 0.0, 1.0)


def test_perfdata_undetermined_value_and_garbage() -> None:
    items, errors = parse_perfdata("a=U;;; junk b=1,5 c=2")
    assert [(i.label, i.value) for i in items] == [("a", None), ("c", 2.0)]
    assert errors == ["junk: not label=value", "b=1,5: value '1,5' is not a number"]


def test_output_with_perfdata_on_long_output_lines() -> None:
    out = parse_output(
        "DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n"
        "/ 15272 MB (77%);\n"
        "/boot 68 MB (69%);\n"
        "/home 69357 MB (27%);\n"
        "/var/log 819 MB (84%); | /boot=68MB;88;93;0;98\n"
        "/home=69357MB;253404;253409;0;253414\n"
        "/var/log=818MB;970;975;0;980\n"
    )
    assert out.summary == "DISK OK - free space: / 3326 MB (56%);"
    assert out.long_output == (
        "/ 15272 MB (77%);\n/boot 68 MB (69%);\n/home 69357 MB (27%);\n/var/log 819 MB (84%);"
    )
    assert [measurement_name(d) for d in out.perfdata] == [
        "root_bytes", "boot_bytes", "home_bytes", "var_log_bytes",
    ]
    assert out.perfdata[3].value == 818 * 1024**2


def test_unknown_unit_is_kept_as_plain_number() -> None:
    [item], _ = parse_perfdata("rpm=1200RPM")
    assert item.value == 1200.0
    assert measurement_name(item) == "rpm"
    assert isinstance(item, PerfDatum)


# --- config ---------------------------------------------------------------------


def test_shell_string_command_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        build("nagios", command="/usr/lib/nagios/plugins/check_load -w 5,4,3")
    assert (
        "must be a list of arguments (argv), not a shell string; write e.g. "
        "['/usr/lib/nagios/plugins/check_load', '-w', '5,4,3', '-c', '10,8,6']"
    ) in str(info.value)


def test_empty_command_is_rejected() -> None:
    with pytest.raises(ValidationError, match="at least 1 item"):
        build("nagios", command=[])


def test_plugin_status_is_authoritative_and_thresholds_are_rejected() -> None:
    from patrol.checks.thresholds import problems

    check, _ = build("nagios", command=["true"], warning=5)
    message = (
        "type 'nagios' has no primary measurement to threshold; "
        "use thresholds: with one of none"
    )
    assert problems(check.config, type(check).MEASUREMENTS) == [(("warning",), message)]


# --- real plugins ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "summary"),
    [
        ("0", Status.OK, "OK: all good on testhost"),
        ("1", Status.WARNING, "WARNING: all good on testhost"),
        ("2", Status.CRITICAL, "CRITICAL: all good on testhost"),
        ("3", Status.UNKNOWN, "UNKNOWN: all good on testhost"),
    ],
    ids=["ok", "warning", "critical", "unknown"],
)
def test_check_dummy_exit_codes(code: str, status: Status, summary: str) -> None:
    result = run("nagios", command=[plugin("check_dummy"), code, "all good"])
    assert result.status is status
    assert result.summary == summary
    assert result.diagnostics["exit_code"] == int(code)
    assert result.measurements == ()


def test_check_load_perfdata_becomes_measurements() -> None:
    result = run("nagios", command=[plugin("check_load"), "-w", "500,400,300",
                                    "-c", "1000,800,600"])
    assert result.status is Status.OK
    assert result.summary.startswith("LOAD OK - total load average: ")
    assert result.summary.endswith(" on testhost")
    assert [m.name for m in result.measurements] == ["load1", "load5", "load15"]
    assert all(m.value >= 0 for m in result.measurements)
    assert [d["warn"] for d in result.diagnostics["perfdata"]] == ["500.000", "400.000", "300.000"]


def test_check_disk_bytes_match_the_filesystem() -> None:
    result = run("nagios", command=[plugin("check_disk"), "-w", "1%", "-c", "1%", "-p", "/"])
    usage = shutil.disk_usage("/")
    assert result.status is Status.OK
    assert result.measurement("root_bytes") == pytest.approx(usage.used, rel=0.01)
    assert result.diagnostics["perfdata"][0]["max"] == pytest.approx(usage.total, rel=0.001)


@pytest.mark.slow
def test_check_tcp_open_port_is_ok_with_time() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        result = run("nagios", command=[plugin("check_tcp"), "-H", "127.0.0.1", "-p", str(port)])
    assert result.status is Status.OK
    assert result.summary.startswith("TCP OK - ")
    assert f"port {port} on testhost" in result.summary
    assert 0 <= result.measurement("time_seconds") < 1


@pytest.mark.slow
def test_check_tcp_closed_port_is_critical() -> None:
    port = free_port()
    result = run("nagios", command=[plugin("check_tcp"), "-H", "127.0.0.1", "-p", str(port)])
    assert result.status is Status.CRITICAL
    assert result.summary == (
        f"connect to address 127.0.0.1 and port {port}: Connection refused on testhost"
    )


# --- process handling -------------------------------------------------------------


def gone(pid: int, within: float = 0.5) -> bool:
    """Dead (or a zombie nobody reaps yet) within ``within`` seconds: SIGKILL to a
    process group is delivered asynchronously to the members we did not wait for."""
    deadline = time.monotonic() + within
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)


@pytest.mark.slow
def test_hanging_plugin_and_its_children_are_killed(tmp_path: Path) -> None:
    started: list[subprocess.Popen[bytes]] = []

    def popen(*args, **kwargs):
        started.append(subprocess.Popen(*args, **kwargs))
        return started[-1]

    pidfile = tmp_path / "child.pid"
    command = ["sh", "-c", f"sleep 30 & echo $! > {pidfile}; wait"]
    check, ctx = build("nagios", world={"popen": popen}, command=command, timeout="1s")
    begin = time.monotonic()
    with pytest.raises(CheckError, match=r"^plugin sh timed out after 1s$"):
        check.run(ctx)
    assert time.monotonic() - begin < 2.5
    assert gone(started[0].pid)
    assert gone(int(pidfile.read_text()))


def test_missing_executable_is_unknown(tmp_path: Path) -> None:
    with pytest.raises(CheckError, match=r"cannot execute .*/check_nope: No such file"):
        run("nagios", command=[str(tmp_path / "check_nope")])


def test_non_executable_file_is_unknown(tmp_path: Path) -> None:
    script = tmp_path / "check_plain"
    script.write_text("#!/bin/sh\necho OK\n")
    with pytest.raises(CheckError, match=r"cannot execute .*/check_plain: Permission denied"):
        run("nagios", command=[str(script)])


@pytest.mark.parametrize(
    ("script", "summary"),
    [
        ("echo boom; exit 42", "sh exited with code 42: boom on testhost"),
        ("echo on stderr >&2; exit 5", "sh exited with code 5: on stderr on testhost"),
        ("kill -9 $$", "sh was killed by signal 9 on testhost"),
        ("exit 0", "sh exited 0 (OK) with no output on testhost"),
    ],
    ids=["code-42", "code-5-stderr", "signal", "no-output"],
)
def test_unusual_exits(script: str, summary: str) -> None:
    result = run("nagios", command=["sh", "-c", script])
    assert result.summary == summary
    assert result.status is (Status.OK if script == "exit 0" else Status.UNKNOWN)


def test_long_output_stderr_env_and_cwd(tmp_path: Path) -> None:
    script = (
        'echo "OK - $GREETING from $(pwd) in $LC_ALL | a=1s"; echo "detail one"; '
        'echo "detail two | b=50%"; echo "warned" >&2'
    )
    result = run("nagios", command=["sh", "-c", script], env={"GREETING": "hi"},
                 cwd=str(tmp_path))
    assert result.summary == f"OK - hi from {tmp_path} in C on testhost"
    assert result.diagnostics["long_output"] == "detail one\ndetail two"
    assert result.diagnostics["stderr"] == "warned\n"
    assert result.measurement("a_seconds") == 1.0
    assert result.measurement("b_ratio") == 0.5


def test_env_values_are_secrets_in_config() -> None:
    check, _ = build("nagios", command=["true"], env={"PGPASSWORD": "hunter2"})
    assert "hunter2" not in repr(check.config)
    assert check.config.model_dump()["env"] == {"PGPASSWORD": "***"}


def test_duplicate_labels_get_numbered() -> None:
    result = run("nagios", command=["sh", "-c", "echo 'OK | x=1 X=2 x=3'"])
    assert [(m.name, m.value) for m in result.measurements] == [
        ("x", 1.0), ("x_2", 2.0), ("x_3", 3.0),
    ]


def test_long_output_is_truncated() -> None:
    result = run("nagios", command=["sh", "-c", "echo OK; yes line | head -c 20000"])
    assert result.diagnostics["long_output"].startswith("line\nline\n")
    # 4000 lines of "line" joined by newlines = 19999 chars, 4096 kept
    assert result.diagnostics["long_output"].endswith("... [15903 more chars]")
