"""The options of the ``disk`` check (DiskCheck), validated once, in the child."""

from __future__ import annotations

from pydantic import Field, model_validator

from patrol.checks.config import CheckConfig, Duration


class DiskConfig(CheckConfig):
    path: str | None = None
    paths: list[str] | None = Field(default=None, min_length=1)
    include_fstypes: list[str] | None = Field(default=None, min_length=1)
    exclude_fstypes: list[str] | None = None
    exclude_mounts: list[str] = Field(default_factory=list)
    top: int = Field(default=10, ge=1, le=100)
    diagnose_seconds: Duration = Field(default=1.5, le=30)

    @model_validator(mode="after")
    def _one_selection(self) -> DiskConfig:
        if self.path is not None and self.paths is not None:
            raise ValueError("set either path: or paths:, not both")
        if self.path is not None or self.paths is not None:
            chosen = [k for k in ("include_fstypes", "exclude_fstypes", "exclude_mounts")
                      if k in self.model_fields_set]
            if chosen:
                raise ValueError(
                    f"{chosen[0]} filters the automatic list of mounts and does nothing "
                    "with path:/paths:; remove one of them"
                )
        if self.include_fstypes is not None and self.exclude_fstypes is not None:
            raise ValueError("set either include_fstypes: or exclude_fstypes:, not both")
        return self

    @property
    def chosen_paths(self) -> list[str] | None:
        return [self.path] if self.path is not None else self.paths
