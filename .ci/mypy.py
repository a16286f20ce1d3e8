"""Type-check Patrol as it installs: the ``patrol.*`` names, with pyproject's [tool.mypy].

    .venv/bin/python .ci/mypy.py [more mypy options]

The folders agent/ checks/ collector/ ticketing_bridge/ install as patrol.agent,
patrol.checks, ... (``[tool.setuptools.package-dir]``). The editable install maps them
with an import hook, which mypy cannot follow: it reads files and runs no code, so
``mypy -p patrol`` in the checkout finds ``patrol/`` but none of the parts. This script
lays the installed layout out as symlinks under ``build/mypy/`` (from the same
package-dir table, so a new part needs no edit here), runs ``mypy -p patrol`` there,
and prints every path as the repository's own (``agent/config.py``, not
``build/mypy/patrol/agent/config.py``), so an editor jumps to the real file.

Exits with mypy's exit code.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "build" / "mypy"
PACKAGE = "patrol"


def package_dirs() -> dict[str, str]:
    """Installed package name -> repository folder, for ``patrol`` and its direct parts."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    table: dict[str, str] = config["tool"]["setuptools"]["package-dir"]
    return {name: folder for name, folder in table.items()
            if name == PACKAGE or name.startswith(PACKAGE + ".")}


def lay_out(dirs: dict[str, str]) -> None:
    """``TREE/patrol`` with a link per entry of the ``patrol`` folder and one per part."""
    top = TREE / PACKAGE
    if top.exists():
        shutil.rmtree(top)  # removes the links, never what they point to
    top.mkdir(parents=True)
    for entry in (ROOT / dirs[PACKAGE]).iterdir():
        if entry.name != "__pycache__":
            (top / entry.name).symlink_to(entry)
    for name, folder in dirs.items():
        if name == PACKAGE:
            continue
        link = TREE.joinpath(*name.split("."))
        if link.exists() or link.is_symlink():
            sys.exit(f"mypy.py: {name} is both a folder in {dirs[PACKAGE]}/ and mapped "
                     f"to {folder}/")
        link.symlink_to(ROOT / folder)


def to_repository_path(line: str, dirs: dict[str, str]) -> str:
    """``patrol/agent/x.py:3: error`` -> ``agent/x.py:3: error`` (longest name first)."""
    for name in sorted(dirs, key=len, reverse=True):
        prefix = name.replace(".", "/") + "/"
        if line.startswith(prefix):
            return dirs[name].rstrip("/") + "/" + line[len(prefix):]
    return line


def main(argv: list[str]) -> int:
    dirs = package_dirs()
    lay_out(dirs)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(TREE / ".mypy_cache"), *argv, "-p", PACKAGE],
        cwd=TREE, capture_output=True, text=True)
    for line in (done.stdout + done.stderr).splitlines():
        line = re.sub(r"^\S*pyproject\.toml:", "pyproject.toml:", line)
        print(to_repository_path(line, dirs))
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
