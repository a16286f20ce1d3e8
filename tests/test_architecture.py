"""The arrows of the architecture, enforced: who may import whom.

``checks`` knows nothing of the agent; the agent uses checks; the collector never imports
the agent or the checks; the helpdesk adapters see only their own package and the shared
contract; the contract imports none of the parts it connects. The ``patrol`` CLI (the
modules directly in ``patrol/``) is the one place that composes agent and collector.
Every import counts, including the ones inside functions, since a lazy import is still
an arrow."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PARTS = {  # the folder, the package it installs as, and what it may import of Patrol
    "patrol/contract": ("patrol.contract", {"patrol.contract"}),
    "checks": ("patrol.checks", {"patrol.checks", "patrol.contract"}),
    "agent": ("patrol.agent", {"patrol.agent", "patrol.checks", "patrol.contract"}),
    "collector": ("patrol.collector",
                  {"patrol.collector", "patrol.ticketing_bridge", "patrol.contract"}),
    "ticketing_bridge": ("patrol.ticketing_bridge",
                         {"patrol.ticketing_bridge", "patrol.contract"}),
}
GENERIC = ("agent", "checks", "collector", "ticketing_bridge")


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every absolute module a file imports, with its line."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def allowed(module: str, rules: set[str]) -> bool:
    if module != "patrol" and not module.startswith("patrol."):
        return True  # the standard library and third parties are not arrows between parts
    return any(module == rule or module.startswith(rule + ".") for rule in rules)


@pytest.mark.parametrize("folder", sorted(PARTS))
def test_each_part_imports_only_what_its_arrows_allow(folder: str) -> None:
    _, rules = PARTS[folder]
    wrong = [f"{path.relative_to(ROOT)}:{line}: imports {module}"
             for path in sorted((ROOT / folder).rglob("*.py"))
             for line, module in imports_of(path) if not allowed(module, rules)]
    assert wrong == [], "\n".join(wrong)


def test_nothing_imports_the_old_generic_top_level_names() -> None:
    """Tests, benchmarks and the product alike use the ``patrol`` namespace: an import of
    a bare ``collector`` would work from a checkout and fail from an installed wheel."""
    wrong = []
    for folder in ("patrol", *GENERIC, "tests", "bench"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            wrong += [f"{path.relative_to(ROOT)}:{line}: imports {module}"
                      for line, module in imports_of(path)
                      if module.split(".")[0] in GENERIC]
    assert wrong == [], "\n".join(wrong)


def test_every_package_folder_is_installed_under_the_namespace() -> None:
    """pyproject lists the packages (a find cannot rename folders into ``patrol``): a new
    sub-package that is not listed would be missing from the wheel."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapping = config["package-dir"]
    on_disk = set()
    for package, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            on_disk.add(".".join((package, *relative.parts)))
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages"
    assert listed - on_disk == set(), "these listed packages have no folder"
