"""The value types of check options, and a validated config as plain data, without pydantic.

The agent validates its config once, with the pydantic models in
:mod:`patrol.checks.config` and :mod:`patrol.checks.schemas`, in a short-lived child
process (``patrol.agent.validate_child``); the long-running agent receives what it found
as :class:`PlainConfig` objects built from these types and never imports pydantic
(~13 MiB PSS: the library and the models it builds). So this module, and every module
a check runs with, imports nothing of pydantic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

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


def to_limit(raw: Any) -> Limit | None:
    """A threshold as written in YAML, in base units."""
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

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:
        # Pickled only into the pipe from the validating child to the agent.
        return (Secret, (self._value,))


def to_secret(raw: Any) -> Secret:
    return raw if isinstance(raw, Secret) else Secret(resolve_secret(raw))


@dataclass(frozen=True, slots=True)
class Sustain:
    """How long a breach must last before it is *hard*: seconds, or a run count."""

    seconds: float = 0.0
    count: int = 1

    def __str__(self) -> str:
        return f"{self.seconds:g}s" if self.seconds else f"{self.count} runs"


def to_sustain(raw: Any) -> Sustain:
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


class PlainConfig:
    """A validated config model as frozen plain data: the same attribute names and
    values (nested models become PlainConfig too), the values of the model's
    properties (``DiskConfig.chosen_paths``) computed once, and ``model_fields_set``
    (which levels a threshold set names, :mod:`patrol.checks.thresholds`)."""

    __slots__ = ("__dict__", "_fields", "_model", "model_fields_set")

    _model: str
    _fields: tuple[str, ...]
    model_fields_set: frozenset[str]

    def __init__(self, model: str, fields: dict[str, Any], derived: dict[str, Any],
                 fields_set: frozenset[str]) -> None:
        object.__setattr__(self, "_model", model)
        object.__setattr__(self, "_fields", tuple(fields))
        object.__setattr__(self, "model_fields_set", fields_set)
        self.__dict__.update(fields)
        self.__dict__.update(derived)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{self._model} is frozen: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{self._model} is frozen: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PlainConfig):
            return NotImplemented
        return (self._model, self.field_values()) == (other._model, other.field_values())

    __hash__ = None  # type: ignore[assignment]  # as a model holding dicts: unhashable

    def field_values(self) -> dict[str, Any]:
        return {name: self.__dict__[name] for name in self._fields}

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.field_values().items())
        return f"{self._model}({shown})"

    def __reduce__(self) -> tuple[Any, ...]:
        derived = {k: v for k, v in self.__dict__.items() if k not in self._fields}
        return (PlainConfig, (self._model, self.field_values(), derived,
                              self.model_fields_set))


def field_names(config: Any) -> tuple[str, ...]:
    """The option names of a config: a pydantic model's fields or a PlainConfig's."""
    if isinstance(config, PlainConfig):
        return config._fields
    return tuple(getattr(type(config), "model_fields", ()))


def to_plain(value: Any) -> Any:
    """``value`` with every pydantic model in it (found by its ``model_fields``, so
    this module needs no pydantic) turned into a :class:`PlainConfig`; dicts, lists and
    tuples are copied, anything else is kept as it is."""
    kind = type(value)
    if isinstance(value, PlainConfig):
        return value
    if hasattr(kind, "model_fields") and hasattr(value, "model_fields_set"):
        fields = {name: to_plain(getattr(value, name)) for name in kind.model_fields}
        derived = {}
        for klass in kind.__mro__:
            if klass.__module__.startswith("pydantic"):
                break
            for name, member in vars(klass).items():
                if isinstance(member, property) and name not in derived and name not in fields:
                    try:
                        derived[name] = to_plain(getattr(value, name))
                    except Exception:  # a property that fails is no value of this model
                        continue
        return PlainConfig(kind.__qualname__, fields, derived,
                           frozenset(value.model_fields_set))
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(to_plain(v) for v in value)
    return value
