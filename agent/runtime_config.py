"""The agent's validated config as the running agent holds it, without pydantic.

:func:`patrol.agent.config.load_config` validates with pydantic models; the running
``patrol agent`` gets the same :class:`AgentConfig` from a short-lived child
(:mod:`patrol.agent.validate_child`), with every model turned into a frozen
:class:`~patrol.checks.values.PlainConfig` of the same attributes. Everything here reads
attributes only, so both forms work (``Agent(path, load_config(path))`` in tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from patrol.checks import registry
from patrol.checks.values import Secret, field_names, to_plain

if TYPE_CHECKING:
    from patrol.agent.config import AgentSettings
    from patrol.checks.base import Check
    from patrol.checks.config import CheckConfig

# Check types that start a process, so never run from a collector's check set unless
# the host's own config lists them in ``check_sets.allow_types``: what each runs.
COMMAND_TYPES = {
    "nagios": "the plugin its config names, with its arguments",
    "systemd": "systemctl",
    "updates": "apt-get or dnf",
    "disk_health": "smartctl",
    "clock": "chronyc or timedatectl",
}
# Plugin types (entry points) are not in it either: whether they run commands is unknown.
REMOTE_DEFAULT_TYPES = tuple(sorted(t for t in registry.BUILTINS if t not in COMMAND_TYPES))


@dataclass(frozen=True)
class ConfiguredCheck:
    """A validated check entry and where it was written."""

    config: CheckConfig
    cls: type[Check] | None
    file: str
    line: int
    missing_driver: str | None = None


@dataclass(frozen=True)
class AgentConfig:
    agent: AgentSettings
    checks: list[ConfiguredCheck]
    files: list[str]
    warnings: list[str] = field(default_factory=list)

    def secrets(self) -> set[str]:
        """Every secret value in the config, for scrubbing diagnostics."""
        found: set[str] = set()
        models: list[Any] = [self.agent] + [c.config for c in self.checks]
        for model in models:
            for name in field_names(model):
                value = getattr(model, name)
                if isinstance(value, Secret) and value.reveal():
                    found.add(value.reveal())
                elif isinstance(value, dict):
                    found.update(v.reveal() for v in value.values()
                                 if isinstance(v, Secret) and v.reveal())
        found.update(e.token.reveal() for e in self.agent.collector if e.token)
        return found

    def policy(self) -> Any:
        """The one redaction policy for this config (:class:`agent.diagnostics.redact.Policy`)."""
        from patrol.agent.diagnostics.redact import Policy

        return Policy.build(self.secrets(), self.agent.secret_names)


def plain_config(config: AgentConfig) -> AgentConfig:
    """``config`` with its pydantic models as plain frozen data: what the validating
    child sends the agent (pickled, over a pipe)."""
    return AgentConfig(
        to_plain(config.agent),
        [ConfiguredCheck(to_plain(c.config), c.cls, c.file, c.line, c.missing_driver)
         for c in config.checks],
        list(config.files), list(config.warnings))
