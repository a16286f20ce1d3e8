"""The log check against real files: appends, rotation, truncation, partial lines."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from patrol.checks.base import CheckError, Status
from patrol.checks.log_tail import LogTail
from tests.helpers import build


def append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "app.log"
    path.write_text("old ERROR that must not alert\nold info\n")
    return path


def test_first_run_starts_at_end_so_history_does_not_alert(log: Path) -> None:
    check, ctx = build("log", path=str(log), pattern="ERROR")
    result = check.run(ctx)
    assert result.status is Status.OK
    assert result.measurement("matches") == 0
    assert result.measurement("lines_read") == 0
    assert "started at the end of the file" in result.summary


def test_start_at_end_false_reads_history(log: Path) -> None:
    check, ctx = build("log", path=str(log), pattern="ERROR", start_at_end=False)
    result = check.run(ctx)
    assert result.measurement("matches") == 1
    assert result.measurement("lines_read") == 2
    assert result.status is Status.WARNING


def test_appended_matches_are_counted_exactly_and_listed(log: Path) -> None:
    check, ctx = build("log", path=str(log), pattern=r"ERROR|FATAL", ignore="harmless")
    check.run(ctx)
    append(log, "ERROR one\ninfo\nFATAL two\nERROR harmless retry\nERROR three\n")
    result = check.run(ctx)
    assert result.measurement("matches") == 3
    assert result.measurement("lines_read") == 5
    assert result.status is Status.WARNING
    assert result.diagnostics["match_count"] == 3
    assert result.diagnostics["matching_lines"] == ["ERROR one", "FATAL two", "ERROR three"]
    assert result.summary == (
        f"3 new lines matching 'ERROR|FATAL' in {log} on testhost: ERROR three"
    )
    quiet = check.run(ctx)
    assert quiet.measurement("matches") == 0
    assert quiet.status is Status.OK
    assert quiet.summary == (
        f"no new lines matching 'ERROR|FATAL' in {log} on testhost (0 lines read)")


def test_critical_threshold_from_config(log: Path) -> None:
    check, ctx = build("log", path=str(log), pattern="ERROR", critical=3)
    check.run(ctx)
    append(log, "ERROR\n" * 3)
    assert check.run(ctx).status is Status.CRITICAL


def test_diagnostics_keep_last_20_lines_truncated(log: Path) -> None:
    check, ctx = build("log", path=str(log), pattern="ERROR")
    check.run(ctx)
    append(log, "".join(f"ERROR {i} " + "x" * 600 + "\n" for i in range(25)))
    result = check.run(ctx)
    lines = result.diagnostics["matching_lines"]
    assert result.measurement("matches") == 25
    assert len(lines) == 20
    assert lines[0].startswith("ERROR 5 ")
    assert all(len(line) == 500 for line in lines)


def test_partial_line_is_counted_only_when_complete(log: Path) -> None:
    check, ctx = build("log", path=str(log), pattern="ERROR")
    check.run(ctx)
    append(log, "ERROR half")
    first = check.run(ctx)
    assert first.measurement("matches") == 0
    assert first.measurement("lines_read") == 0
    append(log, " and the rest\n")
    second = check.run(ctx)
    assert second.measurement("matches") == 1
    assert second.diagnostics["matching_lines"] == ["ERROR half and the rest"]


def test_rename_rotation_counts_every_line_once(log: Path) -> None:
    check, ctx = build("log", path=str(log), pattern="ERROR")
    check.run(ctx)
    append(log, "ERROR before run\n")
    assert check.run(ctx).measurement("matches") == 1
    # written to the old file after the previous run but before rotation
    append(log, "ERROR late in old file\n")
    os.rename(log, log.with_suffix(".log.1"))
    log.write_text("ERROR first in new file\ninfo\nERROR second in new file\n")
    result = check.run(ctx)
    assert result.measurement("matches") == 3
    assert result.diagnostics["matching_lines"] == [
        "ERROR late in old file", "ERROR first in new file", "ERROR second in new file",
    ]
    assert result.diagnostics["rotated"] is True
    assert "(rotated)" in result.summary
    append(log, "ERROR after rotation\n")
    after = check.run(ctx)
    assert after.measurement("matches") == 1
    assert "rotated" not in after.diagnostics


def test_rotated_away_and_not_yet_recreated_reads_old_file(log: Path) -> None:
    check, ctx = build("log", path=str(log), pattern="ERROR")
    check.run(ctx)
    append(log, "ERROR before rename\n")
    os.rename(log, log.with_suffix(".log.1"))
    assert check.run(ctx).measurement("matches") == 1
    log.write_text("ERROR new\n")
    assert check.run(ctx).measurement("matches") == 1


def test_copytruncate_restarts_at_zero(log: Path) -> None:
    check, ctx = build("log", path=str(log), pattern="ERROR")
    check.run(ctx)
    append(log, "ERROR a\n" * 4)
    assert check.run(ctx).measurement("matches") == 4
    with open(log, "r+") as fh:  # logrotate copytruncate: same inode, size 0
        fh.truncate(0)
    append(log, "ERROR after truncate\n")
    result = check.run(ctx)
    assert result.measurement("matches") == 1
    assert result.diagnostics["truncated"] is True


def test_missing_file_is_unknown_cannot_read(tmp_path: Path) -> None:
    check, ctx = build("log", path=str(tmp_path / "nope.log"), pattern="ERROR")
    with pytest.raises(CheckError, match=r"cannot read log file .*nope.log: it does not exist"):
        check.run(ctx)


def test_invalid_utf8_is_replaced_not_fatal(log: Path) -> None:
    check, ctx = build("log", path=str(log), pattern="ERROR")
    check.run(ctx)
    with open(log, "ab") as fh:
        fh.write(b"ERROR \xff\xfe bad bytes\n")
    result = check.run(ctx)
    assert result.diagnostics["matching_lines"] == ["ERROR \ufffd\ufffd bad bytes"]


def test_latin1_encoding(log: Path) -> None:
    check, ctx = build("log", path=str(log), pattern="Fehler: Größe", encoding="latin-1")
    check.run(ctx)
    with open(log, "ab") as fh:
        fh.write("Fehler: Größe\n".encode("latin-1"))
    assert check.run(ctx).measurement("matches") == 1


@pytest.mark.parametrize(
    ("max_read", "lines", "skipped"),
    [(100, 10, 400), (95, 9, 410)],
    ids=["limit-on-line-boundary", "limit-mid-line-drops-the-fragment"],
)
def test_read_limit_skips_oldest_and_reports(
    log: Path, max_read: int, lines: int, skipped: int
) -> None:
    check, ctx = build("log", path=str(log), pattern="ERROR", max_read=max_read)
    check.run(ctx)
    append(log, "".join(f"ERROR {i:03d}\n" for i in range(50)))  # 50 lines of 10 bytes
    result = check.run(ctx)
    assert result.measurement("lines_read") == lines
    assert result.diagnostics["matching_lines"][0] == f"ERROR {50 - lines:03d}"
    assert result.diagnostics["matching_lines"][-1] == "ERROR 049"
    assert result.diagnostics["skipped_bytes"] == skipped
    assert f"skipped {skipped} B over the read limit" in result.summary


def test_tail_offset_follows_bytes(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_bytes(b"abc\n")
    tail = LogTail(str(path), start_at_end=False)
    assert tail.read().lines == [b"abc"]
    assert tail.offset == 4


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pattern": "(unclosed"}, "'(unclosed' is not a valid regular expression"),
        ({"pattern": "ok", "ignore": "[z-a]"}, "'[z-a]' is not a valid regular expression"),
        ({"pattern": "ok", "encoding": "klingon"}, "unknown encoding 'klingon'"),
        ({"pattern": "ok", "encoding": "utf-16"}, "is not ASCII-compatible"),
    ],
    ids=["bad-pattern", "bad-ignore", "unknown-encoding", "utf16"],
)
def test_config_errors(tmp_path: Path, options: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace("[", r"\[")):
        build("log", path=str(tmp_path / "a.log"), **options)
