"""The file check against real files with set mtimes and an injected clock."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from patrol.checks.base import CheckError, Status
from tests.helpers import build

NOW = 1_700_000_000.0
HOUR = 3600.0


def make(path: Path, size: int, age: float) -> Path:
    path.write_bytes(b"x" * size)
    os.utime(path, (NOW - age, NOW - age))
    return path


def check_file(path: str | Path, **options: object):
    check, ctx = build("file", world={"clock": lambda: NOW}, path=str(path), **options)
    return check.run(ctx)


def test_exact_age_and_size(tmp_path: Path) -> None:
    path = make(tmp_path / "db.dump", 2048, 5 * HOUR)
    result = check_file(path)
    assert result.status is Status.OK
    assert result.measurement("age_seconds") == 5 * HOUR
    assert result.measurement("size_bytes") == 2048
    assert result.measurement("exists") == 1
    assert result.summary == f"{path} is 5h old, 2.0 KiB, on testhost"


@pytest.mark.parametrize(
    ("age_hours", "status", "note"),
    [
        (25, Status.OK, ""),
        (27, Status.WARNING, " (age warning at 1d 2h)"),
        (49, Status.CRITICAL, " (age critical at 2d)"),
    ],
    ids=["fresh-backup", "older-than-26h", "older-than-48h"],
)
def test_backup_must_be_younger_than_26h(
    tmp_path: Path, age_hours: int, status: Status, note: str
) -> None:
    path = make(tmp_path / "db.dump", 10, age_hours * HOUR)
    result = check_file(path, warning="26h", critical="48h")
    assert result.status is status
    assert result.summary.endswith(f"on testhost{note}")


def test_size_threshold_via_thresholds_block(tmp_path: Path) -> None:
    path = make(tmp_path / "spool", 2 * 1024 * 1024, 60)
    result = check_file(path, thresholds={"size_bytes": {"warning": "1MiB"}})
    assert result.status is Status.WARNING
    assert result.summary.endswith("(size warning at 1.0 MiB)")


def test_min_size_is_critical(tmp_path: Path) -> None:
    path = make(tmp_path / "db.dump", 0, 60)
    result = check_file(path, min_size="1KiB")
    assert result.status is Status.CRITICAL
    assert result.summary == (
        f"{path} is 1m old, 0 B, on testhost (smaller than the minimum 1.0 KiB)")


def test_missing_file_is_critical_by_default(tmp_path: Path) -> None:
    result = check_file(tmp_path / "gone.dump")
    assert result.status is Status.CRITICAL
    assert result.measurement("exists") == 0
    assert result.summary == f"file does not exist: {tmp_path / 'gone.dump'} on testhost"


def test_missing_file_allowed(tmp_path: Path) -> None:
    result = check_file(tmp_path / "gone.lock", must_exist=False)
    assert result.status is Status.OK
    assert result.measurement("exists") == 0
    assert result.summary.endswith("(allowed)")


def test_glob_judges_the_newest_match(tmp_path: Path) -> None:
    make(tmp_path / "db-1.dump", 10, 50 * HOUR)
    newest = make(tmp_path / "db-2.dump", 20, 3 * HOUR)
    make(tmp_path / "other.txt", 30, 1)
    result = check_file(tmp_path / "db-*.dump", warning="26h")
    assert result.status is Status.OK
    assert result.measurement("age_seconds") == 3 * HOUR
    assert result.measurement("size_bytes") == 20
    assert result.diagnostics["path"] == str(newest)


def test_glob_without_match_is_critical(tmp_path: Path) -> None:
    result = check_file(tmp_path / "db-*.dump")
    assert result.status is Status.CRITICAL
    assert result.summary == f"no file matches {tmp_path / 'db-*.dump'} on testhost"


def test_future_mtime_counts_as_age_zero(tmp_path: Path) -> None:
    path = make(tmp_path / "skewed", 1, -HOUR)
    assert check_file(path).measurement("age_seconds") == 0


def test_stat_error_other_than_missing_is_unknown(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)  # ELOOP: "could not find out", not "does not exist"
    with pytest.raises(CheckError, match=r"cannot stat .*loop: Too many levels of symbolic links"):
        check_file(loop)
