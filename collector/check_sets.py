"""Central check sets: named lists of checks the collector hands to agents by label.

The collector config's ``check_sets:`` section::

    check_sets:
      sets:
        postgres:                      # inline: a list of checks, as in an agent's checks:
          - {name: pg-up, type: postgres, dsn: "postgresql://patrol@127.0.0.1/postgres"}
        base: check-sets/base.yaml     # or a file with a 'checks:' list, or a folder of them
      assign:
        - match: {role: db}            # every host whose labels include role=db
          sets: [postgres]
        - sets: [base]                 # no match: every host

Decisions:

- The collector checks the *shape* only (each check a mapping with a ``name`` and a
  ``type``, names unique across all sets, rules naming known sets), at start-up, on
  ``SIGHUP`` and in ``patrol validate``, each problem at FILE:LINE. Validating a check's
  options needs the check registry, which lives on the agent's side of the arrows
  (``tests/test_architecture.py``); the agent validates with its own registry before it
  applies a set, and keeps the last good one when a set fails.
- A check name is unique across every set, so a host assigned two sets never meets two
  definitions of one check; which host gets which set is a matter of labels only.
- A host's assignment is the sets of every matching rule, in rule order, each once.
  Its ``version`` is a hash of exactly what the agent receives (set names and checks),
  so it changes when, and only when, that host's checks change: it is the ETag.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patrol.contract.yamlsource import (
    Problem,
    SourceList,
    SourceMap,
    duplicate_problems,
    plain,
    read_tree,
)

SECTION = "check_sets"
SET_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


@dataclass(frozen=True)
class Rule:
    """Hosts whose labels include every ``match`` pair get ``sets``."""

    match: dict[str, str]
    sets: tuple[str, ...]

    def applies(self, labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match.items())


@dataclass(frozen=True)
class Assigned:
    """What one host receives: ``(set name, checks)`` pairs and their version."""

    sets: list[tuple[str, list[dict[str, Any]]]]
    version: str

    def as_json(self) -> dict[str, Any]:
        return {"version": self.version,
                "sets": [{"name": name, "checks": checks} for name, checks in self.sets]}


@dataclass(frozen=True)
class CheckSets:
    """The validated section: each set's checks (plain data) and the assignment rules."""

    sets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)

    def for_host(self, labels: dict[str, str]) -> Assigned:
        names: list[str] = []
        for rule in self.rules:
            if rule.applies(labels):
                names.extend(n for n in rule.sets if n not in names)
        chosen = [(name, self.sets[name]) for name in names]
        return Assigned(chosen, version_of(chosen))


def version_of(sets: list[tuple[str, list[dict[str, Any]]]]) -> str:
    """A short content hash of what a host receives (stable across key order)."""
    text = json.dumps(sets, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_check_sets(tree: SourceMap, base: Path, problems: list[Problem]) -> CheckSets:
    """The ``check_sets:`` section of ``tree`` (relative paths from ``base``); every
    problem is appended to ``problems``."""
    node = tree.get(SECTION)
    if node is None:
        return CheckSets()
    if not isinstance(node, SourceMap):
        problems.append(Problem(tree.file, tree.lines[SECTION], "expected a mapping with "
                                "'sets' and 'assign'", section=SECTION))
        return CheckSets()
    duplicate_problems(node, problems, None, SECTION)
    for key in node:
        if key not in ("sets", "assign"):
            problems.append(Problem(node.file, node.lines[key], "unknown option; valid "
                                    "options are 'sets' and 'assign'", section=SECTION,
                                    option=str(key)))
    sets = _sets(node, base, problems)
    rules = _rules(node, sets, problems)
    return CheckSets({name: [plain(c) for c in checks] for name, checks in sets.items()}, rules)


def _sets(node: SourceMap, base: Path, problems: list[Problem]) -> dict[str, list[SourceMap]]:
    entries = node.get("sets", SourceMap())
    if not isinstance(entries, SourceMap):
        problems.append(Problem(node.file, node.lines["sets"], "expected a mapping of set "
                                "names to check lists or file paths", section=SECTION,
                                option="sets"))
        return {}
    sets: dict[str, list[SourceMap]] = {}
    seen: dict[str, tuple[str, int, str]] = {}  # check name -> (file, line, set)
    for name, value in entries.items():
        line = entries.lines[name]
        section = f"check set '{name}'"
        if not isinstance(name, str) or not SET_NAME.match(name):
            problems.append(Problem(node.file, line, "a set name uses letters, digits, '.', "
                                    "'_' and '-' only", section=section))
            continue
        checks = _set_checks(value, node.file, line, base, section, problems)
        kept = []
        for check in checks:
            check_name = str(check.get("name"))  # a string: _shaped kept only those
            if check_name in seen:
                file, first, other = seen[check_name]
                problems.append(Problem(check.file, check.line, f"duplicate check name (first "
                                        f"defined in set '{other}' at {file}:{first}); a check "
                                        "name is unique across all sets", check=check_name))
                continue
            seen[check_name] = (check.file, check.line, name)
            kept.append(check)
        sets[name] = kept
    return sets


def _set_checks(value: Any, file: str, line: int, base: Path, section: str,
                problems: list[Problem]) -> list[SourceMap]:
    """The checks of one set: inline, or read from a file or a folder of files."""
    if isinstance(value, str):
        where = Path(value) if Path(value).is_absolute() else base / value
        if where.is_dir():
            files = sorted(where.glob("*.y*ml"))
        elif where.is_file():
            files = [where]
        else:
            problems.append(Problem(file, line, f"{where} is neither a file nor a folder; "
                                    "create it or list the checks inline", section=section))
            return []
        found: list[SourceMap] = []
        for path in files:
            sub = read_tree(path, problems, ("checks",))
            if sub is None:
                continue
            listed = sub.get("checks")
            if not isinstance(listed, SourceList):
                problems.append(Problem(str(path), sub.lines.get("checks", 1), "expected a "
                                        "'checks:' list ('- name: ...' entries)",
                                        section=section))
                continue
            found.extend(_shaped(listed, section, problems))
        return found
    if isinstance(value, SourceList):
        return _shaped(value, section, problems)
    problems.append(Problem(file, line, "expected a list of checks or the path of a file or "
                            "folder of them", section=section))
    return []


def _shaped(checks: SourceList, section: str, problems: list[Problem]) -> list[SourceMap]:
    """The entries that are mappings with a string ``name`` and ``type``."""
    good = []
    for index, check in enumerate(checks):
        line = checks.lines[index]
        if not isinstance(check, SourceMap):
            problems.append(Problem(checks.file, line, "each check must be a mapping with at "
                                    "least 'name' and 'type'", section=section))
            continue
        name = check.get("name")
        duplicate_problems(check, problems, name if isinstance(name, str) else None, section)
        missing = [k for k in ("name", "type") if not isinstance(check.get(k), str)
                   or not check.get(k)]
        for key in missing:
            problems.append(Problem(checks.file, check.lines.get(key, line), "required option "
                                    "is missing or not text", check=name if
                                    isinstance(name, str) else None, option=key,
                                    section=section))
        if not missing:
            good.append(check)
    return good


def _rules(node: SourceMap, sets: dict[str, Any], problems: list[Problem]) -> list[Rule]:
    listed = node.get("assign", SourceList())
    if not isinstance(listed, SourceList):
        problems.append(Problem(node.file, node.lines["assign"], "expected a list of rules "
                                "('- match: {...}' and 'sets: [...]')", section=SECTION,
                                option="assign"))
        return []
    rules = []
    for index, entry in enumerate(listed):
        line = listed.lines[index]
        section = f"check_sets rule {index + 1}"
        if not isinstance(entry, SourceMap):
            problems.append(Problem(node.file, line, "expected a mapping with 'match' and "
                                    "'sets'", section=section))
            continue
        for key in entry:
            if key not in ("match", "sets"):
                problems.append(Problem(node.file, entry.lines[key], "unknown option; valid "
                                        "options are 'match' and 'sets'", section=section,
                                        option=str(key)))
        match = entry.get("match", SourceMap())
        if not isinstance(match, SourceMap) or not all(
                isinstance(k, str) and isinstance(v, (str, int, float)) and
                not isinstance(v, bool) for k, v in match.items()):
            problems.append(Problem(node.file, entry.lines.get("match", line), "expected a "
                                    "mapping of label names to values, e.g. {role: db}",
                                    section=section, option="match"))
            continue
        names = entry.get("sets")
        if not isinstance(names, SourceList) or not names:
            problems.append(Problem(node.file, entry.lines.get("sets", line), "expected a "
                                    "non-empty list of set names", section=section,
                                    option="sets"))
            continue
        unknown = [str(n) for n in names if n not in sets]
        if unknown:
            known = ", ".join(sorted(sets)) or "none defined"
            problems.append(Problem(node.file, entry.lines["sets"], f"unknown set "
                                    f"{', '.join(repr(n) for n in unknown)}; known: {known}",
                                    section=section, option="sets"))
            continue
        rules.append(Rule({k: str(v) for k, v in match.items()}, tuple(names)))
    return rules
