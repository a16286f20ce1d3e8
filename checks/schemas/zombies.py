"""The options of the ``zombies`` check (ZombiesCheck), validated once, in the child."""

from __future__ import annotations

from pydantic import Field

from patrol.checks.config import CheckConfig, Duration


class ZombiesConfig(CheckConfig):
    """``min_age``: how long a process must have been defunct to count."""

    min_age: Duration = Field(default=60.0, le=86400)
    top: int = Field(default=10, ge=1, le=100)
