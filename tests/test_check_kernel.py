"""kernel: real lines written into this machine's kernel log, read back incrementally.

Lines this test writes into /dev/kmsg arrive with facility LOG_USER (the kernel
forces it on writes from userspace), so they count only with ``userspace: true``:
the shipped profiles, which leave it off, never see them.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from types import SimpleNamespace

import pytest

from patrol.checks.base import CheckError, Status
from tests.conftest import unavailable
from tests.helpers import build


def _write_kmsg(text: str) -> None:
    try:
        with open("/dev/kmsg", "w") as fh:
            fh.write(f"<3>{text}\n")
    except OSError as exc:
        unavailable(f"cannot write /dev/kmsg ({exc}); run the tests as root")


@pytest.mark.parametrize("source", ["kmsg", "dmesg", "auto"])
def test_new_kernel_lines_are_counted_once_since_the_last_run(source: str) -> None:
    if not os.access("/dev/kmsg", os.R_OK):
        unavailable("/dev/kmsg is not readable; run the tests as root")
    check, ctx = build("kernel", source=source, userspace=True)
    check.run(ctx)  # the baseline: whatever the log held before
    tag = secrets.token_hex(4)
    _write_kmsg(f"patrol-test-{tag}: EXT4-fs error (device ptest{tag}): bad block bitmap")
    _write_kmsg(f"patrol-test-{tag}: Out of memory: Killed process 4242 (patrol-test)")
    result = check.run(ctx)
    assert result.status is Status.CRITICAL
    assert result.measurement("filesystem_errors") == 1
    assert result.measurement("oom_kills") == 1
    assert result.summary == ("Kernel log of testhost shows 1 OOM kill, 1 filesystem error "
                              "since the last run (filesystem errors: critical at 1)")
    lines = [d["line"] for d in result.diagnostics["lines"]]
    assert any(f"device ptest{tag}" in line for line in lines)
    again = check.run(ctx)
    assert again.status is Status.OK
    assert again.summary.startswith("No kernel problems in the log of testhost since the last run")


def test_lines_written_by_programs_do_not_count_by_default() -> None:
    if not os.access("/dev/kmsg", os.R_OK):
        unavailable("/dev/kmsg is not readable; run the tests as root")
    check, ctx = build("kernel", source="kmsg")
    check.run(ctx)
    _write_kmsg(f"patrol-test-{secrets.token_hex(4)}: Buffer I/O error on dev ptest0")
    result = check.run(ctx)
    assert result.measurement("io_errors") == 0
    assert result.status is Status.OK


# systemd.journal-fields(7) and the JSON format of journalctl(1)'s -o json: one object
# per line; MESSAGE as an array of bytes when it is not valid UTF-8.
JOURNAL_FIRST = (
    '{"__CURSOR":"s=1;i=10","__MONOTONIC_TIMESTAMP":"7200000000","SYSLOG_FACILITY":"0",'
    '"_TRANSPORT":"kernel","MESSAGE":"INFO: task kworker/0:1:77 blocked for more than '
    '122 seconds."}\n'
    '{"__CURSOR":"s=1;i=11","__MONOTONIC_TIMESTAMP":"7201000000","SYSLOG_FACILITY":"0",'
    '"_TRANSPORT":"kernel","MESSAGE":[69,88,84,52,45,102,115,32,101,114,114,111,114,255]}\n'
)
JOURNAL_LATER = (
    '{"__CURSOR":"s=1;i=12","__MONOTONIC_TIMESTAMP":"7300000000","SYSLOG_FACILITY":"0",'
    '"_TRANSPORT":"kernel","MESSAGE":"blk_update_request: I/O error, dev sdb, sector 2048"}\n'
)


def test_journal_source_follows_its_cursor() -> None:
    calls: list[list[str]] = []
    outputs = iter([JOURNAL_FIRST, JOURNAL_LATER])

    def run(argv, timeout):
        calls.append(list(argv))
        return SimpleNamespace(returncode=0, stdout=next(outputs), stderr="")

    from patrol.checks import kernel_log

    readers = {"journal": kernel_log.journal_reader(run, 5.0, lambda: 1_700_000_000.0)}
    check, ctx = build("kernel", source="journal",
                       world={"readers": readers, "uptime": lambda: 7400.0})
    first = check.run(ctx)
    assert calls[0][-2:] == ["--since", "@1700000000"]
    assert first.measurement("hung_tasks") == 1
    assert first.measurement("filesystem_errors") == 1  # the undecodable byte is replaced
    assert first.status is Status.CRITICAL
    assert first.summary.endswith("in the last 1h (filesystem errors: critical at 1)")
    second = check.run(ctx)
    assert calls[1][-2:] == ["--after-cursor", "s=1;i=11"]
    assert second.measurement("io_errors") == 1 and second.measurement("hung_tasks") == 0
    assert second.status is Status.WARNING


def test_no_readable_source_is_unknown_and_says_how_to_enable_one() -> None:
    def denied(cursor):
        raise PermissionError(1, "Operation not permitted")

    check, ctx = build("kernel", world={"readers": {"kmsg": denied, "journal": denied,
                                                    "dmesg": denied},
                                        "kmsg_path": "/dev/kmsg",
                                        "journal_has_data": lambda: True})
    with pytest.raises(CheckError) as info:
        check.run(ctx)
    message = str(info.value)
    assert "Operation not permitted" in message
    assert "CAP_SYSLOG" in message and "systemd-journal" in message
    assert "dmesg_restrict" in message


def test_ignore_rejects_a_broken_regex_and_drops_matching_lines() -> None:
    with pytest.raises(Exception, match="not a valid regular expression"):
        build("kernel", ignore=["(unclosed"])
    lines = [SimpleNamespace(seconds=10.0, facility=0, text="Buffer I/O error on dev loop7")]
    check, ctx = build("kernel", ignore=[r"dev loop\d+"], source="dmesg",
                       world={"readers": {"dmesg": lambda c: (lines, 10.0)},
                              "uptime": lambda: 20.0})
    assert check.run(ctx).measurement("io_errors") == 0


def test_dmesg_raw_format_is_parsed() -> None:
    from patrol.checks.kernel_log import parse_dmesg_raw

    done = subprocess.run(["dmesg", "-r"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        unavailable(f"dmesg -r failed here: {done.stderr.strip()}")
    lines = parse_dmesg_raw(done.stdout)
    assert lines and all(line.seconds >= 0 for line in lines)
    assert any(line.facility == 0 for line in lines)
