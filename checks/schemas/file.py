"""The options of the ``file`` check (FileCheck), validated once, in the child."""

from __future__ import annotations

from pydantic import Field

from patrol.checks.config import CheckConfig, Size


class FileConfig(CheckConfig):
    path: str = Field(min_length=1)
    must_exist: bool = True
    min_size: Size | None = None
