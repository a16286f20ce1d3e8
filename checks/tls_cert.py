"""TLS certificate file expiry: how long until the certificate on disk expires.

For certificates a service loads from disk (web servers, mail, databases, VPNs)
and that no HTTP check can reach. A bundle (full chain) is judged by its first
certificate, the leaf: in every server's convention that is the one it presents.
A file that is missing, unreadable or holds no certificate is UNKNOWN: the check
could not find out; an expired or not-yet-valid certificate is CRITICAL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

from patrol.checks.base import (
    CheckError,
    ConfigClass,
    Measurement,
    MeasurementSpec,
    Result,
    RunContext,
    Status,
)
from patrol.checks.schemas import config_schema
from patrol.checks.thresholds import limit_note
from patrol.checks.tls_info import describe_expiry, load_file
from patrol.contract.units import format_duration

if TYPE_CHECKING:
    from patrol.checks.schemas.tls_cert import TlsCertConfig

DAY = 86400.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class TlsCertCheck:
    """Seconds until the certificate expires; warning 14 d, critical 7 d by default."""

    type: ClassVar[str] = "tls_cert"
    Config: ClassVar[ConfigClass] = config_schema("tls_cert", "TlsCertConfig")
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = (
        MeasurementSpec(
            "expiry_seconds", "seconds until the (leaf) certificate expires; negative once expired",
            higher_is_worse=False, warning=14 * DAY, critical=7 * DAY, primary=True,
        ),
    )
    REQUIRES: ClassVar[tuple[str, ...]] = ("cryptography",)
    DIAGNOSTICS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: TlsCertConfig, now: Callable[[], datetime] = _utcnow) -> None:
        self.config = config
        self._now = now

    def run(self, ctx: RunContext) -> Result:
        path = self.config.path
        try:
            info, count = load_file(path)
        except OSError as exc:
            raise CheckError(f"cannot read certificate {path}: {exc.strerror or exc}") from exc
        except ValueError as exc:
            raise CheckError(f"certificate file {path} {exc}") from exc
        now = self._now()
        left = info.seconds_left(now)
        measurement = Measurement("expiry_seconds", left)
        status = ctx.judge(measurement)
        cn = f" (CN={info.common_name})" if info.common_name else ""
        label = f"certificate {path}{cn}"
        diagnostics = {**info.as_dict(), "certificates_in_file": count}
        if now < info.not_before:
            wait = format_duration((info.not_before - now).total_seconds())
            summary = f"{label} is not valid for another {wait} on {ctx.hostname}"
            return Result(Status.CRITICAL, summary, (measurement,), diagnostics)
        summary = f"{label} {describe_expiry(left)} on {ctx.hostname}"
        if left <= 0:
            return Result(Status.CRITICAL, summary, (measurement,), diagnostics)
        summary += limit_note(ctx.evaluator.levels("expiry_seconds"), status, left)
        return Result(status, summary, (measurement,), diagnostics)
