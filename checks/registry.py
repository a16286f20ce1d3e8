"""Which ``type:`` name is which check class: a table, plus an entry-point group.

Registries are data. Importing this module imports no check; a check module is
imported only when a config names its type, so a missing database driver breaks
only the check that needs it, with a message that says what to install.

Third-party checks register in the ``patrol.checks`` entry-point group::

    [project.entry-points."patrol.checks"]
    zfs = "patrol_zfs:ZfsCheck"

and may name, in the ``patrol.check_targets`` group, a target for Patrol's contract
suite (a function of a :class:`~patrol.checks.base.ContractLab` returning options)::

    [project.entry-points."patrol.check_targets"]
    zfs = "patrol_zfs:contract_target"

The entry-point scan reads the metadata of every installed distribution (~5 ms),
and a config load resolves every check through :func:`table`, so the scan is
cached for the process. A plugin installed while the agent runs is seen after
:func:`refresh` (or a restart).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Mapping
from difflib import get_close_matches
from functools import lru_cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from patrol.checks.base import Check

BUILTINS: dict[str, str] = {
    "cpu": "patrol.checks.cpu:CpuCheck",
    "memory": "patrol.checks.memory:MemoryCheck",
    "swap": "patrol.checks.swap:SwapCheck",
    "load": "patrol.checks.load:LoadCheck",
    "disk": "patrol.checks.disk:DiskCheck",
    "process": "patrol.checks.process:ProcessCheck",
    "systemd": "patrol.checks.systemd:SystemdCheck",
    "tcp": "patrol.checks.tcp:TcpCheck",
    "http": "patrol.checks.http:HttpCheck",
    "tls_cert": "patrol.checks.tls_cert:TlsCertCheck",
    "postgres": "patrol.checks.postgres:PostgresCheck",
    "mysql": "patrol.checks.mysql:MysqlCheck",
    "redis": "patrol.checks.redis:RedisCheck",
    "log": "patrol.checks.log:LogCheck",
    "file": "patrol.checks.file:FileCheck",
    "nagios": "patrol.checks.nagios:NagiosCheck",
    "textfile": "patrol.checks.textfile:TextfileCheck",
    "zombies": "patrol.checks.zombies:ZombiesCheck",
    "fd": "patrol.checks.fd:FdCheck",
    "kernel": "patrol.checks.kernel:KernelCheck",
    "listen": "patrol.checks.listen:ListenCheck",
    "updates": "patrol.checks.updates:UpdatesCheck",
    "net_interface": "patrol.checks.net_interface:NetInterfaceCheck",
    "clock": "patrol.checks.clock:ClockCheck",
    "dns": "patrol.checks.dns:DnsCheck",
    "disk_health": "patrol.checks.disk_health:DiskHealthCheck",
}

# Which extra installs a driver, for the message when it is missing.
EXTRAS = {"pg8000": "postgres", "psycopg": "postgres", "pymysql": "mysql", "redis": "redis"}


class RegistryError(Exception):
    """Base for problems resolving a ``type:`` name."""


class UnknownCheckType(RegistryError):
    def __init__(self, name: str, known: list[str]) -> None:
        hint = get_close_matches(name, known, n=1)
        self.hint = hint[0] if hint else None
        did = f"did you mean '{self.hint}'?" if self.hint else f"known types: {', '.join(known)}"
        super().__init__(f"unknown check type; {did}")


class MissingDriver(RegistryError):
    def __init__(self, check_type: str, module: str) -> None:
        extra = EXTRAS.get(module)
        how = (
            f"pip install 'patrol-inspect[{extra}]'" if extra else f"pip install {module}"
        )
        self.module = module
        super().__init__(
            f"type '{check_type}' needs the Python module '{module}', which is not "
            f"installed; {how}"
        )


@lru_cache(maxsize=4)
def _plugins(scan: Callable[..., Any], path: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """The ``patrol.checks`` entry points, cached per scanning function (so a test
    that swaps ``entry_points`` sees its own) and per ``sys.path``."""
    return tuple((ep.name, ep.value) for ep in scan(group="patrol.checks"))


def refresh() -> None:
    """Forget the cached entry-point scan: the next :func:`table` scans again."""
    _plugins.cache_clear()


def table() -> dict[str, str]:
    """Every known type name -> ``"module:Class"``; built-ins win over plugins."""
    return {**dict(_plugins(entry_points, tuple(sys.path))), **BUILTINS}


def known_types() -> list[str]:
    return sorted(table())


def load(check_type: str) -> type[Check]:
    """Import and return the check class for ``check_type``.

    Raises :class:`UnknownCheckType` or :class:`MissingDriver` (both carry a message
    fit for an operator).
    """
    spec = BUILTINS.get(check_type) or table().get(check_type)  # built-ins need no scan
    if spec is None:
        raise UnknownCheckType(check_type, known_types())
    module_name, _, attr = spec.partition(":")
    # A plugin's class is taken at its word: it is a Check (base.py says what that is).
    cls: type[Check] = getattr(importlib.import_module(module_name), attr)
    for module in getattr(cls, "REQUIRES", ()):
        if importlib.util.find_spec(module) is None:
            raise MissingDriver(check_type, module)
    return cls


TARGETS_GROUP = "patrol.check_targets"


def contract_target(check_type: str) -> Callable[..., Mapping[str, Any]] | None:
    """The test target a plugin declares for ``check_type`` in ``patrol.check_targets``,
    or None when it declares none (the contract suite reports that, rather than fail).
    Built-in types keep theirs beside Patrol's tests (``tests/check_targets.py``)."""
    for ep in entry_points(group=TARGETS_GROUP):
        if ep.name == check_type:
            target: Callable[..., Mapping[str, Any]] = ep.load()
            return target
    return None
