"""The contract every registered helpdesk adapter keeps, run over the whole registry.

Every built-in type and every plugin in the ``patrol.ticketing`` entry-point group is
covered here automatically. Each runs, in the dispatcher's order, against a helpdesk
its target supplies (``tests/adapter_targets.py`` for the built-ins, the
``patrol.ticketing_targets`` entry-point group for plugins; a plugin naming none is
skipped with the reason): find nothing, open, find it again (the guard against
duplicates after a crash), comment, change the priority, be taken by a person,
resolve, stop being found, reopen, be found again; and a helpdesk that refuses
is a :class:`PermanentError`, one that is down or overloaded a :class:`TemporaryError`.

What a helpdesk cannot do is the target's to declare, as the adapters document it: a
mailbox or a chat robot cannot be searched (``find`` is always None: a crash between
"sent" and "stored" sends again) nor read back (``status`` is always ``open``).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from patrol.ticketing_bridge import registry
from patrol.ticketing_bridge.protocol import (
    BridgeError,
    Destination,
    ExternalRef,
    Helpdesk,
    PermanentError,
    TemporaryError,
    TicketView,
)
from patrol.ticketing_bridge.settings import AdapterSettings

pytest.register_assert_rewrite("tests.helpdesk_servers", "tests.fakes")
from tests import adapter_targets  # noqa: E402
from tests.adapter_targets import AdapterLab, AdapterTarget  # noqa: E402

pytest_plugins = ["tests.helpdesk_servers"]  # the real Redmine and RT, once per session
ROOT = Path(__file__).resolve().parent.parent
TYPES = [pytest.param(t, marks=pytest.mark.slow) if t in adapter_targets.SLOW else t
         for t in sorted(registry.table())]
PROTOCOL = ("open", "find", "comment", "set_priority", "resolve", "reopen", "status")


def _view() -> TicketView:
    """A Patrol ticket with a fresh fingerprint (the real servers keep their tickets
    between sessions)."""
    return TicketView(
        number="TS20261205001", fingerprint=f"patrol-contract-{uuid.uuid4().hex}",
        title="/var is 93.4% full on db-01 (critical at 95%)",
        body="**/var** is 93.4% full on `db-01`.\n\n- used_ratio 0.934\n",
        priority="P3", severity="critical", status="new", category="disk", host="db-01",
        check="var-disk", check_type="disk", resolve_by=2e9)


def _plugin(helpdesk_type: str) -> str:
    for ep in entry_points(group="patrol.ticketing"):
        if ep.name == helpdesk_type:
            return f"{ep.dist.name if ep.dist else 'an unnamed distribution'} ({ep.value})"
    return "no distribution"


@contextmanager
def _target(helpdesk_type: str, request: pytest.FixtureRequest,
            tmp_path: Path) -> Iterator[AdapterTarget]:
    if helpdesk_type in registry.BUILTINS:
        make = adapter_targets.BUILTIN[helpdesk_type]
    else:
        found = registry.contract_target(helpdesk_type)
        if found is None:
            pytest.skip(f"helpdesk type {helpdesk_type!r} from plugin {_plugin(helpdesk_type)} "
                        f"names no contract target: add one to the "
                        f"{registry.TARGETS_GROUP!r} entry-point group "
                        "(see patrol.ticketing_bridge.registry)")
        make = found
    with make(AdapterLab(tmp_path, request)) as supplied:
        yield (supplied if isinstance(supplied, AdapterTarget)
               else AdapterTarget(**dict(supplied)))


def _adapter(helpdesk_type: str, target: AdapterTarget, **changes: Any) -> Any:
    """As the collector builds it: the class's Config validates the entry."""
    cls = registry.load(helpdesk_type)
    config = cls.Config.model_validate({**target.settings, **changes})
    return cls(config, f"{helpdesk_type}-contract")


def _mentions(target: AdapterTarget, ref: ExternalRef, word: str) -> bool:
    return any(word in text for text in target.texts(ref))


# --- the class --------------------------------------------------------------------------


@pytest.mark.parametrize("helpdesk_type", sorted(registry.table()))
def test_class_speaks_the_protocol_and_its_config_is_strict(helpdesk_type: str) -> None:
    cls = registry.load(helpdesk_type)
    assert all(callable(getattr(cls, name, None)) for name in PROTOCOL)
    assert issubclass(cls.Config, AdapterSettings)
    assert cls.Config.model_config.get("frozen") is True
    with pytest.raises(ValidationError) as info:
        cls.Config.model_validate({"type": helpdesk_type, "projekt": "OPS"})
    assert any(e["type"] == "extra_forbidden" and e["loc"] == ("projekt",)
               for e in info.value.errors())


def test_importing_the_registry_imports_no_adapter() -> None:
    adapters = sorted(spec.split(":")[0] for spec in registry.BUILTINS.values())
    code = ("import sys, patrol.ticketing_bridge.registry; "
            f"print([m for m in {adapters!r} if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True, timeout=60)
    assert done.stdout.strip() == "[]"


def test_builtins_win_over_a_plugin_reusing_their_name(monkeypatch) -> None:
    from importlib.metadata import EntryPoint

    found = [EntryPoint("redmine", "evil:Desk", "patrol.ticketing"),
             EntryPoint("otrs", "patrol.ticketing_bridge.rt:RequestTracker",
                        "patrol.ticketing")]
    monkeypatch.setattr(registry, "entry_points", lambda group: found)
    assert registry.table()["redmine"] == "patrol.ticketing_bridge.redmine:Redmine"
    assert registry.load("otrs").__name__ == "RequestTracker"


def test_every_builtin_type_has_a_target() -> None:
    """Built-ins are never skipped: only plugins may come without a target."""
    assert sorted(adapter_targets.BUILTIN) == sorted(registry.BUILTINS)


# --- the lifecycle, against a helpdesk ----------------------------------------------------


@pytest.mark.parametrize("helpdesk_type", TYPES)
def test_ticket_lifecycle_in_the_dispatchers_order(
        helpdesk_type: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    with _target(helpdesk_type, request, tmp_path) as target:
        adapter = _adapter(helpdesk_type, target)
        assert isinstance(adapter, Helpdesk)
        name = f"{helpdesk_type}-contract"
        dest = Destination(name, **target.destination)
        view = _view()

        assert adapter.find(view.fingerprint, dest) is None
        ref = adapter.open(view, dest)
        assert isinstance(ref, ExternalRef) and ref.helpdesk == name and ref.id
        assert _mentions(target, ref, view.title), target.texts(ref)
        # the guard against a second ticket after a crash between "created" and "stored"
        assert adapter.find(view.fingerprint, dest) == (ref if target.searchable else None)
        if target.reads_back:
            assert adapter.status(ref).state == "open"

        adapter.comment(ref, "Still failing: 93.9% used (contract-comment).", view)
        assert _mentions(target, ref, "contract-comment")

        before = target.texts(ref)
        adapter.set_priority(ref, replace(view, priority="P1"), dest)
        if target.priority_of is not None:
            assert target.priority_of(ref) == target.p1
        else:  # no priority field to read: the helpdesk was told
            assert len(target.texts(ref)) > len(before)

        if target.assign is not None:
            target.assign(ref)
            taken = adapter.status(ref)
            assert taken.state == "acknowledged" and taken.assignee, taken

        adapter.resolve(ref, "Recovered: 41% used (contract-resolve).", view, dest)
        assert _mentions(target, ref, "contract-resolve")
        if target.reads_back:
            assert adapter.status(ref).state in ("resolved", "closed")
        assert adapter.find(view.fingerprint, dest) is None  # only open tickets are found

        adapter.reopen(ref, "It came back: 95.2% used (contract-reopen).", view, dest)
        assert _mentions(target, ref, "contract-reopen")
        state = adapter.status(ref).state
        assert state in ("open", "acknowledged") if target.reads_back else state == "open"
        assert adapter.find(view.fingerprint, dest) == (ref if target.searchable else None)


# --- errors: retry or not -------------------------------------------------------------


def _open_fails(helpdesk_type: str, target: AdapterTarget, tmp_path: Path,
                changes: Any) -> BridgeError:
    adapter = _adapter(helpdesk_type, target, **changes)
    with pytest.raises(BridgeError) as caught:
        adapter.open(_view(), Destination(f"{helpdesk_type}-contract",
                                                  **target.destination))
    return caught.value


@pytest.mark.parametrize("helpdesk_type", TYPES)
def test_a_helpdesk_that_refuses_is_a_permanent_error(
        helpdesk_type: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    with _target(helpdesk_type, request, tmp_path) as target:
        if target.refuse is None:
            pytest.skip(f"{helpdesk_type}'s target cannot make its helpdesk refuse")
        error = _open_fails(helpdesk_type, target, tmp_path, target.refuse())
        assert isinstance(error, PermanentError), repr(error)


@pytest.mark.parametrize("helpdesk_type", TYPES)
def test_a_helpdesk_that_is_down_is_a_temporary_error(
        helpdesk_type: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    with _target(helpdesk_type, request, tmp_path) as target:
        if target.unreachable is None:
            pytest.skip(f"{helpdesk_type}'s target has no way to be unreachable")
        error = _open_fails(helpdesk_type, target, tmp_path, target.unreachable)
        assert isinstance(error, TemporaryError), repr(error)


@pytest.mark.parametrize("helpdesk_type", TYPES)
def test_a_helpdesk_that_is_overloaded_is_a_temporary_error(
        helpdesk_type: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    with _target(helpdesk_type, request, tmp_path) as target:
        if target.overload is None:
            pytest.skip(f"{helpdesk_type}'s target cannot make its helpdesk fail for a while")
        error = _open_fails(helpdesk_type, target, tmp_path, target.overload())
        assert isinstance(error, TemporaryError), repr(error)
