"""The options of the ``load`` check (LoadCheck), validated once, in the child."""

from __future__ import annotations

from patrol.checks.config import CheckConfig


class LoadConfig(CheckConfig):
    """No options beyond the common keys: thresholds apply to ``load5_per_core``."""
