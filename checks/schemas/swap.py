"""The options of the ``swap`` check (SwapCheck), validated once, in the child."""

from __future__ import annotations

from patrol.checks.config import CheckConfig


class SwapConfig(CheckConfig):
    """No options beyond the common keys: thresholds apply to ``used_ratio``."""
