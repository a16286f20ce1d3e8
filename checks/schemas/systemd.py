"""The options of the ``systemd`` check (SystemdCheck), validated once, in the child."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from patrol.checks.config import CheckConfig, Duration
from patrol.checks.systemd import _SUFFIXES

_UNIT_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_.\\@-")


def _full_name(unit: str) -> str:
    return unit if unit.endswith(_SUFFIXES) else f"{unit}.service"


class SystemdConfig(CheckConfig):
    unit: str | None = None
    units: list[str] | None = Field(default=None, min_length=1)
    command_timeout: Duration = Field(default=5.0, le=60)

    @field_validator("unit", "units")
    @classmethod
    def _names(cls, value: str | list[str] | None) -> str | list[str] | None:
        for name in [value] if isinstance(value, str) else value or []:
            if any(c in name for c in "*?["):
                raise ValueError(f"{name!r}: globs are not supported; list each unit")
            if not name or name.startswith("-") or not set(name) <= _UNIT_CHARS:
                raise ValueError(f"{name!r} is not a systemd unit name, like nginx.service")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> SystemdConfig:
        if (self.unit is None) == (self.units is None):
            raise ValueError("set exactly one of unit: (one unit) or units: (a list)")
        return self

    @property
    def unit_names(self) -> list[str]:
        names = [self.unit] if self.unit is not None else list(self.units or ())
        return list(dict.fromkeys(_full_name(n) for n in names))
