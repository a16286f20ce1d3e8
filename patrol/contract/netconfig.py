"""Where a daemon listens and which certificates it uses: options both configs share.

The agent (``agent:``) and the collector (``collector:``) each serve HTTP(S) on a
``listen`` address with an optional ``tls_cert`` / ``tls_key`` pair, and the agent
trusts a ``ca_file`` for its collectors. Both configs take these from
:class:`ListenSettings` and the path types here, so the same mistake reads the same
at ``FILE:LINE`` whichever file it is in. Files are checked when the config is read,
not at the first TLS handshake.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator, model_validator

_LISTEN = re.compile(r"\[([0-9a-fA-F:.]+)\]:(\d+)|([^:\[\]]*):(\d+)")


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9731`` for IPv6, ``:9731`` for every address) ->
    (host, port). Port 0 asks the system for a free port (the tests use it)."""
    match = _LISTEN.fullmatch(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not HOST:PORT; write it like 127.0.0.1:9731")
    host = match.group(1) or match.group(3) or "0.0.0.0"
    port = int(match.group(2) or match.group(4))
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range; use 1-65535, or 0 for any free port")
    return host, port


def _pem_file(value: Path) -> Path:
    if not value.is_file():
        raise ValueError(f"{value} does not exist; give the path of a PEM file")
    return value


def _ca_bundle(value: Path) -> Path:
    if not value.is_file():
        raise ValueError(f"{value} does not exist; give the path of a PEM CA bundle")
    return value


PemFile = Annotated[Path, AfterValidator(_pem_file)]
"""A certificate or key file that must exist now."""

CaBundle = Annotated[Path, AfterValidator(_ca_bundle)]
"""A PEM bundle of the CAs to trust instead of the system's store; must exist now."""


def tls_pair(cert: Path | None, key: Path | None) -> None:
    """A certificate without its key (or the reverse) is a mistake, not plain HTTP."""
    if (cert is None) != (key is None):
        raise ValueError("tls_cert and tls_key go together; set both or neither")


class ListenSettings(BaseModel):
    """``listen``, ``tls_cert`` and ``tls_key``: how a daemon serves HTTP(S).

    A subclass gives ``listen`` its own default port (``listen: str = "..."``); the
    validators here apply to it all the same."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: str
    tls_cert: PemFile | None = None
    tls_key: PemFile | None = None

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> Self:
        tls_pair(self.tls_cert, self.tls_key)
        return self

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) to bind."""
        return parse_listen(self.listen)
