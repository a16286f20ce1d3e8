"""``folder_desk``: a helpdesk that is a folder of JSON tickets (one file each), as a
team might sync into its own tracker. A missing folder is a configuration error; a
``BUSY`` file in it (the sync running) means "try again later"."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from patrol.ticketing_bridge.protocol import (
    Destination,
    ExternalRef,
    PermanentError,
    RemoteStatus,
    TemporaryError,
    TicketView,
)
from patrol.ticketing_bridge.settings import AdapterSettings


class FolderDesk:
    type: ClassVar[str] = "folder_desk"

    class Config(AdapterSettings):
        folder: str

    def __init__(self, config: FolderDesk.Config, name: str) -> None:
        self.folder = Path(config.folder)
        self.name = name

    def _ready(self) -> None:
        if not self.folder.is_dir():
            raise PermanentError(f"{self.name}: no helpdesk folder {self.folder}")
        if (self.folder / "BUSY").exists():
            raise TemporaryError(f"{self.name}: {self.folder} is busy", retry_after=5.0)

    def _path(self, ref: ExternalRef) -> Path:
        return self.folder / f"{ref.id}.json"

    def _read(self, ref: ExternalRef) -> dict[str, Any]:
        self._ready()
        return dict(json.loads(self._path(ref).read_text()))

    def _write(self, ref: ExternalRef, ticket: dict[str, Any]) -> None:
        self._path(ref).write_text(json.dumps(ticket))

    def _ref(self, ticket_id: str) -> ExternalRef:
        return ExternalRef(self.name, ticket_id, (self.folder / f"{ticket_id}.json").as_uri())

    def open(self, view: TicketView, dest: Destination) -> ExternalRef:
        self._ready()
        ref = self._ref(str(len(list(self.folder.glob("*.json"))) + 1))
        self._write(ref, {"fingerprint": view.fingerprint, "title": view.title,
                          "body": view.body, "priority": view.priority, "state": "open",
                          "assignee": None, "notes": []})
        return ref

    def find(self, fingerprint: str, dest: Destination) -> ExternalRef | None:
        self._ready()
        for path in sorted(self.folder.glob("*.json")):
            ticket = json.loads(path.read_text())
            if ticket["fingerprint"] == fingerprint and ticket["state"] == "open":
                return self._ref(path.stem)
        return None

    def _change(self, ref: ExternalRef, note: str, **fields: Any) -> None:
        ticket = self._read(ref)
        ticket.update(fields)
        if note:
            ticket["notes"].append(note)
        self._write(ref, ticket)

    def comment(self, ref: ExternalRef, text: str, view: TicketView) -> None:
        self._change(ref, text)

    def set_priority(self, ref: ExternalRef, view: TicketView, dest: Destination) -> None:
        self._change(ref, "", priority=view.priority)

    def resolve(self, ref: ExternalRef, text: str, view: TicketView,
                dest: Destination) -> None:
        self._change(ref, text, state="resolved")

    def reopen(self, ref: ExternalRef, text: str, view: TicketView,
               dest: Destination) -> None:
        self._change(ref, text, state="open")

    def status(self, ref: ExternalRef) -> RemoteStatus:
        ticket = self._read(ref)
        state = ticket["state"]
        if state == "open" and ticket["assignee"]:
            state = "acknowledged"
        return RemoteStatus(state, ticket["assignee"])


class UntestedDesk(FolderDesk):
    """The same adapter under a second name whose author named no contract target."""

    type: ClassVar[str] = "demo_untested_desk"


@contextmanager
def contract_target(lab: Any) -> Iterator[Mapping[str, Any]]:
    """Patrol's adapter contract suite runs ``folder_desk`` on a folder in its lab."""
    folder = lab.directory / "desk"
    folder.mkdir()

    def ticket(ref: ExternalRef) -> dict[str, Any]:
        return dict(json.loads((folder / f"{ref.id}.json").read_text()))

    def assign(ref: ExternalRef) -> None:
        (folder / f"{ref.id}.json").write_text(json.dumps({**ticket(ref), "assignee": "ada"}))

    def busy() -> Mapping[str, Any]:
        (folder / "BUSY").touch()
        return {}

    yield {"settings": {"type": "folder_desk", "folder": str(folder)},
           "texts": lambda ref: [ticket(ref)["title"], ticket(ref)["body"],
                                 *ticket(ref)["notes"]],
           "assign": assign, "priority_of": lambda ref: ticket(ref)["priority"], "p1": "P1",
           "refuse": lambda: {"folder": str(lab.directory / "no-such-folder")},
           "overload": busy}
