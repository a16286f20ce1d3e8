"""The options of the ``clock`` check (ClockCheck), validated once, in the child."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from patrol.checks.config import CheckConfig, Duration


class ClockConfig(CheckConfig):
    source: Literal["auto", "chrony", "timesyncd", "ntpd", "none"] = "auto"
    chrony_socket: str | None = None  # chronyc -h: a non-default command socket
    server: str | None = None
    port: int = Field(default=123, ge=1, le=65535)
    query_timeout: Duration = Field(default=2.0, le=30)

    @model_validator(mode="after")
    def _something_to_ask(self) -> ClockConfig:
        if self.source == "none" and not self.server:
            raise ValueError("source: none needs server: (an NTP server to query directly)")
        if self.chrony_socket and self.source not in ("auto", "chrony"):
            raise ValueError("chrony_socket applies to source: chrony only")
        return self
