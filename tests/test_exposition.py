"""The Prometheus families the agent exposes: exact text, escaping, promtool, speed."""

from __future__ import annotations

import subprocess

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.registry import CollectorRegistry

import patrol.agent.version
from patrol.agent.exposition import StateCollector, build_registry
from patrol.agent.state import CheckInfo, StateTable
from patrol.agent.version import AGENT_VERSION
from patrol.checks.base import Measurement, Result, Status
from patrol.checks.config import Sustain
from tests.conftest import require_command

NOW = 1_700_000_000.5


def table_with_checks() -> StateTable:
    table = StateTable([
        CheckInfo("root-disk", "disk", labels={"team": "ops"}),
        CheckInfo("cpu", "cpu"),
        CheckInfo("pg-conns", "postgres"),  # never run
    ])
    table.record(
        "root-disk",
        Result(
            Status.CRITICAL,
            '/var/lib is 96.0% full on db-01 ("critical" at 95%)',
            (
                Measurement("used_ratio", 0.5, "/"),
                Measurement("used_ratio", 0.96, "/var/lib"),
                Measurement("free_bytes", 4096.0, "/var/lib"),
            ),
            {"largest": ["/var/lib/postgresql"]},
        ),
        Sustain(), NOW, 0.0125,
    )
    table.record(
        "cpu", Result(Status.OK, "CPU is 12% busy on db-01", (Measurement("busy_ratio", 0.12),)),
        Sustain(count=3), NOW + 1, 1.25,
    )
    return table


def exposition(table: StateTable, labels: dict[str, str] | None = None) -> str:
    """The text of both render paths, after checking they agree byte for byte."""
    registry = build_registry(table, labels, process=False)
    text = generate_latest(registry)
    assert registry.text() == text  # fast path, cold cache
    assert registry.text() == text  # fast path, warm cache
    return text.decode()


def test_exposition_text_is_exact() -> None:
    assert exposition(table_with_checks(), {"host": "db-01"}) == f"""\
# HELP patrol_check_status Hard status of the check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN \
(sustained for the check's 'for' setting).
# TYPE patrol_check_status gauge
patrol_check_status{{check="root-disk",type="disk"}} 2.0
patrol_check_status{{check="cpu",type="cpu"}} 0.0
patrol_check_status{{check="pg-conns",type="postgres"}} 0.0
# HELP patrol_check_soft_status Status of the check's latest run, before sustain: 0 OK, \
1 WARNING, 2 CRITICAL, 3 UNKNOWN.
# TYPE patrol_check_soft_status gauge
patrol_check_soft_status{{check="root-disk",type="disk"}} 2.0
patrol_check_soft_status{{check="cpu",type="cpu"}} 0.0
# HELP patrol_check_value Latest value of each measurement of a check, in base units \
(unit suffix in the measurement label); item is the instance or empty.
# TYPE patrol_check_value gauge
patrol_check_value{{check="root-disk",item="/",measurement="used_ratio",type="disk"}} 0.5
patrol_check_value{{check="root-disk",item="/var/lib",measurement="used_ratio",type="disk"}} 0.96
patrol_check_value{{check="root-disk",item="/var/lib",measurement="free_bytes",type="disk"}} 4096.0
patrol_check_value{{check="cpu",item="",measurement="busy_ratio",type="cpu"}} 0.12
# HELP patrol_check_duration_seconds Wall-clock duration of the check's last run.
# TYPE patrol_check_duration_seconds gauge
patrol_check_duration_seconds{{check="root-disk",type="disk"}} 0.0125
patrol_check_duration_seconds{{check="cpu",type="cpu"}} 1.25
# HELP patrol_check_last_run_timestamp_seconds Unix time when the check's last run finished.
# TYPE patrol_check_last_run_timestamp_seconds gauge
patrol_check_last_run_timestamp_seconds{{check="root-disk",type="disk"}} 1.7000000005e+09
patrol_check_last_run_timestamp_seconds{{check="cpu",type="cpu"}} 1.7000000015e+09
# HELP patrol_agent_info Patrol agent version and labels; always 1.
# TYPE patrol_agent_info gauge
patrol_agent_info{{host="db-01",version="{AGENT_VERSION}"}} 1.0
"""


def test_check_not_run_yet_has_only_a_status() -> None:
    lines = [line for line in exposition(table_with_checks()).splitlines() if "pg-conns" in line]
    assert lines == ['patrol_check_status{check="pg-conns",type="postgres"} 0.0']


def test_summary_and_diagnostics_never_reach_the_metrics() -> None:
    text = exposition(table_with_checks())
    assert "full on db-01" not in text
    assert '"critical"' not in text and "postgresql" not in text


@pytest.mark.parametrize(
    ("item", "escaped"),
    [
        ('/mnt/"quoted"', r'/mnt/\"quoted\"'),
        ("C:\\data", r"C:\\data"),
        ("two\nlines", r"two\nlines"),
        ("/srv/ünïcode space", "/srv/ünïcode space"),
    ],
    ids=["quotes", "backslash", "newline", "unicode"],
)
def test_label_values_are_escaped(item: str, escaped: str) -> None:
    table = StateTable([CheckInfo('odd "name"', "disk")])
    table.record('odd "name"', Result(Status.OK, "x", (Measurement("used_ratio", 0.25, item),)),
                 Sustain(), NOW, 0.001)
    assert (
        f'patrol_check_value{{check="odd \\"name\\"",item="{escaped}",'
        f'measurement="used_ratio",type="disk"}} 0.25'
    ) in exposition(table).splitlines()


def test_duplicate_measurement_is_exposed_once_with_the_first_value() -> None:
    table = StateTable([CheckInfo("d", "disk")])
    table.record("d", Result(Status.OK, "x", (Measurement("used_ratio", 0.1, "/"),
                                              Measurement("used_ratio", 0.9, "/"))),
                 Sustain(), NOW, 0.001)
    values = [line for line in exposition(table).splitlines()
              if line.startswith("patrol_check_value{")]
    assert values == [
        'patrol_check_value{check="d",item="/",measurement="used_ratio",type="disk"} 0.1'
    ]


@pytest.mark.parametrize("render", ["generate_latest", "fast"])
def test_scrape_reads_the_table_at_scrape_time(render: str) -> None:
    table = StateTable([CheckInfo("cpu", "cpu"), CheckInfo("gone", "tcp")])
    registry = build_registry(table, process=False)

    def scrape() -> str:
        return (generate_latest(registry) if render == "generate_latest"
                else registry.text()).decode()

    assert "patrol_check_soft_status{" not in scrape()
    table.record("cpu", Result(Status.WARNING, "x", (Measurement("busy_ratio", 0.9),)),
                 Sustain(count=2), NOW, 0.1)
    text = scrape()
    assert 'patrol_check_soft_status{check="cpu",type="cpu"} 1.0' in text
    assert 'patrol_check_status{check="cpu",type="cpu"} 0.0' in text  # not hard yet
    table.record("cpu", Result(Status.CRITICAL, "x", (Measurement("busy_ratio", 0.99),)),
                 Sustain(count=2), NOW + 60, 0.1)
    text = scrape()
    assert 'patrol_check_status{check="cpu",type="cpu"} 2.0' in text
    assert ('patrol_check_value{check="cpu",item="",measurement="busy_ratio",type="cpu"} 0.99'
            in text)
    assert "0.9\n" not in text and 'check="gone"' in text
    table.replace_checks([CheckInfo("cpu", "cpu")])
    assert 'check="gone"' not in scrape()


def test_fast_path_matches_generate_latest_with_process_metrics() -> None:
    registry = build_registry(big_table(), {"host": "db-01", "env": 'a "quoted" value'})
    # process_cpu_seconds_total may tick between two renders: compare its names only
    def shape(text: bytes) -> list[str]:
        return [line if line.startswith("patrol_") else line.split(" ")[0]
                for line in text.decode().splitlines()]

    assert shape(registry.text()) == shape(generate_latest(registry))
    assert 'patrol_agent_info{env="a \\"quoted\\" value",host="db-01",' in registry.text().decode()


def test_empty_table_still_describes_every_family() -> None:
    text = exposition(StateTable())
    assert [line for line in text.splitlines() if line.startswith("# TYPE")] == [
        f"# TYPE {name} gauge" for name in (
            "patrol_check_status", "patrol_check_soft_status", "patrol_check_value",
            "patrol_check_duration_seconds", "patrol_check_last_run_timestamp_seconds",
            "patrol_agent_info",
        )
    ]


def test_agent_labels_cannot_override_the_version() -> None:
    assert f'patrol_agent_info{{version="{AGENT_VERSION}"}} 1.0' in exposition(
        StateTable(), {"version": "fake"})


def test_registry_is_our_own_with_process_metrics_but_no_global_collectors() -> None:
    registry = build_registry(table_with_checks(), {"host": "db-01"})
    assert registry is not REGISTRY
    text = generate_latest(registry).decode()
    assert "process_resident_memory_bytes " in text
    assert "python_info" not in text and "python_gc_" not in text


def test_registering_does_not_collect_and_clashes_are_detected() -> None:
    class Exploding(StateTable):
        def snapshot(self):  # type: ignore[override]
            raise AssertionError("collect() was called at registration")

    registry = CollectorRegistry()
    registry.register(StateCollector(Exploding()))
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        registry.register(StateCollector(Exploding()))


def test_invalid_agent_label_names_are_refused() -> None:
    with pytest.raises(ValueError, match=r"agent label name\(s\) '1dc', 'data-center' are not "
                                         r"valid Prometheus label names"):
        StateCollector(StateTable(), {"data-center": "x", "1dc": "y", "ok_name": "z"})


def test_version_falls_back_when_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The version comes from the package metadata (patrol/contract/wire.py, shared by agent
    and collector); a checkout that was never installed says so instead of crashing."""
    import patrol.contract.wire as wire
    def missing(name: str) -> str:
        assert name == "patrol-inspect"
        raise wire.PackageNotFoundError(name)

    monkeypatch.setattr(wire, "version", missing)
    assert wire._installed_version() == "0+unknown"
    monkeypatch.setattr(wire, "version", lambda name: "1.2.3")
    assert wire._installed_version() == "1.2.3"
    assert patrol.agent.version.AGENT_VERSION == wire.PATROL_VERSION


def big_table(checks: int = 20, measurements: int = 5) -> StateTable:
    table = StateTable([CheckInfo(f"check-{i}", "disk") for i in range(checks)])
    for i in range(checks):
        table.record(
            f"check-{i}",
            Result(Status.WARNING, "x", tuple(
                Measurement(f"m{j}_ratio", j / 7, f"/mnt/{j}") for j in range(measurements)
            )),
            Sustain(), NOW, 0.01,
        )
    return table


@pytest.mark.parametrize("table", [table_with_checks(), big_table()], ids=["small", "20x5"])
def test_promtool_finds_nothing_to_report(table: StateTable) -> None:
    promtool = require_command("promtool", "prometheus")
    text = generate_latest(build_registry(table, {"host": "db-01", "role": "db"}))
    done = subprocess.run([promtool, "check", "metrics"], input=text, check=False,
                          capture_output=True, timeout=30)
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")


def test_cached_rendering_follows_each_new_run() -> None:
    """Lines are cached per check until it runs again: a new run must show up."""
    table = big_table()
    registry = build_registry(table, {"host": "db-01"})
    registry.text()  # warm up
    for i in range(200):
        if i % 10 == 0:  # a check finished a run: its lines are rebuilt
            table.record("check-3", Result(Status.OK, "x", (Measurement("m_ratio", i, "/"),)),
                         Sustain(), NOW + i, 0.01)
        text = registry.text().decode()
        expected = i - i % 10
        line = ('patrol_check_value{check="check-3",item="/",measurement="m_ratio",type="disk"} '
                f"{float(expected)}")
        assert line in text
