"""net_interface: a real veth pair this test creates (iproute2), and counter ratios."""

from __future__ import annotations

import os
import subprocess
from collections import namedtuple
from collections.abc import Iterator
from pathlib import Path

import pytest

from patrol.checks.base import CheckError, Status
from tests.conftest import require_command, unavailable
from tests.helpers import build

Nic = namedtuple("Nic", "packets_sent packets_recv errin errout dropin dropout")


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, text=True)


@pytest.fixture
def veth() -> Iterator[tuple[str, str]]:
    """A veth pair ``(a, b)``, both ends down; deleted by name afterwards."""
    require_command("ip", "iproute2")
    a, b = f"ptv{os.getpid() % 100000}a", f"ptv{os.getpid() % 100000}b"
    try:
        _ip("link", "add", a, "type", "veth", "peer", "name", b)
    except subprocess.CalledProcessError as exc:
        unavailable(f"cannot create a veth pair here ({exc.stderr.strip()}); needs root "
                    "and the veth module")
    try:
        yield a, b
    finally:
        subprocess.run(["ip", "link", "del", a], check=False, capture_output=True)


@pytest.mark.slow
def test_real_veth_link_goes_down_and_up(veth: tuple[str, str]) -> None:
    a, b = veth
    check, ctx = build("net_interface", interfaces=[a])
    _ip("link", "set", a, "up")  # its peer is still down: no carrier
    down = check.run(ctx)
    assert down.status is Status.CRITICAL
    assert down.summary == f"{a} is down on testhost (operstate lowerlayerdown)"
    assert down.measurement("link_up", a) == 0
    _ip("link", "set", b, "up")
    up = check.run(ctx)
    assert up.status is Status.OK, up.summary
    assert up.measurement("link_up", a) == 1
    assert up.summary.startswith(f"{a} is up")
    assert up.measurement("errors", a) == 0  # second run: counters compared
    assert up.diagnostics["interfaces"][a]["virtual"] is True


def test_virtual_interfaces_are_left_out_by_default(veth: tuple[str, str]) -> None:
    a, _ = veth
    _ip("link", "set", a, "up")
    check, ctx = build("net_interface")
    try:
        result = check.run(ctx)
    except CheckError as exc:  # a container with no hardware interface at all
        assert "no hardware interfaces on testhost" in str(exc)
        return
    assert a not in result.diagnostics["interfaces"]
    assert "lo" not in result.diagnostics["interfaces"]
    for name in result.diagnostics["interfaces"]:
        assert "/devices/virtual/" not in os.path.realpath(f"/sys/class/net/{name}")


def _sysfs(tmp_path: Path, name: str, **attrs: str) -> Path:
    """A /sys/class/net look-alike (sysfs layout as documented in
    Documentation/ABI/testing/sysfs-class-net)."""
    device = tmp_path / "devices" / "pci0000:00" / name
    device.mkdir(parents=True)
    for key, value in {"flags": "0x1003", "operstate": "up", "carrier": "1",
                       "speed": "1000", "duplex": "full", **attrs}.items():
        (device / key).write_text(value + "\n")
    root = tmp_path / "class"
    root.mkdir(exist_ok=True)
    (root / name).symlink_to(device)
    return root


def test_error_and_drop_ratios_between_runs(tmp_path: Path) -> None:
    root = _sysfs(tmp_path, "eth9")
    samples = iter([{"eth9": Nic(1000, 1000, 0, 0, 0, 0)},
                    {"eth9": Nic(1500, 1490, 5, 0, 10, 0)}])
    check, ctx = build("net_interface",
                       world={"sys_class_net": root, "counters": lambda pernic: next(samples)})
    first = check.run(ctx)
    assert first.summary == "eth9 is up at 1,000 Mb/s on testhost"
    assert first.measurement("error_ratio", "eth9") is None
    assert first.measurement("speed_bytes_per_second", "eth9") == 125_000_000
    second = check.run(ctx)
    assert second.measurement("errors", "eth9") == 5
    assert second.measurement("error_ratio", "eth9") == 5 / 1005
    assert second.measurement("drop_ratio", "eth9") == 10 / 1005
    assert second.status is Status.WARNING
    assert second.summary == ("eth9 has 0.5% errors per packet on testhost (warning at 0.1%); "
                              "5 since the previous run")


def test_half_duplex_is_a_warning(tmp_path: Path) -> None:
    root = _sysfs(tmp_path, "eth9", duplex="half", speed="100")
    check, ctx = build("net_interface", world={"sys_class_net": root,
                                               "counters": lambda pernic: {}})
    result = check.run(ctx)
    assert result.status is Status.WARNING
    assert result.summary == "eth9 runs half duplex at 100 Mb/s on testhost (warning at 0)"


def test_several_interfaces_down_name_the_first_and_count_the_rest(tmp_path: Path) -> None:
    root = _sysfs(tmp_path, "eth0", operstate="down", carrier="0")
    _sysfs(tmp_path, "eth1", operstate="down", carrier="0")
    _sysfs(tmp_path, "eth2", operstate="down", carrier="0")
    _sysfs(tmp_path, "eth3")
    check, ctx = build("net_interface", world={"sys_class_net": root,
                                               "counters": lambda pernic: {}})
    result = check.run(ctx)
    assert result.status is Status.CRITICAL
    assert result.summary == ("eth0 is down on testhost (operstate down) "
                              "(and 2 more interfaces not OK)")
    assert result.measurement("link_up", "eth3") == 1


@pytest.mark.slow
def test_link_follows_a_peer_in_another_network_namespace(veth: tuple[str, str]) -> None:
    """The usual container layout: our end in this namespace, the peer in another one
    that a test-made namespace brings up and down."""
    a, b = veth
    namespace = f"patrol-ns-{os.getpid()}"
    try:
        _ip("netns", "add", namespace)
    except subprocess.CalledProcessError as exc:
        unavailable(f"cannot create a network namespace ({exc.stderr.strip()})")
    try:
        _ip("link", "set", b, "netns", namespace)
        _ip("link", "set", a, "up")
        check, ctx = build("net_interface", interfaces=[a])
        assert check.run(ctx).measurement("link_up", a) == 0
        _ip("-n", namespace, "link", "set", b, "up")
        result = check.run(ctx)
        assert result.measurement("link_up", a) == 1
        assert result.status is Status.OK
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=False, capture_output=True)
