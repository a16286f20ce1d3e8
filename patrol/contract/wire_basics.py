"""What the wire's two ends share that needs no pydantic: the version, the status and
severity names, the bounds an agent keeps to, the dedup key.

:mod:`patrol.contract.wire` (the pydantic models, which re-export all of this) checks
what arrives; the running agent writes its events and heartbeats as plain JSON data
(agent/events.py) with these, so it never imports pydantic."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Final, Literal

SCHEMA_VERSION: Final = 1  # Final: the type checker reads it as Literal[1]
MAX_SUMMARY = 1024

Action = Literal["trigger", "resolve"]
Severity = Literal["critical", "error", "warning", "info"]
CheckStatus = Literal["OK", "WARNING", "CRITICAL", "UNKNOWN"]

# Check status -> PagerDuty severity. UNKNOWN ("could not find out") is an error of
# the inspection itself, less than a confirmed outage.
SEVERITY_OF_STATUS: dict[str, Severity] = {
    "OK": "info", "WARNING": "warning", "CRITICAL": "critical", "UNKNOWN": "error",
}


def dedup_key(host: str, check: str) -> str:
    """One open incident per host and check."""
    return f"{host}/{check}"


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
