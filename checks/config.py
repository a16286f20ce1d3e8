"""Config models shared by every check: common keys, thresholds, secrets.

Every check's ``Config`` subclasses :class:`CheckConfig` and adds its own options
(the built-ins' models are in :mod:`patrol.checks.schemas`). The value types
(:class:`Limit`, :class:`Sustain`, :class:`Secret`) live in :mod:`patrol.checks.values`,
which imports no pydantic, and are re-exported here.
Models are frozen and reject unknown keys; the agent's loader turns pydantic's
error locations into ``file:line`` messages with a did-you-mean.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationInfo,
    field_validator,
)

from patrol.checks.values import (
    LABEL_NAME,
    NAME_PATTERN,
    Limit,
    Secret,
    Sustain,
    to_limit,
    to_secret,
    to_sustain,
)
from patrol.contract.units import parse_duration, parse_size

__all__ = ["LABEL_NAME", "NAME_PATTERN", "CheckConfig", "Duration", "Limit", "LimitValue",
           "Regex", "Secret", "SecretValue", "Size", "Sustain", "SustainValue",
           "ThresholdSet"]

LimitValue = Annotated[Limit | None, PlainValidator(to_limit), PlainSerializer(str)]


def _to_seconds(raw: Any) -> float:
    seconds = parse_duration(raw)
    if seconds <= 0:
        raise ValueError("must be longer than zero; write it like 30s or 5m")
    return seconds


Duration = Annotated[float, BeforeValidator(_to_seconds)]
Size = Annotated[float, BeforeValidator(parse_size)]


def _to_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(
            f"{value!r} is not a valid regular expression: {exc}; "
            "Python re syntax, e.g. 'ERROR|FATAL' or '\\bOOM\\b'"
        ) from None
    return value


Regex = Annotated[str, AfterValidator(_to_regex)]
"""A Python regular expression, compiled once when the config is read so a typo is a
config error at FILE:LINE, not a crash at the first run. The one wording for every
check option that takes a pattern."""


SecretValue = Annotated[Secret, PlainValidator(to_secret), PlainSerializer(lambda s: "***")]
SustainValue = Annotated[Sustain, PlainValidator(to_sustain), PlainSerializer(str)]


class ThresholdSet(BaseModel):
    """``warning`` / ``critical`` / ``recover`` for one measurement or one instance.

    An explicit ``null`` disables a level; an absent key inherits the default.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    warning: LimitValue = None
    critical: LimitValue = None
    recover: LimitValue = None


class CheckConfig(BaseModel):
    """Keys every check entry accepts. Subclasses add the type's own options."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(pattern=NAME_PATTERN, max_length=120)
    type: str
    interval: Duration | None = None
    timeout: Duration | None = None
    schedule: str | None = None
    timezone: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    runbook: str | None = None
    warning: LimitValue = None
    critical: LimitValue = None
    recover: LimitValue = None
    sustain: SustainValue = Field(default=Sustain(), alias="for")
    thresholds: dict[str, ThresholdSet] = Field(default_factory=dict)
    overrides: dict[str, ThresholdSet] = Field(default_factory=dict)
    diagnostics: bool = True

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from patrol.contract.cron import crontab_trigger

        try:
            crontab_trigger(value)
        except ValueError as exc:
            raise ValueError(
                f"{value!r} is not a cron schedule ({exc}); "
                "write five fields: minute hour day month weekday, e.g. '0 7 * * *'"
            ) from None
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None, info: ValidationInfo) -> str | None:
        """The zone a cron ``schedule`` is read in; the host's local zone when absent,
        as a crontab would be."""
        if value is None:
            return value
        if "schedule" in info.data and info.data["schedule"] is None:
            raise ValueError("timezone applies to a cron schedule and this check has none; "
                             "add schedule: (e.g. '0 7 * * *') or remove timezone")
        from patrol.contract.cron import time_zone

        time_zone(value)
        return value

    @field_validator("labels")
    @classmethod
    def _label_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not LABEL_NAME.match(key):
                raise ValueError(
                    f"label name {key!r} is not valid; use letters, digits and underscores"
                )
        return value

    @field_validator("runbook")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://\S+$", value):
            raise ValueError(f"{value!r} is not a URL; write it like https://wiki/runbooks/disk")
        return value
