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


def install_units(root: Path, patrol: str) -> list[Path]:
    """Write the units under ``root``/etc/systemd/system and the service user's
    sysusers.d entry; returns the files written."""
    source = shipped_units_dir()
    written = []
    units_dir = root / "etc" / "systemd" / "system"
    units_dir.mkdir(parents=True, exist_ok=True)
    for name in UNITS:
        text = (source / name).read_text(encoding="utf-8")
        target = units_dir / name
        target.write_text(text.replace(SHIPPED_PATROL, patrol), encoding="utf-8")
        target.chmod(0o644)
        written.append(target)
    users_dir = root / "etc" / "sysusers.d"
    users_dir.mkdir(parents=True, exist_ok=True)
    users = users_dir / "patrol.conf"
    shutil.copyfile(source / SYSUSERS, users)
    users.chmod(0o644)
    written.append(users)
    return written


def main(root: str, patrol: str | None) -> int:
    command = patrol or patrol_command()
    try:
        written = install_units(Path(root), command)
    except OSError as exc:
        print(f"patrol: cannot install the units: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    print("next: systemd-sysusers && systemctl daemon-reload && "
          "systemctl enable --now patrol-agent (or patrol-collector)")
    return 0
