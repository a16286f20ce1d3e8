"""The options of the ``kernel`` check (KernelCheck), validated once, in the child."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from patrol.checks.config import CheckConfig, Duration, Regex


class KernelConfig(CheckConfig):
    """``source``: where to read (``auto`` picks the first readable of /dev/kmsg, the
    journal, dmesg); ``lookback``: how far the first run looks back; ``ignore``:
    regexes of lines to leave out; ``userspace``: count lines programs wrote too."""

    source: Literal["auto", "kmsg", "journal", "dmesg"] = "auto"
    lookback: Duration = Field(default=3600.0, le=30 * 86400)
    ignore: list[Regex] = Field(default_factory=list)
    userspace: bool = False
    max_lines: int = Field(default=50, ge=1, le=500)
