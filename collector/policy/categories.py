"""Check type -> ticket category (DOMAIN.md's categories), overridable.

Decisions, by what a breach of the check most often turns out to be:

* cpu, load -> performance: the host is slow, not out of something.
* memory, swap, disk -> capacity: a resource runs out; the fix is freeing or adding.
* postgres, mysql, redis -> software: DOMAIN.md has no "database" category; a database
  check fails because the server software is down, refuses, or runs out of connections,
  which the body's diagnostics (sessions) make concrete.
* tcp -> network: it tests reachability of a port, the network view of a service.
* http -> software: the connection usually works and the application answers badly
  (status, content, latency); a refused connection is still reported by the check.
* tls_cert -> security: an expired or mismatched certificate breaks trust.
* file -> configuration: missing, stale or wrongly sized files are set-up problems.
* process, systemd, log, nagios, textfile, command -> software.
* heartbeat (a host gone silent) -> network: from the collector's side the host is
  unreachable; the ticket's diagnostics say whether it rebooted.
* net_interface, dns -> network; clock -> configuration (an unsynchronised clock is a
  time-service set-up problem); disk_health, kernel -> hardware (failing disks, I/O
  errors, hung tasks); fd -> capacity; zombies -> software; updates, listen ->
  security (missing security fixes, an unexpected open port).
* anything else -> software.

A check's own ``category`` label wins over both the defaults and the configured
table, so one check can be filed differently without a config change elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping

CATEGORIES = ("hardware", "software", "network", "configuration", "performance", "capacity",
              "permission", "security", "consultation")

DEFAULT_CATEGORY = "software"

DEFAULT_CATEGORIES: dict[str, str] = {
    "cpu": "performance", "load": "performance",
    "memory": "capacity", "swap": "capacity", "disk": "capacity",
    "postgres": "software", "mysql": "software", "redis": "software",
    "tcp": "network", "http": "software", "tls_cert": "security",
    "file": "configuration",
    "process": "software", "systemd": "software", "log": "software",
    "nagios": "software", "textfile": "software", "command": "software",
    "heartbeat": "network",
    "net_interface": "network", "dns": "network", "clock": "configuration",
    "disk_health": "hardware", "kernel": "hardware", "fd": "capacity",
    "zombies": "software", "updates": "security", "listen": "security",
}


def category_for(check_type: str, labels: Mapping[str, str] | None = None,
                 overrides: Mapping[str, str] | None = None) -> str:
    """The category of a ticket for ``check_type``: a valid ``category`` label, then
    ``overrides`` (validated by the config), then the defaults, then ``software``."""
    label = (labels or {}).get("category")
    if label in CATEGORIES:
        return label
    if overrides and check_type in overrides:
        return overrides[check_type]
    return DEFAULT_CATEGORIES.get(check_type, DEFAULT_CATEGORY)
