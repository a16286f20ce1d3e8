"""The options of the ``fd`` check (FdCheck), validated once, in the child."""

from __future__ import annotations

from pydantic import Field

from patrol.checks.config import CheckConfig


class FdConfig(CheckConfig):
    """``processes``: name globs to watch per process (default: every process)."""

    processes: list[str] | None = Field(default=None, min_length=1)
    top: int = Field(default=10, ge=1, le=100)
