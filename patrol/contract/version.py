"""Patrol's installed version, read once from the package metadata.

Apart from :mod:`patrol.contract.wire` (which re-exports it) because the running
agent reports its version without importing the wire models (pydantic)."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version


def installed_version(lookup: Callable[[str], str] = version) -> str:
    """Patrol's version from the ``patrol-inspect`` distribution metadata, so
    pyproject.toml is the one source of truth for agents and collectors alike; a
    source checkout that was never installed reports ``0+unknown`` (a valid PEP 440
    local version)."""
    try:
        return lookup("patrol-inspect")
    except PackageNotFoundError:
        return "0+unknown"


PATROL_VERSION: str = installed_version()
