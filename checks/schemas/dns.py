"""The options of the ``dns`` check (DnsCheck), validated once, in the child."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from patrol.checks import dns_wire
from patrol.checks.config import CheckConfig, Duration
from patrol.checks.dns import TYPES, RecordType


def _query(raw: Any) -> Any:
    return {"name": raw} if isinstance(raw, str) else raw


class DnsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=253)
    type: RecordType = "A"
    expect: list[str] | None = Field(default=None, min_length=1)

    @field_validator("type", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) and value.upper() in TYPES else value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        try:
            dns_wire.encode_name(value)
        except (ValueError, UnicodeError):
            raise ValueError(f"{value!r} is not a valid domain name") from None
        return value

    @property
    def item(self) -> str:
        return f"{self.name}/{self.type}"


class DnsConfig(CheckConfig):
    """``queries``: names (``example.org``) or ``{name, type, expect}`` mappings;
    ``server``: ask this server instead of the system resolver."""

    queries: list[DnsQuery] = Field(min_length=1)
    server: str | None = None
    port: int = Field(default=53, ge=1, le=65535)
    query_timeout: Duration = Field(default=2.0, le=30)

    @field_validator("queries", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return [_query(v) for v in value] if isinstance(value, list) else value
