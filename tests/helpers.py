"""Small builders shared by the check tests."""

from __future__ import annotations

from typing import Any

from patrol.checks.base import Result, RunContext
from patrol.checks.registry import load
from patrol.checks.thresholds import Evaluator


def build(check_type: str, name: str | None = None, world: dict[str, Any] | None = None,
          **options: Any) -> tuple[Any, RunContext]:
    """A check instance of ``check_type`` with ``options``, and a fresh context.

    ``options`` are YAML keys (use ``**{"for": 3}`` for reserved words); ``world``
    are constructor keyword arguments that replace the real psutil/clock/etc.
    """
    cls = load(check_type)
    config = cls.Config.model_validate({"name": name or check_type, "type": check_type, **options})
    check = cls(config, **(world or {}))
    return check, RunContext("testhost", Evaluator(config, cls.MEASUREMENTS))


def run(check_type: str, world: dict[str, Any] | None = None, **options: Any) -> Result:
    check, ctx = build(check_type, world=world, **options)
    return check.run(ctx)
