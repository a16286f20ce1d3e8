"""Parse + render time of a typical ticket body: the hand-written Markdown parser (from
a ``git`` revision that still has it) against this tree's markdown-it-py one, each
through its own renderers, in one run, the load average printed beside every figure.

The body is ``tests/test_body.py``'s ``EXPECTED`` (a disk breach with measurements,
diagnostics tables, past occurrences; about 3 KB). The default anchor is the parent of
the commit that deleted ``patrol/contract/markdown_tree.py``.

    .venv/bin/python bench/markup_bench.py [REVISION]
"""

from __future__ import annotations

import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from patrol.contract import markup as current  # noqa: E402
from tests.test_body import EXPECTED  # noqa: E402

ROUNDS, N = 5, 200
RENDERERS = ("to_html", "to_text", "to_textile", "to_jira_wiki", "to_adf")
MODULES = ("markdown_tree", "markup_adf", "markup")


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout.strip()


def _anchor(revision: str) -> ModuleType:
    """The anchor's markup modules as a package ``markup_anchor`` in a temporary dir."""
    package = Path(tempfile.mkdtemp()) / "markup_anchor"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in MODULES:
        text = _git("show", f"{revision}:patrol/contract/{name}.py")
        (package / f"{name}.py").write_text(
            text.replace("patrol.contract.markdown_tree", "markup_anchor.markdown_tree")
                .replace("patrol.contract.markup_adf", "markup_anchor.markup_adf"))
    sys.path.insert(0, str(package.parent))
    return importlib.import_module("markup_anchor.markup")


def _per_body(module: ModuleType, names: tuple[str, ...]) -> float:
    """Microseconds to parse and render the body once with each of ``names``."""
    renderers = [getattr(module, name) for name in names]
    started = time.perf_counter()
    for _ in range(N):
        for render in renderers:
            render(EXPECTED)
    return (time.perf_counter() - started) / N * 1e6


def main() -> None:
    revision = sys.argv[1] if len(sys.argv) > 1 else _git(
        "rev-list", "-1", "HEAD", "--", "patrol/contract/markdown_tree.py") + "^"
    anchor = _anchor(revision)
    differ = [name for name in RENDERERS
              if getattr(anchor, name)(EXPECTED) != getattr(current, name)(EXPECTED)]
    print(f"body {len(EXPECTED)} characters; anchor {_git('rev-parse', '--short', revision)}"
          f" (hand-written parser) vs this tree (markdown-it-py); {N} bodies per figure,"
          f" median of {ROUNDS} rounds")
    print(f"outputs that differ on this body: {', '.join(differ) or 'none'}")
    for names in ((name,) for name in RENDERERS):
        _report(names[0], anchor, names)
    _report("all five", anchor, RENDERERS)


def _report(label: str, anchor: ModuleType, names: tuple[str, ...]) -> None:
    old, new = [], []
    for _ in range(ROUNDS):  # interleaved, so load changes hit both alike
        old.append(_per_body(anchor, names))
        new.append(_per_body(current, names))
    before, after = statistics.median(old), statistics.median(new)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{label:13} hand-written {before:8.0f} us   markdown-it {after:8.0f} us   "
          f"ratio {after / before:5.2f}   load {load}")


if __name__ == "__main__":
    main()
