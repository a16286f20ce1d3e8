"""The options of the ``tcp`` check (TcpCheck), validated once, in the child."""

from __future__ import annotations

from pydantic import Field

from patrol.checks.config import CheckConfig


class TcpConfig(CheckConfig):
    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    send: str | None = None
    expect: str | None = Field(default=None, min_length=1)
