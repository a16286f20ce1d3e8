"""The options of the ``tls_cert`` check (TlsCertCheck), validated once, in the child."""

from __future__ import annotations

from pathlib import Path

from patrol.checks.config import CheckConfig


class TlsCertConfig(CheckConfig):
    path: Path
