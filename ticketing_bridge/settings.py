"""Settings every adapter's config model shares: how to reach the helpdesk, and how
Patrol's priority, category and status map onto the helpdesk's own fields.

Secrets (``token``, ``password``) are pydantic ``SecretStr``: never shown in repr or
logs. ``${ENV_VAR}`` is expanded by the collector's config loader; ``file:/path`` is
read by :func:`patrol.contract.secrets.resolve_secret`, as everywhere in Patrol.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr

from patrol.contract.secrets import resolve_secret


def _secret(raw: Any) -> Any:
    # Anything but text (a SecretStr passed in code) is left for SecretStr to judge.
    return resolve_secret(raw) if isinstance(raw, str) else raw


Secret = Annotated[SecretStr, BeforeValidator(_secret)]

PRIORITIES = ("P1", "P2", "P3", "P4")


class AdapterSettings(BaseModel):
    """Keys every ``helpdesks:`` entry accepts; adapters add their own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    max_concurrency: int = Field(default=4, ge=1, le=64,
                                 description="requests in flight to this helpdesk at once")
    ca_file: Path | None = None
    verify_tls: bool = True
    priority_map: dict[str, Any] = Field(default_factory=dict,
                                         description="P1..P4 -> the helpdesk's priority")
    category_map: dict[str, Any] = Field(default_factory=dict)
    project: str | None = None  # default project / queue / group when no route names one
    wont_fix_statuses: list[str] = Field(default_factory=list,
                                         description="helpdesk statuses that mean won't fix")

    def mapped_priority(self, priority: str, defaults: dict[str, Any]) -> Any:
        return self.priority_map.get(priority, defaults[priority])
