"""The agent's config file: an ``agent:`` block, a ``checks:`` list, ``include:``.

:func:`load_config` reads the file and its included folder and validates the
whole thing, collecting *every* problem before it gives up, each as
``FILE:LINE: check 'NAME', option 'KEY': what is wrong; what to do``. A bad value
never becomes a default. A check whose database driver is not installed is not a
config error: it is kept, flagged, and reports UNKNOWN with the install hint, so
it breaks only itself.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from patrol.agent.runtime_config import (
    COMMAND_TYPES,
    REMOTE_DEFAULT_TYPES,
    AgentConfig,
    ConfiguredCheck,
)
from patrol.checks import registry, thresholds
from patrol.checks.config import LABEL_NAME, CheckConfig, Duration, Secret, SecretValue, Size
from patrol.contract.explain import problems_from, validated
from patrol.contract.netconfig import CaBundle, ListenSettings
from patrol.contract.yamlsource import (
    ConfigError,
    Problem,
    SourceList,
    SourceMap,
    duplicate_problems,
    line_of,
    plain,
    read_tree,
)

DEFAULT_LISTEN = "127.0.0.1:9731"
TOP_LEVEL_KEYS = ("agent", "checks", "include")
__all__ = ["COMMAND_TYPES", "REMOTE_DEFAULT_TYPES", "AgentConfig", "AgentSettings",
           "ConfigError", "ConfiguredCheck", "load_config", "validate_check"]


def _empty_is_none(value: Secret | None) -> Secret | None:
    # ${PATROL_TOKEN:-} with the variable unset means "no token", not "".
    return value if value is None or value.reveal() else None


Token = Annotated[SecretValue | None, AfterValidator(_empty_is_none)]
"""A bearer token (inline, ``${VAR}`` or ``file:``); empty means none."""


class DiagnosticsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    time_budget: Duration = 2.0
    size_budget: Size = 64 * 1024


class CollectorEndpoint(BaseModel):
    """One collector the agent delivers events and heartbeats to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    token: Token = None
    ca_file: CaBundle | None = None

    @field_validator("url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        value = value.strip()
        if not re.fullmatch(r"https?://[^/\s?#]+/?", value):
            raise ValueError(f"{value!r} is not a collector base URL; write it like "
                             "https://collector.example:9732 (no path)")
        return value.rstrip("/")


def _endpoint_list(value: object) -> object:
    """``collector:`` may be one endpoint mapping or a list of them."""
    return [value] if isinstance(value, dict) else value


class CheckSetSettings(BaseModel):
    """``agent.check_sets``: pull checks the collector assigns (collector/check_sets.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pull: bool = False
    # At least 10 s: an unchanged set costs one 304, but thousands of agents add up.
    interval: Duration = Field(default=300.0, ge=10, le=86400)
    allow_types: list[str] = Field(default_factory=lambda: list(REMOTE_DEFAULT_TYPES))

    @field_validator("allow_types")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        known = registry.known_types()
        for name in value:
            if name not in known:
                raise ValueError(f"unknown check type {name!r}; known types: "
                                 + ", ".join(known))
        return value


class AgentSettings(ListenSettings):
    """The ``agent:`` block (``listen``, ``tls_cert``, ``tls_key``: :class:`ListenSettings`)."""

    listen: str = DEFAULT_LISTEN
    hostname: str = Field(default_factory=socket.gethostname)
    labels: dict[str, str] = Field(default_factory=dict)
    state_dir: Path = Path("state")
    interval: Duration = 60.0
    timeout: Duration = 10.0
    token: Token = None
    workers: int = Field(default=8, ge=1, le=64)
    jitter: Duration | None = None
    diagnostics: DiagnosticsSettings = DiagnosticsSettings()
    collector: list[CollectorEndpoint] = Field(default_factory=list)
    # At least a second: the collector judges silence by this interval, so a tiny one
    # (1e-9) would make every host look unreachable.
    heartbeat_interval: Duration = Field(default=30.0, ge=1, le=86400)
    outbox_cap: int = Field(default=100_000, ge=100)
    # Extra names (query parameters, keys, KEY=value, --options) to mask everywhere.
    secret_names: list[str] = Field(default_factory=list)
    check_sets: CheckSetSettings = CheckSetSettings()

    @field_validator("collector", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return _endpoint_list(value)

    @field_validator("collector")
    @classmethod
    def _unique_urls(cls, value: list[CollectorEndpoint]) -> list[CollectorEndpoint]:
        urls = [e.url for e in value]
        if len(set(urls)) != len(urls):
            raise ValueError("the same collector url is listed twice; list each once")
        return value

    @field_validator("labels")
    @classmethod
    def _label_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not LABEL_NAME.match(key) or key.startswith("__") or key == "version":
                raise ValueError(f"label name {key!r} is not valid; use letters, digits and "
                                 "underscores, not starting with __, and not 'version'")
        return value


def validate_check(entry: Any, file: str, line: int, problems: list[Problem]
                   ) -> ConfiguredCheck | None:
    """One ``checks:`` entry (a :class:`SourceMap`) validated with the check registry;
    None, with its problems appended, when it cannot run. (Check sets from a collector
    are validated by this too: agent/check_sets.py.)"""
    if not isinstance(entry, SourceMap):
        problems.append(Problem(file, line, "each check must be a mapping with at least "
                                "'name' and 'type'; see configs/agent.yaml", section="checks"))
        return None
    name = entry.get("name")
    label = name if isinstance(name, str) else None
    duplicate_problems(entry, problems, label, None if label else "checks")
    if label is None:
        problems.append(Problem(file, line, "required option is missing; give the check a "
                                "unique name", check=None, option="name", section="checks"))
        return None
    check_type = entry.get("type")
    if not isinstance(check_type, str):
        problems.append(Problem(file, entry.lines.get("type", line),
                                "required option is missing; set it to one of: "
                                + ", ".join(registry.known_types()), check=label, option="type"))
        return None
    try:
        cls = registry.load(check_type)
    except registry.MissingDriver as exc:
        # Breaks only this check: validate the common keys, run it as UNKNOWN.
        base = {k: v for k, v in plain(entry).items() if k in CheckConfig.model_fields
                or k == "for"}
        try:
            common = CheckConfig.model_validate(base)
        except ValidationError:
            common = CheckConfig.model_construct(name=label, type=check_type)
        return ConfiguredCheck(common, None, file, line, missing_driver=str(exc))
    except registry.UnknownCheckType as exc:
        problems.append(Problem(file, entry.lines["type"], f"unknown check type "
                                f"'{check_type}'; " + str(exc).split("; ", 1)[1],
                                check=label, option="type"))
        return None
    config: CheckConfig | None
    try:
        config = cls.Config.model_validate(plain(entry))
    except ValidationError as exc:
        problems.extend(problems_from(exc, cls.Config, entry, check=label))
        config = None
    # Unit mistakes in thresholds are reported even when another key is wrong, so
    # the operator sees every problem in one pass.
    judged = config or _threshold_view(entry)
    if judged is not None:
        for loc, message in thresholds.problems(judged, cls.MEASUREMENTS):
            problems.append(Problem(file, line_of(entry, loc), message, check=label,
                                    option=".".join(str(p) for p in loc)))
    return None if config is None else ConfiguredCheck(config, cls, file, line)


_THRESHOLD_KEYS = ("name", "type", "warning", "critical", "recover", "thresholds", "overrides")


def _threshold_view(entry: SourceMap) -> CheckConfig | None:
    """Just the threshold keys of an entry whose other keys failed validation."""
    try:
        return CheckConfig.model_validate({k: plain(entry[k]) for k in _THRESHOLD_KEYS
                                           if k in entry})
    except ValidationError:
        return None


def _check_entries(tree: SourceMap, problems: list[Problem]) -> list[tuple[Any, str, int]]:
    checks = tree.get("checks")
    if checks is None:
        return []
    if not isinstance(checks, SourceList):
        problems.append(Problem(tree.file, tree.lines["checks"], "expected a list of checks "
                                "('- name: ...' entries)", section="checks"))
        return []
    return [(entry, tree.file, checks.lines[i]) for i, entry in enumerate(checks)]


def load_config(path: str | Path) -> AgentConfig:
    """Read and validate an agent config; raises :class:`ConfigError` with every problem."""
    path = Path(path)
    problems: list[Problem] = []
    warnings: list[str] = []
    tree = read_tree(path, problems, TOP_LEVEL_KEYS)
    if tree is None:
        raise ConfigError(problems)
    files = [str(path)]
    agent_node = tree.get("agent", SourceMap())
    if not isinstance(agent_node, SourceMap):
        agent_node = SourceMap()
        problems.append(Problem(str(path), tree.lines["agent"], "expected a mapping of agent "
                                "settings", section="agent"))
    agent = validated(AgentSettings, agent_node, problems, section="agent")

    entries = _check_entries(tree, problems)
    include = tree.get("include")
    if include is not None:
        folder = Path(include) if Path(str(include)).is_absolute() else path.parent / str(include)
        if not folder.is_dir():
            problems.append(Problem(str(path), tree.lines["include"], f"folder {folder} does "
                                    "not exist; create it or remove 'include'",
                                    option="include"))
        else:
            for extra in sorted(folder.glob("*.y*ml")):
                files.append(str(extra))
                sub = read_tree(extra, problems, ("checks",))
                if sub is not None:
                    entries.extend(_check_entries(sub, problems))

    checks: list[ConfiguredCheck] = []
    seen: dict[str, tuple[str, int]] = {}
    for entry, file, line in entries:
        name = entry.get("name") if isinstance(entry, SourceMap) else None
        duplicate = isinstance(name, str) and name in seen
        if duplicate and isinstance(name, str):  # (duplicate implies a str name)
            first_file, first_line = seen[name]
            problems.append(Problem(file, line, f"duplicate check name (first defined at "
                                    f"{first_file}:{first_line}); give each check a unique name",
                                    check=name))
        elif isinstance(name, str):
            seen[name] = (file, line)
        # A duplicate is still validated: renaming it must not reveal new problems.
        configured = validate_check(entry, file, line, problems)
        if configured is None or duplicate:
            continue
        if configured.missing_driver:
            warnings.append(f"{file}:{line}: check '{name}': {configured.missing_driver}")
        checks.append(configured)
    if problems or agent is None:
        raise ConfigError(sorted(problems, key=lambda p: (files.index(p.file)
                                                          if p.file in files else 0, p.line)))
    return AgentConfig(agent, checks, files, warnings)
