"""The release artefacts: a wheel and sdist that install and run outside the checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import require_command
from tests.release import ROOT, build_release, clean_env, install_release

pytestmark = pytest.mark.slow

VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]

AGENT_YAML = """\
agent:
  listen: 127.0.0.1:0
  state_dir: state
checks:
  - name: root-disk
    type: disk
    path: /
    warning: 99.5%
    critical: 100%
  - name: sleepy-file
    type: file
    path: {path}
    critical: 1h
"""


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(wheel, sdist, bin folder of a venv with the wheel installed)."""
    dist = tmp_path_factory.mktemp("dist")
    wheel, sdist = build_release(dist)
    return wheel, sdist, install_release(wheel, tmp_path_factory.mktemp("venv"))


def _patrol(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bin_dir / "patrol"), *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env=clean_env())


def test_installed_wheel_runs_check_and_validate_outside_the_checkout(
        release: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, _, bin_dir = release
    fresh = tmp_path / "fresh"
    fresh.write_text("x")
    config = tmp_path / "agent.yaml"
    config.write_text(AGENT_YAML.format(path=fresh))

    version = _patrol(bin_dir, "--version", cwd=tmp_path)
    assert version.stdout.strip() == f"patrol {VERSION}"

    valid = _patrol(bin_dir, "validate", str(config), cwd=tmp_path)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    assert f"{config}: OK (2 checks)" in valid.stdout

    ran = _patrol(bin_dir, "check", "--config", str(config), cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "root-disk" in ran.stdout and "sleepy-file" in ran.stdout

    # The code that ran is the installed copy, not the checkout.
    where = subprocess.run([str(bin_dir / "python"), "-c",
                            "import patrol.agent, patrol.collector; "
                            "print(patrol.agent.__file__, patrol.collector.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, env=clean_env())
    assert str(ROOT) not in where.stdout and "site-packages" in where.stdout
    # Nothing generic lands at the top of site-packages: everything is under patrol.
    for generic in ("agent", "checks", "collector", "ticketing_bridge"):
        found = subprocess.run([str(bin_dir / "python"), "-c", f"import {generic}"],
                               capture_output=True, text=True, cwd=tmp_path, env=clean_env())
        assert found.returncode != 0 and "ModuleNotFoundError" in found.stderr, generic


def test_wheel_ships_templates_schemas_configs_and_units(
        release: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """The collector's pages and the shipped configs and units come with the install."""
    _, _, bin_dir = release
    prefix = bin_dir.parent
    share = prefix / "share" / "patrol"
    assert (share / "configs" / "agent.yaml").is_file()
    assert (share / "systemd" / "patrol-agent.service").is_file()
    example = tmp_path / "agent.yaml"
    shutil.copy(share / "configs" / "examples" / "web-server.yaml", example)
    checked = _patrol(bin_dir, "validate", str(example), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout
    pages = subprocess.run(
        [str(bin_dir / "python"), "-c",
         "from patrol.collector.web.pages import templates; "
         "from patrol.contract.publish_schema import SCHEMA_DIR; "
         "assert (SCHEMA_DIR / 'event-v1.json').is_file(); "
         "print(templates.get_template('fleet.html'))"],
        capture_output=True, text=True, cwd=tmp_path, env=clean_env())
    assert pages.returncode == 0 and "fleet.html" in pages.stdout, pages.stderr


def test_sdist_installs_with_pipx_and_brings_the_units(release: tuple[Path, Path, Path],
                                                       tmp_path: Path) -> None:
    """pipx, as an operator installs a command-line tool; install-units then finds the
    units inside the pipx venv and names that venv's patrol in ExecStart."""
    pipx = require_command("pipx", "pipx")
    _, sdist, _ = release
    home, bin_dir = tmp_path / "pipx", tmp_path / "bin"
    env = clean_env(PIPX_HOME=str(home), PIPX_BIN_DIR=str(bin_dir),
                    PIPX_MAN_DIR=str(tmp_path / "man"))
    done = subprocess.run([pipx, "install", str(sdist)], capture_output=True, text=True,
                          timeout=600, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    version = _patrol(bin_dir, "--version", cwd=tmp_path)
    assert version.stdout.strip() == f"patrol {VERSION}"
    root = tmp_path / "root"
    units = _patrol(bin_dir, "install-units", "--root", str(root), cwd=tmp_path)
    assert units.returncode == 0, units.stderr
    unit = (root / "etc/systemd/system/patrol-agent.service").read_text()
    command = unit.split("ExecStart=", 1)[1].split()[0]
    assert command.startswith(str(home)) and Path(command).name == "patrol"


PLUGIN = """\
from typing import ClassVar

from patrol.checks.base import Check, ConfigClass, MeasurementSpec, Result, RunContext, Status
from patrol.checks.config import CheckConfig


class ZfsConfig(CheckConfig):
    pool: str


class ZfsCheck:
    type: ClassVar[str] = "zfs"
    Config: ClassVar[ConfigClass] = ZfsConfig
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = ()
    REQUIRES: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: ZfsConfig) -> None:
        self.config = config

    def run(self, ctx: RunContext) -> Result:
        return Result(Status.OK, len(self.config.pool))


registered: type[Check] = ZfsCheck
"""


def test_wheel_ships_the_types_a_plugin_author_checks_against(
        release: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """py.typed at the package root: mypy in a plugin's project reads Patrol's
    annotations from the installed wheel (here it catches a summary that is not a str)
    instead of treating patrol.* as untyped."""
    wheel, _, bin_dir = release
    assert "patrol/py.typed" in zipfile.ZipFile(wheel).namelist()
    (tmp_path / "zfs_check.py").write_text(PLUGIN)
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--python-executable", str(bin_dir / "python"),
         "--strict", "--no-incremental", "zfs_check.py"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=clean_env())
    assert checked.stdout.splitlines() == [
        'zfs_check.py:21: error: Argument 2 to "Result" has incompatible type "int"; '
        'expected "str"  [arg-type]',
        "Found 1 error in 1 file (checked 1 source file)",
    ], checked.stdout + checked.stderr
