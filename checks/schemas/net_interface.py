"""The options of the ``net_interface`` check (NetInterfaceCheck), validated once, in the child."""

from __future__ import annotations

from pydantic import Field

from patrol.checks.config import CheckConfig


class NetInterfaceConfig(CheckConfig):
    """``interfaces``: globs of interface names (default: every hardware interface);
    ``exclude``: globs to leave out."""

    interfaces: list[str] | None = Field(default=None, min_length=1)
    exclude: list[str] = Field(default_factory=list)
