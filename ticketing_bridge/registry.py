"""Which helpdesk ``type:`` is which adapter: a table, plus the ``patrol.ticketing``
entry-point group for third-party adapters. Importing this imports no adapter.

A plugin may also name, in the ``patrol.ticketing_targets`` group under its type, a
helpdesk for Patrol's adapter contract suite (``tests/test_adapter_contract.py``)::

    [project.entry-points."patrol.ticketing"]
    otrs = "patrol_otrs:Otrs"
    [project.entry-points."patrol.ticketing_targets"]
    otrs = "patrol_otrs.testing:contract_target"

``contract_target(lab)`` gets a scratch folder as ``lab.directory`` and returns a
context manager yielding the target's fields (``settings``, ``texts``, ``destination``,
``searchable``, ``reads_back``, ...; see ``tests/adapter_targets.py``), its helpdesk (a
fake server, say) running until the block ends. A plugin without one is reported as
skipped by the suite, not failed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from difflib import get_close_matches
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from patrol.ticketing_bridge.protocol import Helpdesk
    from patrol.ticketing_bridge.settings import AdapterSettings

TARGETS_GROUP = "patrol.ticketing_targets"

BUILTINS: dict[str, str] = {
    "redmine": "patrol.ticketing_bridge.redmine:Redmine",
    "rt": "patrol.ticketing_bridge.rt:RequestTracker",
    "jira": "patrol.ticketing_bridge.jira:Jira",
    "servicenow": "patrol.ticketing_bridge.servicenow:ServiceNow",
    "zendesk": "patrol.ticketing_bridge.zendesk:Zendesk",
    "zammad": "patrol.ticketing_bridge.zammad:Zammad",
    "glpi": "patrol.ticketing_bridge.glpi:Glpi",
    "email": "patrol.ticketing_bridge.email:Email",
    "webhook": "patrol.ticketing_bridge.webhook:Webhook",
}


class UnknownHelpdesk(Exception):
    def __init__(self, name: str, known: list[str]) -> None:
        hint = get_close_matches(name, known, n=1)
        did = f"did you mean '{hint[0]}'?" if hint else f"known types: {', '.join(known)}"
        super().__init__(f"unknown helpdesk type '{name}'; {did}")


def table() -> dict[str, str]:
    found = {ep.name: ep.value for ep in entry_points(group="patrol.ticketing")}
    return {**found, **BUILTINS}


def load(helpdesk_type: str) -> type[Helpdesk]:
    """The adapter class for ``helpdesk_type``; UnknownHelpdesk if none has that name."""
    adapter: type[Helpdesk] = _class(helpdesk_type)
    return adapter


def config_model(helpdesk_type: str) -> type[AdapterSettings]:
    """The adapter's ``Config`` settings model. Read here rather than declared on
    :class:`~patrol.ticketing_bridge.protocol.Helpdesk`: type checkers take a nested class
    for a read-only attribute and a protocol's class attribute for a settable one, so no
    adapter written the usual way would match such a protocol."""
    model: type[AdapterSettings] = _class(helpdesk_type).Config
    return model


def _class(helpdesk_type: str) -> Any:
    spec = table().get(helpdesk_type)
    if spec is None:
        raise UnknownHelpdesk(helpdesk_type, sorted(table()))
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def contract_target(helpdesk_type: str) -> Callable[..., Any] | None:
    """The contract-suite target a plugin names for ``helpdesk_type`` in
    ``patrol.ticketing_targets``, or None when it names none."""
    for ep in entry_points(group=TARGETS_GROUP):
        if ep.name == helpdesk_type:
            target: Callable[..., Any] = ep.load()
            return target
    return None
