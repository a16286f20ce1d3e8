"""tls_cert: generated certificate files with chosen validity and an injected clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from patrol.checks.base import Status
from tests.certs import CA, issue, make_ca, whole_second
from tests.helpers import run

DAY = 86400


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CA:
    return make_ca(tmp_path_factory.mktemp("ca"))


def check(path: Path, now: datetime, **options: object):
    return run("tls_cert", world={"now": lambda: now}, path=str(path), **options)


@pytest.mark.parametrize(
    ("left", "status", "text"),
    [
        (timedelta(days=60), Status.OK, "expires in 60d on testhost"),
        (timedelta(days=10, hours=2), Status.WARNING,
         "expires in 10d 2h on testhost (warning at 14d)"),
        (timedelta(days=5, hours=3), Status.CRITICAL,
         "expires in 5d 3h on testhost (critical at 7d)"),
        (timedelta(days=-2), Status.CRITICAL, "expired 2d ago on testhost"),
    ],
    ids=["fine", "warning", "critical", "expired"],
)
def test_expiry_against_default_thresholds(
    ca: CA, tmp_path: Path, left: timedelta, status: Status, text: str
) -> None:
    now = whole_second()
    cert = issue(ca, tmp_path, common_name="foo", not_before=now - timedelta(days=90),
                 not_after=now + left)
    result = check(cert.cert_path, now)
    assert result.measurement("expiry_seconds") == left.total_seconds()
    assert result.status is status
    assert result.summary == f"certificate {cert.cert_path} (CN=foo) {text}"


def test_operator_thresholds_in_days(ca: CA, tmp_path: Path) -> None:
    now = whole_second()
    cert = issue(ca, tmp_path, common_name="foo", not_after=now + timedelta(days=20))
    result = check(cert.cert_path, now, warning="30d", critical="21d")
    assert result.status is Status.CRITICAL
    assert result.summary.endswith("expires in 20d on testhost (critical at 21d)")


def test_chain_file_is_judged_by_its_leaf(ca: CA, tmp_path: Path) -> None:
    # The CA in the same file lives ten years; the leaf expires in 3 days.
    now = whole_second()
    cert = issue(ca, tmp_path, common_name="leaf.example", not_after=now + timedelta(days=3),
                 chain=True)
    result = check(cert.cert_path, now)
    assert result.measurement("expiry_seconds") == 3 * DAY
    assert result.status is Status.CRITICAL
    assert "(CN=leaf.example)" in result.summary
    assert result.diagnostics["certificates_in_file"] == 2
    assert result.diagnostics["issuer"] == "CN=Patrol Test CA,O=Patrol Tests"
    assert result.diagnostics["not_after"] == (now + timedelta(days=3)).isoformat()


def test_not_yet_valid_certificate_is_critical(ca: CA, tmp_path: Path) -> None:
    now = whole_second()
    cert = issue(ca, tmp_path, common_name="foo", not_before=now + timedelta(hours=5),
                 not_after=now + timedelta(days=90))
    result = check(cert.cert_path, now)
    assert result.status is Status.CRITICAL
    assert result.summary.endswith("(CN=foo) is not valid for another 5h on testhost")


def test_real_clock_counts_down_from_validity(ca: CA, tmp_path: Path) -> None:
    cert = issue(ca, tmp_path, valid_for=timedelta(days=30))
    result = run("tls_cert", path=str(cert.cert_path))
    assert result.status is Status.OK
    assert result.measurement("expiry_seconds") == pytest.approx(30 * DAY, abs=5)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read certificate {path}: No such file or directory"),
        (b"hello, not a certificate\n",
         ("certificate file {path} holds no certificate (expected PEM 'BEGIN CERTIFICATE' "
          "or DER)")),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
         "certificate file {path} holds a malformed PEM certificate"),
    ],
    ids=["missing", "not-a-certificate", "corrupt-pem"],
)
def test_unreadable_file_is_unknown(tmp_path: Path, content: bytes | None, message: str) -> None:
    from patrol.checks.base import CheckError

    path = tmp_path / "server.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckError) as caught:
        check(path, whole_second())
    assert str(caught.value).startswith(message.format(path=path))
