"""The pydantic models of the built-in checks' options: ``schemas/<type>.py`` holds the
``Config`` of ``checks/<type>.py``.

They are apart from the checks so that a check imports without pydantic: the agent
validates its config once, in a short-lived child (``patrol.agent.validate_child``), and
runs the checks with plain, frozen copies (:class:`patrol.checks.values.PlainConfig`).
``SomeCheck.Config`` still names the model: :func:`config_schema` imports it on first
read. A plugin check may keep its ``Config`` in its own module; importing it then
imports pydantic into the agent, which is that plugin's cost.
"""

from __future__ import annotations

import importlib
from typing import Any


class ConfigSchema:
    """A check class's ``Config``, imported from ``patrol.checks.schemas.<type>`` the
    first time it is read (then it replaces itself on the class)."""

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name

    def __get__(self, instance: object, owner: Any) -> Any:
        model = getattr(importlib.import_module(self.module), self.name)
        owner.Config = model
        return model


def config_schema(check_type: str, name: str) -> Any:
    """``Config = config_schema("disk", "DiskConfig")`` in a check class: the model in
    ``schemas/disk.py``, imported when first read. Typed ``Any`` so that the class
    attribute can keep its ``ClassVar[ConfigClass]`` annotation."""
    return ConfigSchema(f"{__name__}.{check_type}", name)
