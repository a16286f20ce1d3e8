"""``patrol install-units``: put the shipped systemd units where systemd reads them.

The units live in the repository (``deploy/systemd/``) and travel in the wheel as data
files (``<prefix>/share/patrol/systemd/``). They name ``/usr/local/bin/patrol``; the
installed copy names the ``patrol`` that runs this command instead, because a pipx or
venv install puts it elsewhere and a unit whose ExecStart is missing fails only at boot.
Nothing is started or enabled here: that stays the operator's (or Ansible's) decision.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

SHIPPED_PATROL = "/usr/local/bin/patrol"
UNITS = ("patrol-agent.service", "patrol-collector.service")
SYSUSERS = "patrol.sysusers.conf"


def shipped_units_dir() -> Path:
    """Where the units are: the installed data files, else the source checkout."""
    candidates = (Path(sys.prefix) / "share" / "patrol" / "systemd",
                  Path(__file__).resolve().parent.parent / "deploy" / "systemd")
    for candidate in candidates:
        if (candidate / UNITS[0]).is_file():
            return candidate
    raise FileNotFoundError("the systemd units are not installed with this Patrol "
                            f"(looked in {', '.join(str(c) for c in candidates)})")


def patrol_command() -> str:
    """The absolute path of the running ``patrol`` command."""
    found = shutil.which("patrol") if Path(sys.argv[0]).name != "patrol" else sys.argv[0]
    return str(Path(found or SHIPPED_PATROL).resolve())


def _write_if_changed(target: Path, text: str) -> bool:
    """Write ``text`` (mode 0644) unless the file holds it already: a rerun changes
    nothing, so Ansible and the operator see when something really changed."""
    if target.is_file() and target.read_text(encoding="utf-8") == text:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    target.chmod(0o644)
    return True


def install_units(root: Path, patrol: str) -> list[tuple[Path, bool]]:
    """Write the units under ``root``/etc/systemd/system and the service user's
    sysusers.d entry; returns each file with whether it changed."""
    source = shipped_units_dir()
    files = {root / "etc" / "systemd" / "system" / name:
             (source / name).read_text(encoding="utf-8").replace(SHIPPED_PATROL, patrol)
             for name in UNITS}
    files[root / "etc" / "sysusers.d" / "patrol.conf"] = (source / SYSUSERS).read_text(
        encoding="utf-8")
    return [(target, _write_if_changed(target, text)) for target, text in files.items()]


def main(root: str, patrol: str | None) -> int:
    command = patrol or patrol_command()
    try:
        written = install_units(Path(root), command)
    except OSError as exc:
        print(f"patrol: cannot install the units: {exc}", file=sys.stderr)
        return 2
    for path, changed in written:
        print(f"{'wrote' if changed else 'unchanged'} {path}")
    print("next: systemd-sysusers && systemctl daemon-reload && "
          "systemctl enable --now patrol-agent (or patrol-collector)")
    return 0
