"""The options of the ``textfile`` check (TextfileCheck), validated once, in the child."""

from __future__ import annotations

from pydantic import Field

from patrol.checks.config import CheckConfig, Duration


class TextfileConfig(CheckConfig):
    path: str = Field(min_length=1)
    metric: str = Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
    match_labels: dict[str, str] = Field(default_factory=dict)
    stale_after: Duration | None = None
