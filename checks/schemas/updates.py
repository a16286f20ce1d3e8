"""The options of the ``updates`` check (UpdatesCheck), validated once, in the child."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from patrol.checks.config import CheckConfig


class UpdatesConfig(CheckConfig):
    """``manager``: ``auto`` (apt, else dnf), ``apt`` or ``dnf``; ``refresh``: update
    the package lists before looking (off: never touch the network)."""

    manager: Literal["auto", "apt", "dnf"] = "auto"
    refresh: bool = False
    top: int = Field(default=50, ge=1, le=1000)
