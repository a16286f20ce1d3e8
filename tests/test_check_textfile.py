"""The textfile check against real .prom files in tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from patrol.checks.base import CheckError, Status
from tests.helpers import build

NOW = 1_700_000_000.0

PROM = """\
# HELP backup_last_size_bytes Size of the last backup.
# TYPE backup_last_size_bytes gauge
backup_last_size_bytes{db="main"} 1.5e9
backup_last_size_bytes{db="audit"} 2048
# HELP backup_failures_total Failed backups.
# TYPE backup_failures_total counter
backup_failures_total 3
queue_depth 42
"""


@pytest.fixture
def prom(tmp_path: Path) -> Path:
    path = tmp_path / "backup.prom"
    path.write_text(PROM)
    os.utime(path, (NOW - 120, NOW - 120))
    return path


def check(path: Path, **options: object):
    chk, ctx = build("textfile", world={"clock": lambda: NOW}, path=str(path), **options)
    return chk.run(ctx)


def test_value_and_age_exact(prom: Path) -> None:
    result = check(prom, metric="queue_depth")
    assert result.status is Status.OK
    assert result.measurement("value") == 42
    assert result.measurement("age_seconds") == 120
    assert result.measurement("value_below") is None
    assert result.summary == "queue_depth is 42 on testhost"


@pytest.mark.parametrize(
    ("value", "status", "note"),
    [
        ("10", Status.OK, ""),
        ("100", Status.WARNING, " (value warning at 100)"),
        ("250", Status.CRITICAL, " (value critical at 200)"),
    ],
    ids=["below-warning", "at-warning", "above-critical"],
)
def test_thresholds_point_up(tmp_path: Path, value: str, status: Status, note: str) -> None:
    path = tmp_path / "q.prom"
    path.write_text(f"queue_depth {value}\n")
    result = check(path, metric="queue_depth", warning=100, critical=200)
    assert result.status is status
    assert result.summary == f"queue_depth is {value} on testhost{note}"


def test_counter_sample_name_with_suffix(prom: Path) -> None:
    result = check(prom, metric="backup_failures_total", warning=1)
    assert result.measurement("value") == 3
    assert result.status is Status.WARNING


def test_match_labels_picks_one_series(prom: Path) -> None:
    result = check(prom, metric="backup_last_size_bytes", match_labels={"db": "main"})
    assert result.measurement("value") == 1.5e9
    assert result.summary == 'backup_last_size_bytes{db="main"} is 1.5e+09 on testhost'


def test_value_below_thresholds_point_down(prom: Path) -> None:
    result = check(prom, metric="backup_last_size_bytes", match_labels={"db": "audit"},
                   thresholds={"value_below": {"warning": 1e6, "critical": 4096}})
    assert result.measurement("value_below") == 2048
    assert result.status is Status.CRITICAL
    assert result.summary.endswith("(value critical at below 4096)")


def test_ambiguous_series_is_unknown_with_label_sets(prom: Path) -> None:
    with pytest.raises(CheckError) as info:
        check(prom, metric="backup_last_size_bytes")
    assert str(info.value) == (
        f"2 series 'backup_last_size_bytes' in {prom} match; add match_labels to pick one of: "
        '{db="main"}, {db="audit"}'
    )


def test_missing_series_lists_what_is_there(prom: Path) -> None:
    with pytest.raises(CheckError) as info:
        check(prom, metric="queue_dept")
    assert str(info.value) == (
        f"no series 'queue_dept' in {prom}; did you mean 'queue_depth'? series there: "
        "backup_failures_total, backup_last_size_bytes, queue_depth"
    )


def test_unmatched_labels_list_label_sets(prom: Path) -> None:
    with pytest.raises(CheckError, match=r'no series .*\{db="logs"\}.*label sets there: '
                                         r'\{db="main"\}, \{db="audit"\}'):
        check(prom, metric="backup_last_size_bytes", match_labels={"db": "logs"})


def test_parse_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.prom"
    path.write_text('# TYPE ok gauge\nok 1\nbroken{db="x" 3\nlater 2\n')
    with pytest.raises(CheckError, match=r"cannot parse .*bad.prom line 3: 'broken\{db=\"x\" 3'"):
        check(path, metric="ok")


def test_missing_file_is_unknown(tmp_path: Path) -> None:
    with pytest.raises(CheckError, match=r"cannot read textfile .*none.prom: it does not exist"):
        check(tmp_path / "none.prom", metric="x")


def test_stale_file_is_critical(prom: Path) -> None:
    os.utime(prom, (NOW - 7200, NOW - 7200))
    result = check(prom, metric="queue_depth", stale_after="1h")
    assert result.status is Status.CRITICAL
    assert result.summary == (
        f"queue_depth is 42 on testhost (stale: {prom} not updated for 2h, limit 1h)"
    )


def test_fresh_file_within_stale_after_is_ok(prom: Path) -> None:
    assert check(prom, metric="queue_depth", stale_after="5m").status is Status.OK


def test_nan_value_is_unknown(tmp_path: Path) -> None:
    path = tmp_path / "nan.prom"
    path.write_text("ratio NaN\n")
    with pytest.raises(CheckError, match=r"ratio in .*nan.prom is NaN"):
        check(path, metric="ratio")
