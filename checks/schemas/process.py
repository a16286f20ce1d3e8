"""The options of the ``process`` check (ProcessCheck), validated once, in the child."""

from __future__ import annotations

from pydantic import Field, model_validator

from patrol.checks.config import CheckConfig, Regex


class ProcessConfig(CheckConfig):
    process_name: str | None = Field(default=None, min_length=1)
    pattern: Regex | None = Field(default=None, min_length=1)
    user: str | None = None
    min: int = Field(default=1, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _exactly_one(self) -> ProcessConfig:
        if (self.process_name is None) == (self.pattern is None):
            raise ValueError(
                "set exactly one of process_name: (the exact process name, like pgrep -x) "
                "or pattern: (a regular expression on the command line, like pgrep -f)"
            )
        if self.max is not None and self.max < self.min:
            raise ValueError(f"max: {self.max} is below min: {self.min}; no count can pass")
        return self
