"""The report archive: one folder, one file per report, named by its days.

``daily-2026-12-04.html`` (the self-contained report), ``daily-2026-12-04.json`` (its
figures, as ``--format json`` writes them) and, once mailed, ``daily-2026-12-04.sent``
(when and to whom, JSON). The marker is what makes a scheduled report go out exactly
once: a report that is archived but not marked is mailed again at the next watchdog
pass, from the archived file, so a retry sends the same report, not a newer one.

Files are written to a temporary name and renamed, so a reader (the Reports page, a
crash) never sees half a report. Replicas of one collector on PostgreSQL must share
the folder (the leader writes it); one on another machine with its own folder would
not know what the other leader already sent.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_NAME = re.compile(r"^(?P<kind>daily|retro)-(?P<first>\d{4}-\d{2}-\d{2})"
                   r"(?:-(?P<last>\d{4}-\d{2}-\d{2}))?\.html$")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def store(folder: Path, name: str, html: str, figures: str) -> Path:
    """Archive one report (HTML and JSON); the HTML file's path."""
    _write(folder / f"{name}.json", figures)
    _write(folder / f"{name}.html", html)  # last: its presence means "archived"
    return folder / f"{name}.html"


def archived(folder: Path, name: str) -> bool:
    return (folder / f"{name}.html").is_file() and (folder / f"{name}.json").is_file()


def read(folder: Path, name: str) -> tuple[str, dict[str, Any]]:
    """The archived HTML and figures."""
    html = (folder / f"{name}.html").read_text(encoding="utf-8")
    return html, json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))


def sent(folder: Path, name: str) -> dict[str, Any] | None:
    """The mail marker (``at``, ``recipients``, ``message_id``), None if not mailed."""
    try:
        return dict(json.loads((folder / f"{name}.sent").read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None


def mark_sent(folder: Path, name: str, at: float, recipients: list[str],
              message_id: str) -> None:
    _write(folder / f"{name}.sent", json.dumps(
        {"at": at, "recipients": recipients, "message_id": message_id}) + "\n")


@dataclass(frozen=True)
class Entry:
    """One archived report, for the Reports page."""

    kind: str
    first: str
    last: str
    file: str
    mailed_at: float | None

    @property
    def title(self) -> str:
        return self.first if self.first == self.last else f"{self.first} to {self.last}"


def listing(folder: Path | None, limit: int = 400) -> list[Entry]:
    """The archived reports, newest first (by last day, then kind)."""
    if folder is None or not folder.is_dir():
        return []
    entries = []
    for path in folder.iterdir():
        match = _NAME.match(path.name)
        if match is None:
            continue
        marker = sent(folder, path.stem)
        entries.append(Entry(match["kind"], match["first"], match["last"] or match["first"],
                             path.name, None if marker is None else marker.get("at")))
    entries.sort(key=lambda e: (e.last, e.kind, e.first), reverse=True)
    return entries[:limit]
