"""The options of the ``memory`` check (MemoryCheck), validated once, in the child."""

from __future__ import annotations

from patrol.checks.config import CheckConfig


class MemoryConfig(CheckConfig):
    """No options beyond the common keys: thresholds apply to ``used_ratio``."""
