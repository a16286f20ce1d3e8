"""The ``http`` check's configuration: URL, request, expected status and body.

Kept apart from :mod:`checks.http` (which runs the request) so each file has one job,
and the agent runs the check without pydantic (:mod:`patrol.checks.schemas`).
``expect_status`` entries are ``200``, ``"2xx"`` or ``"200-399"``; header values whose
names look like credentials become secrets (``file:/path`` works, and the value never
shows in JSON or logs).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
    TypeAdapter,
    field_validator,
    model_validator,
)

from patrol.checks.config import CheckConfig, Regex, Secret, SecretValue
from patrol.checks.http import parse_status
from patrol.contract.netconfig import CaBundle

SECRET_HEADER = re.compile(r"auth|token|secret|key|password|cookie|session", re.IGNORECASE)
def _to_headers(raw: Any) -> dict[str, str | Secret]:
    """Header values as strings; values of credential-like names become secrets
    (so ``file:/path`` works and the value never shows in JSON or logs)."""
    # ValueError, not TypeError: pydantic turns only ValueError into a validation message.
    if not isinstance(raw, dict):
        raise ValueError("expected a mapping of header name to value")
    out: dict[str, str | Secret] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not isinstance(value, (str, Secret)):
            raise ValueError(f"header {name!r}: name and value must be strings")
        is_secret = SECRET_HEADER.search(name)
        out[name] = TypeAdapter(SecretValue).validate_python(value) if is_secret else value
    return out


Headers = Annotated[
    dict[str, Any],
    BeforeValidator(_to_headers),
    PlainSerializer(lambda h: {k: "***" if isinstance(v, Secret) else v for k, v in h.items()}),
]


def _success_or_redirect() -> list[int | str]:
    return ["200-399"]


class HttpConfig(CheckConfig):
    url: str
    method: Literal["GET", "HEAD", "POST"] = "GET"
    body: str | None = None
    expect_status: list[int | str] = Field(default_factory=_success_or_redirect, min_length=1)
    body_match: Regex | None = None
    body_not_match: Regex | None = None
    headers: Headers = Field(default_factory=dict)
    ca_file: CaBundle | None = None
    insecure: bool = False
    follow_redirects: bool = True

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        # Not named _url: pydantic lets a subclass's validator of the same name replace
        # CheckConfig._url, which would stop checking ``runbook`` on http checks.
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL; write it like https://host/health")
        return value

    @field_validator("expect_status", mode="before")
    @classmethod
    def _statuses(cls, value: Any) -> Any:
        values = value if isinstance(value, list) else [value]
        for item in values:
            parse_status(item)
        return values

    @model_validator(mode="after")
    def _consistent(self) -> HttpConfig:
        if self.method == "HEAD" and (self.body_match or self.body_not_match):
            raise ValueError("HEAD responses have no body; use GET with body_match")
        if self.insecure and self.ca_file:
            raise ValueError("insecure: true skips verification, so ca_file would be ignored")
        return self
