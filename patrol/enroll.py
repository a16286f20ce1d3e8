"""``patrol enroll``: get this agent its own credential from the collector.

Asks the collector's operator API for a credential bound to the agent's host name
(``agent.hostname``), writes the token to ``<state_dir>/collector.token`` (mode 0600,
never to the config or the terminal) and prints the one config line that uses it:
``token: file:<state_dir>/collector.token``. The operator token is needed once, for
this call; the agent itself never holds it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, TextIO

from patrol.agent.config import AgentConfig
from patrol.agent.identity import ensure_state_dir

TOKEN_FILE = "collector.token"


def write_token(state_dir: Path, token: str) -> Path:
    path = ensure_state_dir(state_dir) / TOKEN_FILE
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return path


def main(config: AgentConfig, url: str | None, operator_token: str | None,
         also: list[str] | None = None, out: TextIO | None = None) -> int:
    from patrol.collector.client import _connection, _request

    out = out or sys.stdout
    settings = config.agent
    default_url = settings.collector[0].url if settings.collector else None
    base, token = _connection(url or default_url, operator_token)
    hostname = settings.hostname
    issued: dict[str, Any] = _request("POST", f"{base}/api/v1/credentials", token, json={
        "kind": "agent", "name": hostname, "hosts": [hostname, *(also or [])]})
    path = write_token(Path(settings.state_dir), issued["token"])
    out.write(f"enrolled {hostname} with {base}: may report {', '.join(issued['hosts'])}\n"
              f"token written to {path} (mode 0600); in the agent config:\n"
              f"  collector:\n    url: {base}\n    token: file:{path.resolve()}\n")
    return 0
