"""The report archive: one folder, one file per report, named by its days.

``daily-2026-12-04.html`` (the self-contained report) and ``daily-2026-12-04.json`` (its
figures, as ``--format json`` writes them). Whether a report was mailed is kept in the
store (collector/store/report_mailings.py), which replicas share: a report that is
archived but not marked there is mailed again at the next watchdog pass, from the
archived file, so a retry sends the same report, not a newer one.

Files are written to a temporary name and renamed, so a reader (the Reports page, a
crash) never sees half a report. Replicas of one collector on PostgreSQL may keep
separate folders: a new leader that does not find a report in its own folder makes
it again there, but does not mail it again.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
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


def legacy_sent(folder: Path, name: str) -> dict[str, Any] | None:
    """The ``.sent`` marker file an earlier Patrol wrote beside a mailed report (``at``,
    ``recipients``, ``message_id``), None if there is none. Read once per report after
    an upgrade, so a report mailed before it is not mailed again."""
    try:
        return dict(json.loads((folder / f"{name}.sent").read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None


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


def listing(folder: Path | None,
            mailed: Callable[[list[str]], Mapping[str, float]] | None = None,
            limit: int = 400) -> list[Entry]:
    """The archived reports, newest first (by last day, then kind); ``mailed`` says which
    of the names given were mailed, and when (the store's
    :meth:`~patrol.collector.store.base.TicketReads.report_mailings`)."""
    if folder is None or not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _NAME.match(path.name)
        if match is not None:
            found.append((path, match))
    found.sort(key=lambda f: (f[1]["last"] or f[1]["first"], f[1]["kind"], f[1]["first"]),
               reverse=True)
    found = found[:limit]
    when = mailed([path.stem for path, _ in found]) if mailed is not None else {}
    return [Entry(match["kind"], match["first"], match["last"] or match["first"], path.name,
                  when.get(path.stem)) for path, match in found]
