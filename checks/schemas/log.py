"""The options of the ``log`` check (LogCheck), validated once, in the child."""

from __future__ import annotations

import codecs

from pydantic import Field, field_validator

from patrol.checks.config import CheckConfig, Regex, Size


class LogConfig(CheckConfig):
    path: str = Field(min_length=1)
    pattern: Regex = Field(min_length=1)
    ignore: Regex | None = None
    encoding: str = "utf-8"
    start_at_end: bool = True
    max_read: Size = Field(default=64 * 1024 * 1024, gt=0)

    @field_validator("encoding")
    @classmethod
    def _codec(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}; e.g. utf-8 or latin-1") from None
        if "\n".encode(value) != b"\n":
            raise ValueError(
                f"encoding {value!r} is not ASCII-compatible; lines are split on newline "
                "bytes, so use utf-8, latin-1 or a similar encoding"
            )
        return value
