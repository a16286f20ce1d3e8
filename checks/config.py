"""Config models shared by every check: common keys, thresholds, secrets.

Every check's ``Config`` subclasses :class:`CheckConfig` and adds its own options.
Models are frozen and reject unknown keys; the agent's loader turns pydantic's
error locations into ``file:line`` messages with a did-you-mean.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
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

from patrol.contract.secrets import resolve_secret
from patrol.contract.units import is_duration, parse_duration, parse_percent, parse_size

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]*$"
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Limit:
    """A threshold in base units, remembering how it was written (for unit checks
    and for summaries such as "critical at 95%")."""

    value: float
    kind: str  # "number" | "percent" | "duration" | "size"
    text: str

    def __str__(self) -> str:
        return self.text


def _to_limit(raw: Any) -> Limit | None:
    if raw is None or isinstance(raw, Limit):
        return raw
    if isinstance(raw, bool):
        raise ValueError("expected a number, a percentage (85%), a duration (5m) or a size (1GiB)")
    if isinstance(raw, (int, float)):
        return Limit(float(raw), "number", str(raw))
    if isinstance(raw, str):
        text = raw.strip()
        if text.endswith("%"):
            return Limit(parse_percent(text), "percent", text)
        if is_duration(text.replace(" ", "")):
            return Limit(parse_duration(text), "duration", text)
        try:
            return Limit(float(text), "number", text)
        except ValueError:
            pass
        try:
            return Limit(parse_size(text), "size", text)
        except ValueError:
            pass
    raise ValueError(
        f"{raw!r} is not a threshold; write a number, a percentage (85%), "
        "a duration (5m) or a size (1GiB)"
    )


LimitValue = Annotated[Limit | None, PlainValidator(_to_limit), PlainSerializer(str)]


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


class Secret:
    """A string that never shows itself in repr, logs, metrics or JSON.

    Written in YAML as ``${ENV_VAR}`` (expanded by the loader) or ``file:/path``
    (read by :func:`patrol.contract.secrets.resolve_secret`), or inline where an
    operator insists.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _to_secret(raw: Any) -> Secret:
    return raw if isinstance(raw, Secret) else Secret(resolve_secret(raw))


SecretValue = Annotated[Secret, PlainValidator(_to_secret), PlainSerializer(lambda s: "***")]


@dataclass(frozen=True, slots=True)
class Sustain:
    """How long a breach must last before it is *hard*: seconds, or a run count."""

    seconds: float = 0.0
    count: int = 1

    def __str__(self) -> str:
        return f"{self.seconds:g}s" if self.seconds else f"{self.count} runs"


def _to_sustain(raw: Any) -> Sustain:
    if isinstance(raw, Sustain):
        return raw
    if isinstance(raw, bool):
        raise ValueError("expected a duration (5m) or a number of consecutive results (3)")
    if isinstance(raw, int):
        if raw < 1:
            raise ValueError("a count of consecutive results must be 1 or more")
        return Sustain(count=raw)
    if isinstance(raw, str) and is_duration(raw.replace(" ", "")):
        return Sustain(seconds=parse_duration(raw))
    raise ValueError(
        f"{raw!r} is not a sustain time; write a duration such as 5m, "
        "or a number of consecutive results such as 3"
    )


SustainValue = Annotated[Sustain, PlainValidator(_to_sustain), PlainSerializer(str)]


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
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as "
                             "'UTC' or 'Europe/Berlin'") from None
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
