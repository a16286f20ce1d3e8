"""``folder_entries``: how many entries a folder holds (a spool, an upload queue)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

from patrol.checks.base import (
    CheckError,
    ContractLab,
    Measurement,
    MeasurementSpec,
    Result,
    RunContext,
)
from patrol.checks.config import CheckConfig


class FolderEntriesConfig(CheckConfig):
    path: str


class FolderEntriesCheck:
    """Entries in ``path``; warning at 1000, critical at 10000 by default."""

    type: ClassVar[str] = "folder_entries"
    Config: ClassVar[type[CheckConfig]] = FolderEntriesConfig
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = (
        MeasurementSpec("entries", "files and folders directly in path", True, 1000, 10000,
                        primary=True),
    )
    REQUIRES: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: FolderEntriesConfig) -> None:
        self.config = config

    def run(self, ctx: RunContext) -> Result:
        try:
            count = len(os.listdir(self.config.path))
        except OSError as exc:
            raise CheckError(f"cannot list {self.config.path}: {exc.strerror}") from exc
        measurement = Measurement("entries", float(count))
        return Result(ctx.judge(measurement),
                      f"{self.config.path} holds {count} entries on {ctx.hostname}",
                      (measurement,))


def contract_target(lab: ContractLab) -> Mapping[str, Any]:
    """Patrol's contract suite runs the check on its scratch folder."""
    return {"path": str(lab.directory)}


class UntestedConfig(CheckConfig):
    pass


class UntestedCheck:
    """A check whose author named no contract target: Patrol reports it, no more."""

    type: ClassVar[str] = "demo_untested"
    Config: ClassVar[type[CheckConfig]] = UntestedConfig
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = ()
    REQUIRES: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: UntestedConfig) -> None:
        self.config = config

    def run(self, ctx: RunContext) -> Result:
        raise CheckError("never run by the contract suite")
