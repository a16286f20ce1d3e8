"""The options of the ``mysql`` check (MysqlCheck), validated once, in the child."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from patrol.checks.config import CheckConfig, Duration, SecretValue
from patrol.checks.mysql import is_loopback


class MysqlConfig(CheckConfig):
    host: str = "localhost"
    port: int = Field(default=3306, ge=1, le=65535)
    user: str = "root"
    password: SecretValue | None = None
    unix_socket: str | None = None
    connect_timeout: Duration = Field(default=5.0, le=300)
    tls: Literal["disabled", "preferred", "required"]

    @model_validator(mode="before")
    @classmethod
    def _default_tls(cls, data: Any) -> Any:
        """No ``tls:`` given: ``disabled`` on a socket or loopback, else ``preferred``."""
        if isinstance(data, dict) and data.get("tls") is None:
            local = bool(data.get("unix_socket")) or is_loopback(data.get("host", "localhost"))
            data = {**data, "tls": "disabled" if local else "preferred"}
        return data
