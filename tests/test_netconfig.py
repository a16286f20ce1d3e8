"""``listen``, ``tls_cert``/``tls_key`` and ``ca_file`` read the same in both configs.

The agent's and the collector's configs take these options from one place
(:mod:`patrol.contract.netconfig`), so the same mistake gives the same sentence at
the same ``FILE:LINE`` whichever daemon's file it is written in."""

from __future__ import annotations

from pathlib import Path

import pytest

from patrol.agent.config import load_config
from patrol.collector.config import load_collector_config
from patrol.contract.yamlsource import ConfigError

LOADERS = {"agent": load_config, "collector": load_collector_config}


def _problems(tmp_path: Path, block: str, lines: list[str]) -> list[str]:
    path = tmp_path / f"{block}.yaml"
    path.write_text(f"{block}:\n" + "".join(f"  {line}\n" for line in lines))
    with pytest.raises(ConfigError) as info:
        LOADERS[block](path)
    return [str(p) for p in info.value.problems]


@pytest.fixture
def pem(tmp_path: Path) -> Path:
    path = tmp_path / "server.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return path


@pytest.mark.parametrize("block", ["agent", "collector"])
@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        pytest.param(["listen: localhost"], ":2: {block}, option 'listen': 'localhost' is "
                     "not HOST:PORT; write it like 127.0.0.1:9731", id="no-port"),
        pytest.param(["listen: '[::1]'"], ":2: {block}, option 'listen': '[::1]' is not "
                     "HOST:PORT; write it like 127.0.0.1:9731", id="ipv6-no-port"),
        pytest.param(["listen: 0.0.0.0:65536"], ":2: {block}, option 'listen': port 65536 is "
                     "out of range; use 1-65535, or 0 for any free port", id="port-range"),
        pytest.param(["tls_cert: {tmp}/missing.pem", "tls_key: {pem}"],
                     ":2: {block}, option 'tls_cert': {tmp}/missing.pem does not exist; give "
                     "the path of a PEM file", id="missing-cert"),
        pytest.param(["tls_cert: {pem}"], ":2: {block}: tls_cert and tls_key go together; "
                     "set both or neither", id="cert-without-key"),
        pytest.param(["tls_key: {pem}"], ":2: {block}: tls_cert and tls_key go together; "
                     "set both or neither", id="key-without-cert"),
    ],
)
def test_the_same_mistake_reads_the_same_in_both_configs(
        tmp_path: Path, pem: Path, block: str, lines: list[str], expected: str) -> None:
    lines = [line.format(tmp=tmp_path, pem=pem) for line in lines]
    path = tmp_path / f"{block}.yaml"
    assert _problems(tmp_path, block, lines) == [
        str(path) + expected.format(block=block, tmp=tmp_path)]


@pytest.mark.parametrize("block", ["agent", "collector"])
def test_a_valid_listener_gives_the_address_to_bind(tmp_path: Path, pem: Path,
                                                    block: str) -> None:
    path = tmp_path / f"{block}.yaml"
    path.write_text(f"{block}:\n  listen: '[::1]:0'\n  tls_cert: {pem}\n  tls_key: {pem}\n")
    settings = getattr(LOADERS[block](path), block)
    assert settings.address == ("::1", 0)
    assert settings.tls_cert == settings.tls_key == pem


def test_each_daemon_keeps_its_own_default_port(tmp_path: Path) -> None:
    for block, port in (("agent", 9731), ("collector", 9732)):
        path = tmp_path / f"{block}.yaml"
        path.write_text(f"{block}: {{}}\n")
        assert getattr(LOADERS[block](path), block).address == ("127.0.0.1", port)


def test_a_missing_collector_ca_bundle_says_what_to_give(tmp_path: Path) -> None:
    assert _problems(tmp_path, "agent", [
        "collector: {url: 'https://collector.example:9732', "
        f"ca_file: {tmp_path}/ca.pem}}"]) == [
        f"{tmp_path}/agent.yaml:2: agent, option 'collector.0.ca_file': {tmp_path}/ca.pem "
        "does not exist; give the path of a PEM CA bundle"]
