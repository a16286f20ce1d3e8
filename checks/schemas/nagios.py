"""The options of the ``nagios`` check (NagiosCheck), validated once, in the child."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from patrol.checks.config import CheckConfig, SecretValue

_ARGV_EXAMPLE = "['/usr/lib/nagios/plugins/check_load', '-w', '5,4,3', '-c', '10,8,6']"


class NagiosConfig(CheckConfig):
    command: list[str] = Field(min_length=1)
    env: dict[str, SecretValue] = Field(default_factory=dict)
    cwd: str | None = None

    @field_validator("command", mode="before")
    @classmethod
    def _argv(cls, value: Any) -> Any:
        if isinstance(value, str):
            # pydantic turns ValueError (not TypeError) into a located config error
            raise ValueError(
                "must be a list of arguments (argv), not a shell string; "
                f"write e.g. {_ARGV_EXAMPLE}"
            )
        return value

    @field_validator("command")
    @classmethod
    def _program(cls, value: list[str]) -> list[str]:
        if not value[0].strip():
            raise ValueError("the first argument (the program) is empty")
        return value
