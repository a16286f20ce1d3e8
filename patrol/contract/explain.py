"""Turn pydantic validation errors into operator sentences at ``file:line``.

pydantic says *where* (a location tuple) and *what* (an error type); this module
adds *what to do*, the did-you-mean for unknown keys, and the line from the
:mod:`patrol.contract.yamlsource` tree. Messages are part of the user interface and are
tested word for word.
"""

from __future__ import annotations

import types
import typing
from difflib import get_close_matches
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from patrol.contract.yamlsource import Problem, duplicate_problems, line_of, plain

Model = TypeVar("Model", bound=BaseModel)


def known_keys(model: type[BaseModel]) -> list[str]:
    """Keys a model accepts as written in YAML (aliases win over field names)."""
    return [field.alias or name for name, field in model.model_fields.items()]


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that owns the last key of ``loc`` (for did-you-mean)."""
    current: Any = model
    for step in loc[:-1]:
        if isinstance(current, type) and issubclass(current, BaseModel):
            by_key = {f.alias or n: f for n, f in current.model_fields.items()}
            field = by_key.get(step)
            if field is None:
                return None
            current = field.annotation
            continue
        current = _unwrap(current, step)
        if current is None:
            return None
    current = _unwrap_optional(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _unwrap_optional(tp: Any) -> Any:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return inner[0] if len(inner) == 1 else tp
    if typing.get_origin(tp) is typing.Annotated:
        return _unwrap_optional(args[0])
    return tp


def _unwrap(tp: Any, step: Any) -> Any:
    """Step into a container annotation: dict values or list items."""
    tp = _unwrap_optional(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is dict and len(args) == 2:
        return args[1]
    if origin in (list, tuple) and args:
        return args[0]
    return None


_ADVICE = {
    "int_parsing": "expected a whole number; write it without quotes or units",
    "int_type": "expected a whole number; write it without quotes or units",
    "int_from_float": "expected a whole number, not a fraction; drop the decimals",
    "float_parsing": "expected a number; write it without quotes",
    "float_type": "expected a number; write it without quotes",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected text; quote it if it looks like a number or a date",
    "list_type": "expected a list; write one '- item' per line or [a, b]",
    "dict_type": "expected a mapping of 'key: value' lines",
    "model_type": "expected a mapping of 'key: value' lines",
    "model_attributes_type": "expected a mapping of 'key: value' lines",
}


def _describe(error: ErrorDetails, model: type[BaseModel]) -> str:
    kind = error["type"]
    loc = tuple(error["loc"])
    if kind == "missing":
        return "required option is missing; add it"
    if kind == "extra_forbidden":
        owner = _model_at(model, loc)
        known = known_keys(owner) if owner else []
        hint = get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        if hint:
            return f"unknown option; did you mean '{hint[0]}'?"
        return f"unknown option; valid options are: {', '.join(sorted(known))}" if known else (
            "unknown option; remove it"
        )
    if kind in _ADVICE:
        return f"{_ADVICE[kind]} (got {error.get('input')!r})"
    if kind == "value_error":
        message = str(error.get("ctx", {}).get("error", error["msg"]))
        return message if ";" in message else f"{message}; fix the value"
    if kind == "string_pattern_mismatch":
        return (
            f"{error.get('input')!r} is not allowed here; use letters, digits and . _ : @ -, "
            "starting with a letter or digit"
        )
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{error['msg'].lower()} (got {error.get('input')!r}); change the value"
    if kind == "literal_error":
        return f"{error['msg'].lower()} (got {error.get('input')!r})"
    return f"{error['msg']} (got {error.get('input')!r}); fix the value"


def problems_from(
    exc: ValidationError,
    model: type[BaseModel],
    node: Any,
    *,
    check: str | None = None,
    section: str | None = None,
) -> list[Problem]:
    """One :class:`Problem` per pydantic error, located in the YAML ``node``."""
    out: list[Problem] = []
    file = getattr(node, "file", "<config>")
    for error in exc.errors():
        loc = tuple(error["loc"])
        # A model_validator reports at the model itself: loc is ().
        option = ".".join(str(part) for part in loc) or None
        out.append(
            Problem(
                file,
                line_of(node, loc),
                _describe(error, model),
                check=check,
                option=option,
                section=section if check is None else None,
            )
        )
    return out


def validated(
    model: type[Model],
    node: Any,
    problems: list[Problem],
    *,
    section: str | None = None,
    duplicates: bool = True,
) -> Model | None:
    """``node`` (a mapping of the YAML tree) as ``model``, or None with every reason
    added to ``problems``: duplicate keys first (unless ``duplicates`` is False because
    an enclosing node already reported them), then each pydantic error at its line."""
    if duplicates:
        duplicate_problems(node, problems, None, section)
    try:
        return model.model_validate(plain(node))
    except ValidationError as exc:
        problems.extend(problems_from(exc, model, node, section=section))
        return None
