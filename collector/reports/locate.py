"""Which store a report reads, and with which policy.

In order: ``--store URL``; else the store of ``--config collector.yaml`` (whose
policy also sets the SLA "near" ratio and the heartbeat timeout); else ``patrol
up``'s, found the way ``patrol tickets`` finds it: ``state/up.json`` in the working
directory names the collector config ``patrol up`` ran with (or, if written by an
older Patrol, ``configs/collector.yaml``, its default). A relative SQLite path means
the same as for ``patrol up``: relative to the working directory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patrol.collector.policy.settings import PolicyConfig

UP_FILE = Path("state") / "up.json"
UP_DEFAULT_CONFIG = Path("configs") / "collector.yaml"


class NoStore(Exception):
    """No store was named and none could be found; the message says what to pass."""


@dataclass(frozen=True)
class Source:
    store: str
    policy: PolicyConfig
    found_by: str  # what named the store, for messages
    language: str = "en"  # the collector config's, for the HTML report
    reports: Any = None  # the config's ``reports:`` (ReportsSettings), for --mail


def _from_config(path: Path, found_by: str) -> Source:
    from patrol.collector.config import load_collector_config

    config = load_collector_config(path)
    return Source(config.collector.store, config.policy, found_by,
                  config.collector.language, config.reports)


def locate(store: str | None, config: str | None, cwd: Path | None = None) -> Source:
    """Raises NoStore, or ConfigError for a bad ``--config``."""
    cwd = cwd or Path.cwd()
    if config is not None:
        found = _from_config(Path(config), f"--config {config}")
        return Source(store, found.policy, "--store", found.language,
                      found.reports) if store else found
    if store:
        return Source(store, PolicyConfig(), "--store")
    up_file = cwd / UP_FILE
    if up_file.is_file():
        saved = json.loads(up_file.read_text())
        path = Path(saved.get("collector_config") or cwd / UP_DEFAULT_CONFIG)
        if path.is_file():
            return _from_config(path, f"patrol up ({up_file})")
    raise NoStore("no store to read: pass --store URL (sqlite:///state/collector.db, "
                  "postgresql://...) or --config collector.yaml, or run this where "
                  "'patrol up' runs (it keeps state/up.json there)")
