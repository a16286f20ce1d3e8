"""The agent's version, as installed: :data:`patrol.contract.wire_basics.PATROL_VERSION`, read from
the package metadata (pyproject.toml is the one source), so an agent and a collector
from the same release report the same version and the fleet inventory can flag agents
that differ."""

from __future__ import annotations

from patrol.contract.wire_basics import PATROL_VERSION

AGENT_VERSION: str = PATROL_VERSION
