"""The options of the ``disk_health`` check (DiskHealthCheck), validated once, in the child."""

from __future__ import annotations

from pydantic import Field

from patrol.checks.config import CheckConfig


class DiskHealthConfig(CheckConfig):
    """``devices``: SMART devices to read (default: what ``smartctl --scan`` finds);
    ``smart``/``raid``: switch either half off."""

    devices: list[str] | None = Field(default=None, min_length=1)
    smart: bool = True
    raid: bool = True
