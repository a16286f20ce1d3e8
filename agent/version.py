"""The agent's version, as installed.

Read from the ``patrol-inspect`` distribution metadata so there is one source of
truth (pyproject.toml); a source checkout that was never installed reports
``0+unknown`` (a valid PEP 440 local version) rather than failing.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def _installed_version() -> str:
    try:
        return version("patrol-inspect")
    except PackageNotFoundError:
        return "0+unknown"


AGENT_VERSION: str = _installed_version()
