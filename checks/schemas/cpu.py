"""The options of the ``cpu`` check (CpuCheck), validated once, in the child."""

from __future__ import annotations

from pydantic import Field

from patrol.checks.config import CheckConfig, Duration


class CpuConfig(CheckConfig):
    sample: Duration = Field(default=0.25, le=30)
