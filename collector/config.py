"""The collector's config file: a ``collector:`` block (and, as they land, policy).

Validated like the agent's: every problem at once, as
``FILE:LINE: collector, option 'KEY': what is wrong; what to do``. Agent tokens and
operator tokens are distinct lists, so a leaked agent token can post events but
never close a ticket.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from patrol.collector.check_sets import CheckSets
from patrol.collector.dispatch.routing import TicketingSettings
from patrol.collector.policy.maintenance import MaintenanceWindow
from patrol.collector.policy.settings import PolicyConfig, Seconds
from patrol.collector.reports.schedule import ReportsSettings
from patrol.contract.explain import validated
from patrol.contract.netconfig import ListenSettings
from patrol.contract.secrets import resolve_secret
from patrol.contract.yamlsource import (
    ConfigError,
    Problem,
    SourceList,
    SourceMap,
    read_tree,
)

DEFAULT_LISTEN = "127.0.0.1:9732"
TOP_LEVEL_KEYS = ("collector", "policy", "maintenance", "ticketing", "reports", "check_sets")


class CollectorSettings(ListenSettings):
    """The ``collector:`` block (``listen``, ``tls_cert``, ``tls_key``: :class:`ListenSettings`)."""

    listen: str = DEFAULT_LISTEN
    store: str = "sqlite:///state/collector.db"
    agent_tokens: list[str] = Field(default_factory=list)
    operator_tokens: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    watchdog_interval: Seconds = Field(default=10.0, gt=0, le=3600)
    # Received events (kept so a retried POST is recognised) and delivered helpdesk
    # actions are deleted after this long; tickets and their timelines are kept.
    retention: Seconds = Field(default=30 * 86400, ge=86400)
    # Ticket bodies and reports in English or Simplified Chinese (collector/i18n.py).
    language: Literal["en", "zh-CN"] = "en"
    # The operator's own first actions per check type (collector/tickets/knowledge.py).
    knowledge_file: Path | None = None

    @field_validator("store")
    @classmethod
    def _store(cls, value: str) -> str:
        if not (value.startswith("sqlite:///") or value.startswith(("postgresql://",
                                                                    "postgres://"))):
            raise ValueError(f"{value!r} is not a store URL; write sqlite:///path/to/file.db "
                             "or postgresql://user@host/db")
        return value

    @field_validator("agent_tokens", "operator_tokens", mode="before")
    @classmethod
    def _tokens(cls, value: object) -> list[str]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ValueError("expected a list of tokens")
        tokens = [resolve_secret(v) for v in value]  # file:/path or inline
        tokens = [t for t in tokens if t]  # ${VAR:-} with VAR unset means "none"
        for token in tokens:
            if len(token) < 16:
                raise ValueError("a token must be at least 16 characters; generate one with "
                                 "python -c 'import secrets; print(secrets.token_urlsafe(32))'")
        return tokens

    @model_validator(mode="after")
    def _distinct(self) -> CollectorSettings:
        if set(self.agent_tokens) & set(self.operator_tokens):
            raise ValueError("agent_tokens and operator_tokens must differ; an agent token "
                             "must never be able to act on tickets")
        return self


@dataclass(frozen=True)
class CollectorConfig:
    collector: CollectorSettings
    file: str
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    maintenance: list[MaintenanceWindow] = field(default_factory=list)
    ticketing: TicketingSettings = field(default_factory=TicketingSettings)
    helpdesks: dict[str, Any] = field(default_factory=dict)  # name -> adapter Config
    reports: ReportsSettings = field(default_factory=ReportsSettings)
    check_sets: CheckSets = field(default_factory=CheckSets)


def is_collector_config(path: str | Path) -> bool:
    """Whether a YAML file is a collector config (for ``patrol validate``)."""
    from patrol.contract.yamlsource import load

    tree, _ = load(path)
    return isinstance(tree, dict) and "collector" in tree


def load_collector_config(path: str | Path) -> CollectorConfig:
    """Read and validate; raises :class:`ConfigError` with every problem."""
    path = Path(path)
    problems: list[Problem] = []
    tree = read_tree(path, problems, TOP_LEVEL_KEYS)
    if tree is None:
        raise ConfigError(problems)
    node = tree.get("collector", SourceMap())
    if not isinstance(node, SourceMap):
        problems.append(Problem(str(path), tree.lines.get("collector", 1),
                                "expected a mapping of collector settings", section="collector"))
        raise ConfigError(problems)
    settings = validated(CollectorSettings, node, problems, section="collector")
    policy = _policy(tree, problems)
    windows = _maintenance(tree, problems)
    ticketing, helpdesks = _ticketing(tree, problems)
    _page_problems(tree, policy, ticketing, problems)
    reports = _reports(tree, path, problems)
    check_sets = _check_sets(tree, path, problems)
    if settings is not None and settings.knowledge_file is not None:
        settings = _knowledge_file(settings, path, problems)
    if problems or settings is None:
        raise ConfigError(sorted(problems, key=lambda p: p.line))
    return CollectorConfig(settings, str(path), policy, windows, ticketing, helpdesks,
                           reports, check_sets)


def _check_sets(tree: SourceMap, path: Path, problems: list[Problem]) -> CheckSets:
    """Central check sets (collector/check_sets.py): shapes only; agents validate the
    checks with their own registry. Paths are relative to this config's folder."""
    from patrol.collector.check_sets import parse_check_sets

    return parse_check_sets(tree, path.parent, problems)


def _knowledge_file(settings: CollectorSettings, path: Path,
                    problems: list[Problem]) -> CollectorSettings:
    """The operator's knowledge file, relative to this config's folder, checked now so a
    mistake is named at start-up (its own FILE:LINE), not on the knowledge page."""
    from patrol.collector.tickets.knowledge import load_operator_knowledge

    where = settings.knowledge_file
    if where is None:  # the caller asks only when there is one
        return settings
    if not where.is_absolute():
        where = path.parent / where
    try:
        load_operator_knowledge(where)
    except ConfigError as exc:
        problems.extend(exc.problems)
    return settings.model_copy(update={"knowledge_file": where})


def _ticketing(tree: SourceMap, problems: list[Problem]) -> tuple[TicketingSettings,
                                                                   dict[str, Any]]:
    """The routing settings, and each helpdesk validated by its adapter's own model."""
    from patrol.ticketing_bridge import registry

    node = tree.get("ticketing", SourceMap())
    settings = validated(TicketingSettings, node, problems, section="ticketing")
    helpdesks: dict[str, Any] = {}
    entries = node.get("helpdesks", SourceMap())
    for name, entry in (entries.items() if isinstance(entries, SourceMap) else ()):
        section = f"helpdesk '{name}'"
        if not isinstance(entry, SourceMap):
            problems.append(Problem(node.file, entries.lines[name], "expected a mapping with "
                                    "at least 'type'", section=section))
            continue
        try:
            model = registry.config_model(str(entry.get("type")))
        except registry.UnknownHelpdesk as exc:
            problems.append(Problem(node.file, entry.lines.get("type", entry.line),
                                    str(exc), section=section, option="type"))
            continue
        # Duplicate keys inside were reported with the whole ticketing block.
        config = validated(model, entry, problems, section=section, duplicates=False)
        if config is not None:
            helpdesks[name] = config
    if settings is None:
        return TicketingSettings(), {}
    routes = node.get("routes")
    for index, route in enumerate(settings.routes):
        if route.helpdesk not in settings.helpdesks:
            line = routes.lines[index] if isinstance(routes, SourceList) else node.line
            known = ", ".join(sorted(settings.helpdesks)) or "none configured"
            problems.append(Problem(node.file, line, f"route {index + 1} sends to unknown "
                                    f"helpdesk '{route.helpdesk}'; known: {known}",
                                    section="ticketing", option="routes"))
    if settings.helpdesks and not settings.routes:
        problems.append(Problem(node.file, node.line, "helpdesks are configured but no route "
                                "sends tickets to them; add e.g. 'routes: [{helpdesk: NAME}]'",
                                section="ticketing"))
    return settings, helpdesks


def _page_problems(tree: SourceMap, policy: PolicyConfig, ticketing: TicketingSettings,
                   problems: list[Problem]) -> None:
    """``policy.escalation.page`` must name a configured helpdesk."""
    page = policy.escalation.page
    if page is None or page in ticketing.helpdesks:
        return
    node = tree.get("policy", SourceMap()).get("escalation", SourceMap())
    known = ", ".join(sorted(ticketing.helpdesks)) or "none configured"
    problems.append(Problem(tree.file, node.lines.get("page", node.line),
                            f"escalation page '{page}' is not a configured helpdesk; known: "
                            f"{known}", section="policy", option="escalation.page"))


def _policy(tree: SourceMap, problems: list[Problem]) -> PolicyConfig:
    policy = validated(PolicyConfig, tree.get("policy", SourceMap()), problems, section="policy")
    return policy or PolicyConfig()


def _maintenance(tree: SourceMap, problems: list[Problem]) -> list[MaintenanceWindow]:
    node = tree.get("maintenance")
    if node is None:
        return []
    if not isinstance(node, SourceList):
        problems.append(Problem(tree.file, tree.lines["maintenance"], "expected a list of "
                                "windows ('- name: ...' entries)", section="maintenance"))
        return []
    windows, names = [], set()
    for index, entry in enumerate(node):
        name = entry.get("name") if isinstance(entry, dict) else None
        section = f"maintenance '{name}'" if name else f"maintenance #{index + 1}"
        window = validated(MaintenanceWindow, entry, problems, section=section)
        if window is None:
            continue
        if window.name in names:
            problems.append(Problem(tree.file, node.lines[index], "duplicate window name; "
                                    "give each window a unique name", section=section))
        names.add(window.name)
        windows.append(window)
    return windows


def _reports(tree: SourceMap, path: Path, problems: list[Problem]) -> ReportsSettings:
    """The ``reports:`` section (collector/reports/schedule.py): each scheduled report
    needs an archive folder (its own or ``reports.archive``; relative to this config's
    folder) and an ``smtp`` block to mail with."""
    node = tree.get("reports")
    if node is None:
        return ReportsSettings()
    if not isinstance(node, SourceMap):
        problems.append(Problem(tree.file, tree.lines["reports"], "expected a mapping "
                                "(timezone, archive, smtp, daily, retro)", section="reports"))
        return ReportsSettings()
    settings = validated(ReportsSettings, node, problems, section="reports")
    if settings is None:
        return ReportsSettings()
    scheduled = settings.scheduled()
    if scheduled and settings.smtp is None:
        problems.append(Problem(tree.file, tree.lines["reports"], "scheduled reports are "
                                "mailed; add an smtp block (host, from, ...: the email "
                                "helpdesk's keys)", section="reports"))
    daily = node.get("daily")
    if isinstance(daily, SourceMap) and "period" in daily:
        problems.append(Problem(tree.file, daily.lines["period"], "a daily report "
                                "covers one day; period belongs to retro",
                                section="reports", option="daily.period"))
    for kind in scheduled:
        if settings.archive_of(kind) is None:
            problems.append(Problem(tree.file, node.lines[kind], "a scheduled report is "
                                    "kept in an archive folder; set reports.archive or "
                                    f"reports.{kind}.archive", section="reports",
                                    option=kind))

    def anchored(folder: Path | None) -> Path | None:
        return folder if folder is None or folder.is_absolute() else path.parent / folder

    update: dict[str, Any] = {"archive": anchored(settings.archive)}
    for kind, schedule in scheduled.items():
        update[kind] = schedule.model_copy(update={"archive": anchored(schedule.archive)})
    return settings.model_copy(update=update)
