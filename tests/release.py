"""A built and installed Patrol release, shared by the deploy tests.

:func:`build_release` runs ``python -m build`` on the checkout once per session;
:func:`install_release` installs the wheel into a fresh venv outside the checkout
(dependencies from the package index as a user's install would get them), so what is
tested is what a release ships, not the editable source tree.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything pointing into the checkout or its venv."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not p.startswith(str(ROOT)))
    env.update(extra)
    return env


def build_release(out: Path) -> tuple[Path, Path]:
    """(wheel, sdist) built from the checkout into ``out``."""
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                   check=True, capture_output=True, text=True, timeout=600)
    wheel = next(out.glob("patrol_inspect-*.whl"))
    sdist = next(out.glob("patrol_inspect-*.tar.gz"))
    return wheel, sdist


def install_release(artefact: Path, target: Path) -> Path:
    """A new venv at ``target`` with ``artefact`` installed; returns its bin folder."""
    venv.EnvBuilder(with_pip=True, clear=True).create(target)
    bin_dir = target / "bin"
    subprocess.run([str(bin_dir / "pip"), "install", "-q", str(artefact)], check=True,
                   capture_output=True, text=True, timeout=600, cwd=target,
                   env=clean_env())
    return bin_dir
