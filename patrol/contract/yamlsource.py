"""YAML that remembers where each key came from, and refuses duplicate keys.

PyYAML's SafeLoader silently keeps the last of two equal keys, which turns a typo'd
copy-paste into a threshold nobody set. This loader builds :class:`SourceMap` /
:class:`SourceList` nodes that carry the file and line of every key and item, and
records duplicate keys instead of dropping them, so the validator can report every
problem at once as ``file:line``.

It is part of the shared contract because the agent's and the collector's configs
are read the same way, and neither side may import the other.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True, slots=True)
class Problem:
    """One config mistake, already phrased for the operator."""

    file: str
    line: int
    message: str
    check: str | None = None
    option: str | None = None
    section: str | None = None

    def __str__(self) -> str:
        where = []
        if self.check is not None:
            where.append(f"check '{self.check}'")
        elif self.section is not None:
            where.append(self.section)
        if self.option is not None:
            where.append(f"option '{self.option}'")
        prefix = f"{', '.join(where)}: " if where else ""
        return f"{self.file}:{self.line}: {prefix}{self.message}"


class SourceMap(dict[Any, Any]):
    """A mapping node: ``lines[key]`` is the 1-based line of each key."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.file = "<config>"
        self.line = 0
        self.lines: dict[Any, int] = {}
        self.duplicates: list[tuple[Any, int, int]] = []  # (key, line, first line)


class SourceList(list[Any]):
    """A sequence node: ``lines[i]`` is the 1-based line of item ``i``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.file = "<config>"
        self.line = 0
        self.lines: list[int] = []


class _Loader(yaml.SafeLoader):
    def __init__(self, stream: str, file: str) -> None:
        super().__init__(stream)
        self.file = file

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> SourceMap:
        self.flatten_mapping(node)
        out = SourceMap()
        out.file, out.line, out.lines, out.duplicates = self.file, node.start_mark.line + 1, {}, []
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a plain value", key_node.start_mark
                )
            line = key_node.start_mark.line + 1
            if key in out:
                out.duplicates.append((key, line, out.lines[key]))
                continue
            out[key] = self.construct_object(value_node, deep=True)
            out.lines[key] = line
        return out

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> SourceList:
        out = SourceList(self.construct_object(child, deep=True) for child in node.value)
        out.file, out.line = self.file, node.start_mark.line + 1
        out.lines = [child.start_mark.line + 1 for child in node.value]
        return out


_Loader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _Loader.construct_mapping
)
_Loader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _Loader.construct_sequence
)


def load(path: str | Path) -> tuple[Any, list[Problem]]:
    """Parse ``path``; returns the tree (or None) and any problems (I/O, syntax)."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        return None, [Problem(name, 0, f"cannot read the file: {exc.strerror}")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A binary file or another encoding: name the line of the first bad byte rather
        # than let the decoder's traceback reach the operator.
        line = raw.count(b"\n", 0, exc.start) + 1
        return None, [Problem(name, line, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at "
                              f"offset {exc.start}); a config must be a UTF-8 YAML file")]
    try:
        loader = _Loader(text, name)
        try:
            return loader.get_single_data(), []
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        what = exc.problem or str(exc)
        return None, [Problem(name, line, f"invalid YAML: {what}; fix the syntax at this line")]
    except yaml.reader.ReaderError as exc:  # control characters: not a MarkedYAMLError
        line = text.count("\n", 0, exc.position) + 1
        return None, [Problem(name, line, f"invalid YAML: character {exc.character!r} is not "
                              "allowed in YAML text; remove it")]
    except RecursionError:
        return None, [Problem(name, 1, "invalid YAML: nested too deeply to be a config")]


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: str, environ: dict[str, str] | None = None) -> tuple[str, list[str]]:
    """Expand ``${VAR}`` and ``${VAR:-default}``; returns the text and missing names."""
    env = os.environ if environ is None else environ
    missing: list[str] = []

    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        missing.append(name)
        return match.group(0)

    return _ENV_REF.sub(sub, value), missing


def line_of(node: Any, path: tuple[Any, ...]) -> int:
    """The line of the deepest key or item along ``path`` that exists in ``node``."""
    line = getattr(node, "line", 0)
    for step in path:
        in_map = isinstance(node, SourceMap) and step in node
        in_list = (isinstance(node, SourceList) and isinstance(step, int)
                   and 0 <= step < len(node))
        if in_map or in_list:
            line, node = node.lines[step], node[step]
        else:
            break
    return line


def plain(node: Any) -> Any:
    """A copy with ordinary dicts and lists, for handing to pydantic."""
    if isinstance(node, dict):
        return {k: plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    return node


def expand_all(node: Any, problems: list[Problem], path_ctx: tuple[str, Any, Any],
               label: str | None = None) -> Any:
    """Expand ``${VAR}`` in every string, in place, reporting unset variables.

    ``label`` names the option for the message: the key, or ``key[i]`` for a list item
    (``agent_tokens[0]``), so the operator is not told about an option called '0'."""
    file, parent, key = path_ctx
    if isinstance(node, SourceMap):
        for k in list(node):
            node[k] = expand_all(node[k], problems, (file, node, k), str(k))
    elif isinstance(node, SourceList):
        for i in range(len(node)):
            node[i] = expand_all(node[i], problems, (file, node, i), f"{label or ''}[{i}]")
    elif isinstance(node, str) and "${" in node:
        text, missing = expand_env(node)
        for name in missing:
            line = parent.lines[key] if parent is not None else 0
            problems.append(Problem(
                getattr(parent, "file", file), line,
                f"environment variable {name} is not set; export it, or write "
                f"${{{name}:-default}}",
                option=label if label is not None else str(key),
            ))
        return text
    return node


def duplicate_problems(node: Any, problems: list[Problem], check: str | None, section: str | None,
                prefix: str = "") -> None:
    if isinstance(node, SourceMap):
        for key, line, first in node.duplicates:
            problems.append(Problem(
                node.file, line, f"duplicate key (first set at line {first}); keep only one",
                check=check, option=f"{prefix}{key}", section=section,
            ))
        for k, v in node.items():
            duplicate_problems(v, problems, check, section, f"{prefix}{k}.")
    elif isinstance(node, SourceList):
        for v in node:
            duplicate_problems(v, problems, check, section, prefix)


def read_tree(path: Path, problems: list[Problem], allowed: tuple[str, ...]) -> SourceMap | None:
    tree, found = load(path)
    problems.extend(found)
    if tree is None:
        if not found:
            problems.append(Problem(str(path), 1, "the file is empty; add an 'agent:' block "
                                    "and a 'checks:' list"))
        return None
    if not isinstance(tree, SourceMap):
        problems.append(Problem(str(path), 1, "expected a mapping at the top level with "
                                f"{', '.join(allowed)}"))
        return None
    expand_all(tree, problems, (str(path), None, None))
    for key, line, first in tree.duplicates:
        problems.append(Problem(str(path), line, f"duplicate top-level key '{key}' (first set "
                                f"at line {first}); merge them"))
    for key in tree:
        if key not in allowed:
            hint = get_close_matches(str(key), allowed, n=1)
            did = f"did you mean '{hint[0]}'?" if hint else f"valid keys are: {', '.join(allowed)}"
            problems.append(Problem(str(path), tree.lines[key],
                                    f"unknown top-level key '{key}'; {did}"))
    return tree


class ConfigError(Exception):
    """The config cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))

