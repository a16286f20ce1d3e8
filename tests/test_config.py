"""Config validation: every problem at once, as FILE:LINE: ..., word for word."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from patrol.agent.config import ConfigError, load_config
from patrol.checks.config import Secret
from patrol.cli import main as cli
from patrol.contract.netconfig import parse_listen


def write(tmp_path: Path, text: str, name: str = "agent.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(p) for p in info.value.problems]


def test_every_problem_is_reported_at_once_with_file_line_and_advice(tmp_path: Path) -> None:
    path = write(tmp_path, """
        agent:
          listen: 127.0.0.1:99999
          interval: 5x
        checks:
          - name: root-cpu
            type: cpu
            warnng: 85%
            critical: 95%
            critical: 96%
          - name: root-cpu
            type: cpu
          - name: other
            type: cpuu
          - name: th
            type: cpu
            thresholds:
              iowait_ratio: {warning: 2GiB}
              used: {warning: 3}
            for: soon
            warning: 150
    """)
    f = str(path)
    assert problems(path) == [
        f"{f}:2: agent, option 'listen': port 99999 is out of range; use 1-65535, "
        "or 0 for any free port",
        f"{f}:3: agent, option 'interval': '5x' is not a duration; "
        "write it like 30s, 5m, 1h30m or 14d",
        f"{f}:7: check 'root-cpu', option 'warnng': unknown option; did you mean 'warning'?",
        f"{f}:9: check 'root-cpu', option 'critical': duplicate key (first set at line 8); "
        "keep only one",
        f"{f}:10: check 'root-cpu': duplicate check name (first defined at {f}:5); "
        "give each check a unique name",
        f"{f}:13: check 'other', option 'type': unknown check type 'cpuu'; "
        "did you mean 'cpu'?",
        f"{f}:17: check 'th', option 'thresholds.iowait_ratio.warning': '2GiB' does not fit "
        "iowait_ratio (measured in ratio); write a percentage such as 85% "
        "(or a ratio such as 0.85)",
        f"{f}:18: check 'th', option 'thresholds.used': unknown measurement; "
        "did you mean 'used_ratio'?",
        f"{f}:19: check 'th', option 'for': 'soon' is not a sustain time; write a duration "
        "such as 5m, or a number of consecutive results such as 3",
        f"{f}:20: check 'th', option 'warning': 150 is not a ratio between 0 and 1; "
        "write 150% if you meant a percentage",
    ]


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        pytest.param("  - type: cpu\n", "{f}:2: checks, option 'name': required option is "
                     "missing; give the check a unique name", id="missing-name"),
        pytest.param("  - name: c\n", "{f}:2: check 'c', option 'type': required option is "
                     "missing; set it to one of: {types}", id="missing-type"),
        pytest.param("  - name: c\n    type: cpu\n    interval: 0s\n",
                     "{f}:4: check 'c', option 'interval': must be longer than zero; write it "
                     "like 30s or 5m", id="zero-interval"),
        pytest.param("  - name: c\n    type: cpu\n    schedule: '61 * * * *'\n",
                     "{f}:4: check 'c', option 'schedule': '61 * * * *' is not a cron schedule "
                     "(Error validating expression '61': the last value (61) is higher than the "
                     "maximum value (59)); write five fields: minute hour day month weekday, "
                     "e.g. '0 7 * * *'", id="bad-cron"),
        pytest.param("  - name: c\n    type: cpu\n    diagnostics: maybe\n",
                     "{f}:4: check 'c', option 'diagnostics': expected true or false "
                     "(got 'maybe')", id="bad-bool"),
        pytest.param("  - name: 'bad name'\n    type: cpu\n",
                     "{f}:2: check 'bad name', option 'name': 'bad name' is not allowed here; "
                     "use letters, digits and . _ : @ -, starting with a letter or digit",
                     id="bad-name"),
        pytest.param("  - name: c\n    type: cpu\n    runbook: wiki/disk\n",
                     "{f}:4: check 'c', option 'runbook': 'wiki/disk' is not a URL; write it "
                     "like https://wiki/runbooks/disk", id="bad-runbook"),
        pytest.param("  - name: c\n    type: cpu\n    labels: {bad-label: x}\n",
                     "{f}:4: check 'c', option 'labels': label name 'bad-label' is not valid; "
                     "use letters, digits and underscores", id="bad-label"),
        pytest.param("  - name: c\n    type: cpu\n    overrides: {'/var': {warnng: 1%}}\n",
                     "{f}:4: check 'c', option 'overrides./var.warnng': unknown option; "
                     "did you mean 'warning'?", id="nested-typo"),
        pytest.param("  - name: c\n    type: cpu\n    token: x\n",
                     "{f}:4: check 'c', option 'token': unknown option; valid options are: "
                     "critical, diagnostics, for, interval, labels, name, overrides, recover, "
                     "runbook, sample, schedule, thresholds, timeout, timezone, type, warning",
                     id="unknown-no-hint"),
    ],
)
def test_single_mistakes(tmp_path: Path, snippet: str, expected: str) -> None:
    from patrol.checks.registry import known_types

    path = write(tmp_path, "checks:\n" + snippet)
    assert problems(path) == [expected.format(f=path, types=", ".join(known_types()))]


def test_unset_environment_variable_is_an_error_with_its_line(tmp_path: Path,
                                                              monkeypatch) -> None:
    monkeypatch.delenv("PATROL_TEST_UNSET_VAR", raising=False)
    path = write(tmp_path, "agent:\n  token: ${PATROL_TEST_UNSET_VAR}\n")
    assert problems(path) == [
        f"{path}:2: option 'token': environment variable PATROL_TEST_UNSET_VAR is not set; "
        "export it, or write ${PATROL_TEST_UNSET_VAR:-default}"
    ]


def test_secrets_by_reference_resolve_and_never_print(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATROL_TEST_TOKEN", "s3cret-env")
    secret_file = tmp_path / "token"
    secret_file.write_text("s3cret-file\n")
    path = write(tmp_path, "agent:\n  token: ${PATROL_TEST_TOKEN}\n")
    config = load_config(path)
    assert isinstance(config.agent.token, Secret)
    assert config.agent.token.reveal() == "s3cret-env"
    assert "s3cret" not in repr(config.agent)
    path = write(tmp_path, f"agent:\n  token: file:{secret_file}\n")
    assert load_config(path).agent.token.reveal() == "s3cret-file"
    assert load_config(path).secrets() == {"s3cret-file"}


def test_include_folder_adds_checks_and_duplicates_across_files_are_caught(
        tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    write(tmp_path, "checks:\n  - name: extra\n    type: cpu\n", "conf.d/10-extra.yaml")
    path = write(tmp_path, "include: conf.d\nchecks:\n  - name: base\n    type: cpu\n")
    assert [c.config.name for c in load_config(path).checks] == ["base", "extra"]
    write(tmp_path, "checks:\n  - name: base\n    type: cpu\n", "conf.d/20-dup.yaml")
    assert problems(path) == [
        f"{tmp_path}/conf.d/20-dup.yaml:2: check 'base': duplicate check name (first defined "
        f"at {path}:3); give each check a unique name"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("chekcs: []\n", "{f}:1: unknown top-level key 'chekcs'; did you mean "
                     "'checks'?", id="top-level-typo"),
        pytest.param("checks: [\n", "{f}:2: invalid YAML: expected the node content, but found "
                     "'<stream end>'; fix the syntax at this line", id="yaml-syntax"),
        pytest.param("", "{f}:1: the file is empty; add an 'agent:' block and a 'checks:' list",
                     id="empty"),
        pytest.param("checks: {a: 1}\n", "{f}:1: checks: expected a list of checks "
                     "('- name: ...' entries)", id="checks-not-a-list"),
    ],
)
def test_file_level_problems(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    assert problems(path) == [expected.format(f=path)]


def test_validate_command_prints_all_problems_and_exits_1(tmp_path: Path, capsys) -> None:
    good = write(tmp_path, "checks:\n  - name: c\n    type: cpu\n", "good.yaml")
    bad = write(tmp_path, "checks:\n  - name: c\n    type: cpu\n    warnng: 1\n"
                "  - name: d\n    type: disc\n", "bad.yaml")
    assert cli(["validate", str(good)]) == 0
    assert capsys.readouterr().out == f"{good}: OK (1 checks)\n"
    assert cli(["validate", str(good), str(bad)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{good}: OK (1 checks)",
        f"{bad}:4: check 'c', option 'warnng': unknown option; did you mean 'warning'?",
        f"{bad}:6: check 'd', option 'type': unknown check type 'disc'; did you mean 'disk'?",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:9731", ("127.0.0.1", 9731)), ("0.0.0.0:80", ("0.0.0.0", 80)),
     ("[::1]:9731", ("::1", 9731)), (":9731", ("0.0.0.0", 9731))],
)
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


def test_shipped_configs_are_valid(capsys) -> None:
    root = Path(__file__).resolve().parent.parent / "configs"
    files = [root / "agent.yaml", root / "collector.yaml",
             *sorted((root / "examples").glob("*.yaml"))]
    assert len(files) >= 5
    assert cli(["validate", *map(str, files)]) == 0, capsys.readouterr().out


# ---- levels in the wrong order for the measurement's direction ------------------------

@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        pytest.param(
            "    type: disk\n    warning: 95%\n    critical: 85%\n",
            ["{f}:4: check 'c', option 'warning': warning 95% is not below critical 85%, so "
             "the warning level can never fire; used_ratio is worse when higher: set warning "
             "below critical"], id="disk-top-level"),
        pytest.param(
            "    type: disk\n    warning: 97%\n",
            ["{f}:4: check 'c', option 'warning': warning 97% is not below critical 95%, so "
             "the warning level can never fire; used_ratio is worse when higher: set warning "
             "below critical"], id="against-the-default-critical"),
        pytest.param(
            "    type: disk\n    thresholds:\n      inodes_used_ratio:\n"
            "        warning: 90%\n        critical: 80%\n",
            ["{f}:6: check 'c', option 'thresholds.inodes_used_ratio.warning': warning 90% is "
             "not below critical 80%, so the warning level can never fire; inodes_used_ratio "
             "is worse when higher: set warning below critical"], id="per-measurement"),
        pytest.param(
            "    type: disk\n    overrides:\n      /var:\n        critical: 80%\n",
            ["{f}:6: check 'c', option 'overrides./var.critical': warning 85% is not below "
             "critical 80%, so the warning level can never fire; used_ratio is worse when "
             "higher: set warning below critical"], id="per-item-override"),
        pytest.param(
            "    type: disk\n    warning: 80%\n    recover: 90%\n",
            ["{f}:5: check 'c', option 'recover': recover 90% is not below warning 80%, so an "
             "alert would clear the moment it is raised; used_ratio is worse when higher: set "
             "recover below warning"], id="recover-on-the-alert-side"),
        pytest.param(
            "    type: http\n    url: https://example.org\n    thresholds:\n"
            "      tls_expiry_seconds: {warning: 7d, critical: 14d}\n",
            ["{f}:6: check 'c', option 'thresholds.tls_expiry_seconds.warning': warning 7d is "
             "not above critical 14d, so the warning level can never fire; tls_expiry_seconds "
             "is worse when lower: set warning above critical"], id="lower-is-worse"),
    ],
)
def test_inverted_levels_are_rejected_at_their_key(tmp_path: Path, snippet: str,
                                                   expected: list[str]) -> None:
    path = write(tmp_path, "checks:\n  - name: c\n" + snippet)
    assert problems(path) == [e.format(f=path) for e in expected]


@pytest.mark.parametrize("snippet", [
    "    type: disk\n    warning: 70%\n    critical: 80%\n    recover: 60%\n",
    "    type: disk\n    overrides:\n      /boot: {warning: null, critical: 99%}\n",
    "    type: http\n    url: https://example.org\n    thresholds:\n"
    "      tls_expiry_seconds: {warning: 30d, critical: 3d}\n",
    "    type: disk\n    thresholds:\n      used_ratio: {warning: 50%, critical: 60%}\n"
    "    overrides:\n      /var: {critical: 70%}\n",
], ids=["disk-in-order", "override-disables-warning", "lower-is-worse-in-order",
        "override-above-measurement-level"])
def test_levels_in_order_pass(tmp_path: Path, snippet: str) -> None:
    assert load_config(write(tmp_path, "checks:\n  - name: c\n" + snippet)).checks


def test_duplicate_name_is_reported_with_that_entrys_other_problems(tmp_path: Path) -> None:
    path = write(tmp_path, """
        checks:
          - name: root
            type: disk
          - name: root
            type: disk
            warning: 95%
            critical: 85%
            exclude_mount: [/boot]
    """)
    f = str(path)
    assert problems(path) == [
        f"{f}:4: check 'root': duplicate check name (first defined at {f}:2); "
        "give each check a unique name",
        f"{f}:6: check 'root', option 'warning': warning 95% is not below critical 85%, so "
        "the warning level can never fire; used_ratio is worse when higher: set warning "
        "below critical",
        f"{f}:8: check 'root', option 'exclude_mount': unknown option; "
        "did you mean 'exclude_mounts'?",
    ]


@pytest.mark.slow
def test_patrol_validate_command_rejects_inverted_disk_levels(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = write(tmp_path, """
        checks:
          - name: data
            type: disk
            path: /
            warning: 95%
            critical: 85%
    """)
    patrol = Path(sys.executable).with_name("patrol")
    done = subprocess.run([str(patrol), "validate", str(path)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"{path}:5: check 'data', option 'warning': warning 95% is not below critical 85%, "
        "so the warning level can never fire; used_ratio is worse when higher: set warning "
        "below critical",
    ]


def test_a_bad_regex_reads_the_same_in_every_option_that_takes_one(tmp_path: Path) -> None:
    path = write(tmp_path, """
        checks:
          - {name: a, type: log, path: /var/log/syslog, pattern: "error(["}
          - {name: b, type: log, path: /var/log/syslog, pattern: ok, ignore: "error(["}
          - {name: c, type: http, url: "http://127.0.0.1/", body_match: "error(["}
          - {name: d, type: process, pattern: "error(["}
          - name: e
            type: kernel
            ignore:
              - ok
              - "error(["
    """)
    said = ("'error([' is not a valid regular expression: unterminated character set at "
            "position 6; Python re syntax, e.g. 'ERROR|FATAL' or '\\bOOM\\b'")
    assert problems(path) == [
        f"{path}:2: check 'a', option 'pattern': {said}",
        f"{path}:3: check 'b', option 'ignore': {said}",
        f"{path}:4: check 'c', option 'body_match': {said}",
        f"{path}:5: check 'd', option 'pattern': {said}",
        f"{path}:10: check 'e', option 'ignore.1': {said}",
    ]
