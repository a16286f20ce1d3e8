"""The contract every registered check type keeps, run over the whole registry.

A new built-in or a plugin in the ``patrol.checks`` entry-point group is covered
here automatically: it must declare its measurements properly, reject unknown
options, import its drivers lazily, and, run against a real target on this host,
return a Result whose every measurement it declared. The target comes from the type
(tests/check_targets.py for built-ins, the ``patrol.check_targets`` entry-point group
for plugins); a plugin that names none is skipped with the reason, not failed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from patrol.checks import registry
from patrol.checks.base import CheckError, Measurement, MeasurementSpec, Result, Status
from patrol.checks.config import CheckConfig
from tests import check_targets
from tests.helpers import build

TYPES = registry.known_types()
ROOT = Path(__file__).resolve().parent.parent
BASE_UNITS = ("_ratio", "_seconds", "_bytes", "_bytes_per_second", "_celsius")
NOT_BASE_UNITS = re.compile(r"_(ms|millis|milliseconds|percent|pct|kb|mb|gb|kib|mib|gib|"
                            r"minutes|hours|days)$")
# Types whose measurement names come from the watched thing (plugin perfdata).
DYNAMIC = {"nagios"}
# Types that read hardware a VM or container may lack (SMART disks, md arrays): there,
# UNKNOWN naming what to install or leave out is the contract.
HARDWARE = {"disk_health"}


@pytest.mark.parametrize("check_type", TYPES)
def test_class_declares_the_contract(check_type: str) -> None:
    cls = registry.load(check_type)
    assert cls.type == check_type
    assert issubclass(cls.Config, CheckConfig)
    assert isinstance(cls.MEASUREMENTS, tuple)
    assert all(isinstance(spec, MeasurementSpec) for spec in cls.MEASUREMENTS)
    assert isinstance(cls.REQUIRES, tuple)
    assert set(getattr(cls, "DIAGNOSTICS", ())) <= {"top_processes"}
    assert callable(cls.run)
    names = [spec.name for spec in cls.MEASUREMENTS]
    assert len(names) == len(set(names)), "each measurement is declared once"
    assert sum(spec.primary for spec in cls.MEASUREMENTS) <= 1


@pytest.mark.parametrize("check_type", TYPES)
def test_measurements_are_in_base_units_and_thresholds_point_the_right_way(
        check_type: str) -> None:
    for spec in registry.load(check_type).MEASUREMENTS:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", spec.name), spec.name
        assert not NOT_BASE_UNITS.search(spec.name), f"{spec.name}: use base units"
        assert spec.description, f"{spec.name} needs a description"
        if spec.warning is not None and spec.critical is not None:
            if spec.higher_is_worse:
                assert spec.warning <= spec.critical, spec.name
            else:
                assert spec.warning >= spec.critical, spec.name
        if spec.unit == "ratio":
            for level in (spec.warning, spec.critical):
                assert level is None or 0 <= level <= 1, f"{spec.name}: ratios are 0..1"


@pytest.mark.parametrize("check_type", TYPES)
def test_config_rejects_unknown_options_and_is_frozen(check_type: str) -> None:
    cls = registry.load(check_type)
    with pytest.raises(ValidationError) as info:
        cls.Config.model_validate({"name": "x", "type": check_type, "warnng": 1})
    assert any(e["type"] == "extra_forbidden" for e in info.value.errors())
    assert cls.Config.model_config.get("frozen") is True


@pytest.mark.parametrize("check_type", TYPES)
def test_importing_a_check_module_imports_no_driver(check_type: str) -> None:
    """A missing driver must break only its own check, at load time, with a hint."""
    module = registry.table()[check_type].split(":")[0]
    drivers = ["psycopg", "pg8000", "pymysql", "redis"]
    code = (f"import sys, {module}; "
            f"print([d for d in {drivers!r} if d in sys.modules and d != {module!r}])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True, timeout=60)
    assert done.stdout.strip() == "[]"


def test_importing_the_registry_imports_no_check() -> None:
    code = "import sys, patrol.checks.registry; print(sorted(m for m in sys.modules " \
           "if m.startswith('patrol.checks.') and m != 'patrol.checks.registry'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True, timeout=60)
    assert done.stdout.strip() == "[]"


def test_missing_driver_is_reported_at_load_time_with_the_extra_to_install(
        monkeypatch, tmp_path: Path) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pg8000" else real(name, *a))
    with pytest.raises(registry.MissingDriver) as info:
        registry.load("postgres")
    assert str(info.value) == ("type 'postgres' needs the Python module 'pg8000', which is "
                               "not installed; pip install 'patrol-inspect[postgres]'")
    from patrol.agent.config import load_config

    path = tmp_path / "agent.yaml"
    path.write_text("checks:\n  - name: pg\n    type: postgres\n    dsn: postgresql://x\n"
                    "  - name: c\n    type: cpu\n")
    config = load_config(path)
    assert [c.config.name for c in config.checks] == ["pg", "c"]
    assert config.warnings == [f"{path}:2: check 'pg': {info.value}"]
    assert config.checks[0].missing_driver == str(info.value)


# --- every type, run once against a real target on this host -----------------------
#
# Targets come from the type itself: built-ins from tests/check_targets.py, plugins from
# the ``patrol.check_targets`` entry-point group. A plugin without one is skipped with a
# reason naming it (it is not Patrol's to invent a target for someone else's check).


@pytest.fixture(scope="module")
def premises(tmp_path_factory: pytest.TempPathFactory) -> Iterator[check_targets.Premises]:
    with check_targets.premises(tmp_path_factory.mktemp("contract")) as made:
        yield made


def _plugin(check_type: str) -> str:
    """``dist (module:Class)`` of the plugin registering ``check_type``."""
    for ep in entry_points(group="patrol.checks"):
        if ep.name == check_type:
            return f"{ep.dist.name if ep.dist else 'an unnamed distribution'} ({ep.value})"
    return "no distribution"


def _target_options(check_type: str, premises: check_targets.Premises,
                    request: pytest.FixtureRequest) -> dict[str, Any]:
    if check_type in registry.BUILTINS:
        target = check_targets.BUILTIN[check_type]
    else:
        found = registry.contract_target(check_type)
        if found is None:
            pytest.skip(f"check type {check_type!r} from plugin {_plugin(check_type)} "
                        f"declares no contract target: name one in the "
                        f"{registry.TARGETS_GROUP!r} entry-point group "
                        "(see patrol.checks.base.ContractLab)")
        target = found
    return dict(target(check_targets.Lab(premises, request)))


def test_every_builtin_type_has_a_real_target() -> None:
    """Built-ins are never skipped: only plugins may come without a target."""
    assert sorted(check_targets.BUILTIN) == sorted(registry.BUILTINS)


@pytest.fixture
def sntp_port() -> Iterator[int]:
    """This suite's own SNTP responder on loopback, for the clock check."""
    from tests.sntp_server import SntpServer

    server = SntpServer()
    yield server.port
    server.close()


@pytest.mark.parametrize("check_type", TYPES)
def test_runs_against_a_real_target_and_emits_only_declared_measurements(
        check_type: str, premises: check_targets.Premises,
        request: pytest.FixtureRequest) -> None:
    check, ctx = build(check_type, **_target_options(check_type, premises, request))
    try:
        result = check.run(ctx)
    except CheckError as exc:
        if check_type not in HARDWARE:
            raise
        assert "nothing to judge" in str(exc) and "leave this check out" in str(exc)
        return
    assert isinstance(result, Result)
    assert isinstance(result.status, Status)
    assert result.summary and "\n" not in result.summary
    assert "testhost" in result.summary, "summaries name the host, like a ticket title"
    json.dumps(result.as_dict())  # diagnostics must be JSON-serialisable
    if check_type == "systemd":
        # No systemd on a CI container: UNKNOWN with a reason is the contract there.
        assert result.status in (Status.OK, Status.CRITICAL, Status.UNKNOWN)
        return
    assert result.status is not Status.UNKNOWN, result.summary
    assert all(isinstance(m, Measurement) for m in result.measurements)
    declared = {spec.name for spec in check.MEASUREMENTS}
    if check_type not in DYNAMIC:
        undeclared = {m.name for m in result.measurements} - declared
        assert not undeclared, f"declare {sorted(undeclared)} in MEASUREMENTS"
    assert result.measurements, "a run against a live target measures something"


def test_plugin_checks_from_the_entry_point_group_are_loaded(monkeypatch) -> None:
    from importlib.metadata import EntryPoint

    fake = EntryPoint("zfs", "patrol.checks.cpu:CpuCheck", "patrol.checks")
    monkeypatch.setattr(registry, "entry_points", lambda group: [fake])
    assert "zfs" in registry.known_types()
    assert registry.table()["zfs"] == "patrol.checks.cpu:CpuCheck"
    # Built-ins win over a plugin that reuses their name.
    clash = EntryPoint("cpu", "evil:Check", "patrol.checks")
    monkeypatch.setattr(registry, "entry_points", lambda group: [clash])
    assert registry.table()["cpu"] == "patrol.checks.cpu:CpuCheck"


def test_entry_points_are_scanned_once_until_refreshed(monkeypatch) -> None:
    from importlib.metadata import EntryPoint

    scans: list[str] = []

    def scan(group: str) -> list[EntryPoint]:
        scans.append(group)
        return [EntryPoint("zfs", "patrol.checks.cpu:CpuCheck", group)]

    monkeypatch.setattr(registry, "entry_points", scan)
    for _ in range(3):  # a config load resolves every check: one scan, not one per check
        assert registry.load("zfs") is registry.load("cpu")
    assert scans == ["patrol.checks"]
    registry.refresh()
    assert "zfs" in registry.known_types()
    assert scans == ["patrol.checks", "patrol.checks"]


# --- every type's ticket body says what healthy means --------------------------------

FLAG = re.compile(r"^1 (when|if) ")


@pytest.mark.parametrize("check_type", TYPES)
def test_flag_measurements_have_an_expectation_for_ticket_bodies(check_type: str) -> None:
    """A 0/1 measurement has no levels on the wire; without a sentence in
    collector/tickets/expectations.py a ticket would show ``up | 0 | -``."""
    from patrol.collector.tickets import expectations

    flags = [spec.name for spec in registry.load(check_type).MEASUREMENTS
             if FLAG.match(spec.description)]
    if check_type not in registry.BUILTINS:
        if flags:  # the table is Patrol's; a plugin cannot add to it (yet)
            pytest.skip(f"plugin {_plugin(check_type)}: ticket bodies show no expectation "
                        f"for its 0/1 measurements {flags}")
        return
    for name in flags:
        assert expectations.expected(check_type, name), (
            f"say what healthy {check_type} {name} is in collector/tickets/expectations.py")


@pytest.mark.parametrize("check_type", TYPES)
def test_real_run_renders_a_body_with_levels_or_expectations(
        check_type: str, premises: check_targets.Premises,
        request: pytest.FixtureRequest) -> None:
    from patrol.agent.events import build_event
    from patrol.agent.state import CheckInfo, CheckView, Transition
    from patrol.collector.policy.correlate import decide
    from patrol.collector.policy.settings import PolicyConfig
    from patrol.collector.tickets.body import render_body, verify_command

    check, ctx = build(check_type, name="probe",
                       **_target_options(check_type, premises, request))
    try:
        result = check.run(ctx)
    except CheckError:
        if check_type not in HARDWARE:
            raise
        return  # no SMART disk or md array here: nothing real to render (see above)
    view = CheckView(CheckInfo("probe", check_type, {"tier": "standard"}), status=Status.WARNING,
                     since=1.7e9, result=result, last_run=1.7e9)
    event = build_event(view, Transition("probe", Status.OK, Status.WARNING), "testhost", {},
                        "0123456789abcdef", 1, evaluator=ctx.evaluator,
                        extra_diagnostics={"result": result.diagnostics},
                        config="/etc/patrol/probe.yaml")
    [opened] = decide(event, None, None, event.observed_at.timestamp(), PolicyConfig())
    markdown = render_body(opened.ticket, event, [], [], verify_command("probe"))
    specs = {spec.name: spec for spec in check.MEASUREMENTS}
    for line in markdown.split("## Measured values\n\n", 1)[1].split("\n\n## ")[0].splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        spec = specs.get(cells[0])
        flag = FLAG.match(spec.description) and check_type in registry.BUILTINS if spec else None
        if spec is not None and (spec.warning is not None or flag):
            assert cells[3] != "-", f"{check_type} {cells[0]}: {line}"
    assert "patrol check --config /etc/patrol/probe.yaml --only probe\n" in markdown
    assert "+00:00" not in markdown
