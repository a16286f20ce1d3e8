"""The options of the ``redis`` check (RedisCheck), validated once, in the child."""

from __future__ import annotations

from pydantic import Field

from patrol.checks.config import CheckConfig, Duration, SecretValue


class RedisConfig(CheckConfig):
    url: SecretValue
    connect_timeout: Duration = Field(default=5.0, le=300)
