"""Check sets from the collector, merged into the host's own config.

The last good set is kept in ``STATE_DIR/check_sets.yaml`` (written by
:mod:`agent.check_set_pull`), so an agent restarted while the collector is down runs
the same checks. Each start and reload merges it into the local config:

- **local wins**: a remote check with a local check's name is not run, and the
  conflict is reported with both places: the remote check at its line in the stored
  file, the local one at its FILE:LINE;
- **the host decides what runs**: a type not in ``agent.check_sets.allow_types`` is
  refused (by default every type that starts a process: :data:`COMMAND_TYPES`);
- **no local references**: a remote check may not use ``${VAR}`` or ``file:`` values,
  which would read this host's environment or files into a check the collector wrote
  (an ``http`` check could then send a secret anywhere); such checks belong in the
  local config;
- a check that fails validation with this agent's registry is refused alone.

Every refusal is logged and counted (``patrol_check_set_rejected_total{reason}``) and
none is ever run. A whole new version that fails validation is never stored: see
:func:`candidate_problems`.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from patrol.agent.runtime_config import COMMAND_TYPES, AgentConfig, ConfiguredCheck
from patrol.contract.yamlsource import Problem, SourceList, SourceMap, load

log = logging.getLogger("patrol.agent")

STORE_FILE = "check_sets.yaml"
CANDIDATE_FILE = "check_sets.candidate.yaml"


@dataclass
class CheckSetState:
    """What the agent applied and refused, for its /metrics; lives across reloads."""

    version: str | None = None
    running: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # reason -> checks
    pulls: Counter[str] = field(default_factory=Counter)  # result -> pulls


@dataclass(frozen=True)
class RemoteEntry:
    set_name: str
    entry: SourceMap
    line: int


def read_sets(path: Path, problems: list[Problem]) -> tuple[str | None, list[RemoteEntry]]:
    """The version and check entries of a stored (or candidate) file. Read without
    ``${VAR}`` expansion: the text is the collector's, not this host's operator's."""
    tree, found = load(path)
    problems.extend(found)
    if tree is None:
        return None, []
    file = str(path)
    sets = tree.get("sets") if isinstance(tree, SourceMap) else None
    version = tree.get("version") if isinstance(tree, SourceMap) else None
    if not isinstance(sets, SourceList) or not isinstance(version, str):
        problems.append(Problem(file, 1, "not a check-set file (expected 'version' and a "
                                "'sets' list); the next pull replaces it"))
        return None, []
    entries: list[RemoteEntry] = []
    for index, one in enumerate(sets):
        checks = one.get("checks") if isinstance(one, SourceMap) else None
        name = one.get("name") if isinstance(one, SourceMap) else None
        if not isinstance(checks, SourceList) or not isinstance(name, str):
            problems.append(Problem(file, sets.lines[index], "expected a set with 'name' and "
                                    "a 'checks' list"))
            continue
        entries.extend(RemoteEntry(name, entry, checks.lines[i])
                       for i, entry in enumerate(checks))
    return version, entries


def local_reference(node: Any) -> str | None:
    """The first ``${VAR}`` or ``file:`` value in a check entry, if any."""
    if isinstance(node, dict):
        node = list(node.values())
    if isinstance(node, list):
        return next((found for v in node if (found := local_reference(v))), None)
    if isinstance(node, str) and ("${" in node or node.startswith("file:")):
        return node[:60]
    return None


def candidate_problems(path: Path, allowed: set[str]) -> list[Problem]:
    """Why a freshly pulled set must not replace the last good one: the file does not
    parse, or a check this host would run fails validation. Types this host refuses are
    not validated (their module may not even be installed here). Validation imports
    pydantic: the running agent calls this in its validating child (agent/validation.py)."""
    from patrol.agent.config import validate_check

    problems: list[Problem] = []
    _, entries = read_sets(path, problems)
    names: set[str] = set()
    for remote in entries:
        entry = remote.entry
        name = entry.get("name") if isinstance(entry, SourceMap) else None
        if isinstance(name, str) and name in names:
            problems.append(Problem(str(path), remote.line, "duplicate check name in the "
                                    "check sets", check=name))
        names.add(str(name))
        if isinstance(entry, SourceMap) and entry.get("type") not in allowed:
            continue
        validate_check(entry, str(path), remote.line, problems)
    return problems


def merge(config: AgentConfig, state_dir: Path, state: CheckSetState) -> AgentConfig:
    """``config`` with the stored set's checks that this host accepts added after its
    own; every refusal logged and counted in ``state``."""
    path = Path(state_dir) / STORE_FILE
    if not path.is_file():
        state.version, state.running = None, 0
        return config
    problems: list[Problem] = []
    version, entries = read_sets(path, problems)
    for problem in problems:
        log.error("check sets: %s", problem)
    local = {c.config.name: c for c in config.checks}
    allowed = set(config.agent.check_sets.allow_types)
    added: list[ConfiguredCheck] = []
    for remote in entries:
        configured, reason, why = _accept(remote, path, local, allowed)
        if configured is None:
            state.rejected[reason] += 1
            log.warning("%s", why)
            continue
        local[configured.config.name] = configured
        added.append(configured)
    state.version, state.running = version, len(added)
    if added:
        log.info("check sets %s: running %d remote checks", version, len(added))
    return replace(config, checks=[*config.checks, *added], files=[*config.files, str(path)])


def _accept(remote: RemoteEntry, path: Path, taken: dict[str, ConfiguredCheck],
            allowed: set[str]) -> tuple[ConfiguredCheck | None, str, str]:
    """The configured check, or None with the reason (a metric label) and the message."""
    entry = remote.entry
    name = entry.get("name") if isinstance(entry, SourceMap) else None
    check_type = entry.get("type") if isinstance(entry, SourceMap) else None
    where = f"{path}:{remote.line}: check '{name}' from check set '{remote.set_name}'"
    other = taken.get(name) if isinstance(name, str) else None
    if other is not None:
        return None, "local_conflict", (f"{where} is not run: the check at {other.file}:"
                                        f"{other.line} has this name, and local checks win; "
                                        "rename one of them")
    if check_type not in allowed:
        runs = COMMAND_TYPES.get(str(check_type))
        return None, "type_not_allowed", (
            f"{where} is refused: type '{check_type}' is not in agent.check_sets.allow_types"
            + (f" (it runs {runs})" if runs else "") + "; list it there to accept it")
    reference = local_reference(entry)
    if reference is not None:
        return None, "local_reference", (
            f"{where} is refused: {reference!r} would read this host's environment or files; "
            "define checks that need local secrets in the local config")
    from patrol.agent.config import validate_check  # pydantic: in the validating child

    problems: list[Problem] = []
    configured = validate_check(entry, str(path), remote.line, problems)
    if configured is None or problems:
        return None, "invalid", f"{where} is refused: " + "; ".join(str(p) for p in problems)
    return configured, "", ""
