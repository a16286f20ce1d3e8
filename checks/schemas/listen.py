"""The options of the ``listen`` check (ListenCheck), validated once, in the child."""

from __future__ import annotations

from pydantic import Field, field_validator

from patrol.checks.config import CheckConfig
from patrol.checks.listen import parse_rule


class ListenConfig(CheckConfig):
    expected: list[str] = Field(default_factory=list)
    allowed: list[str] = Field(default_factory=list)
    learn: bool = True
    loopback: bool = False

    @field_validator("expected", "allowed")
    @classmethod
    def _entries(cls, value: list[str]) -> list[str]:
        for entry in value:
            parse_rule(entry)
        return value
