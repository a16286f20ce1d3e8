"""``patrol up``: an agent and a collector together on this host.

The embedded default: the collector with its SQLite store and web pages, and an
agent inspecting this host that delivers to it. Tokens are generated on first
start and kept in ``<state_dir>/up.json`` (mode 0600), so a restart keeps the same
tokens and ``patrol tickets`` finds the collector without flags. The printed web link
carries a one-time login code (never the token); each start prints a fresh one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from patrol.agent.config import AgentConfig, CollectorEndpoint, load_config
from patrol.checks.config import Secret

log = logging.getLogger("patrol.up")


def _tokens(path: Path) -> dict[str, str]:
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("agent_token") and saved.get("operator_token"):
            return saved
    return {"agent_token": secrets.token_urlsafe(32),
            "operator_token": secrets.token_urlsafe(32)}


def _save(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(data, handle, indent=2)


def main(agent_path: str, collector_path: str, out: Any = None) -> int:
    from patrol.agent.agent import Agent
    from patrol.collector.config import load_collector_config
    from patrol.collector.service import CollectorService

    out = out or sys.stdout
    agent_config = load_config(agent_path)
    collector_config = load_collector_config(collector_path)
    up_file = Path(agent_config.agent.state_dir) / "up.json"
    tokens = _tokens(up_file)
    service = CollectorService(collector_config, agent_tokens=[tokens["agent_token"]],
                               operator_tokens=[tokens["operator_token"]],
                               agent_config_path=str(Path(agent_path).resolve()))
    service.start()

    def to_local_collector(config: AgentConfig) -> AgentConfig:
        endpoint = CollectorEndpoint(url=service.url, token=Secret(tokens["agent_token"]))
        settings = config.agent.model_copy(update={
            "collector": [endpoint, *[e for e in config.agent.collector
                                      if e.url != service.url]],
            "heartbeat_interval": min(config.agent.heartbeat_interval, 15.0)})
        return dataclasses.replace(config, agent=settings)

    try:
        agent = Agent(agent_path, agent_config, adjust=to_local_collector)
    except Exception:
        service.stop()
        raise
    host, port = agent.config.agent.address
    # A one-time login code, not the token: a link ends up in browser history and logs.
    from patrol.collector.access.sessions import Sessions

    code = Sessions(service.store).issue_login_code("operator", time.time())
    web = f"{service.url}/login?code={code}"
    _save(up_file, {**tokens, "url": service.url, "web": web,
                    "collector_config": str(Path(collector_path).resolve())})
    out.write(
        "Patrol is up: an agent inspecting this host, and a collector with its web page.\n"
        f"  web page         {web}  (the link logs in once; then use the token)\n"
        f"  operator token   {tokens['operator_token']}  (API: Authorization: Bearer ...)\n"
        f"  tickets          patrol tickets list\n"
        f"  agent metrics    http://{host}:{port}/metrics\n"
        f"  tokens saved in  {up_file}\n"
        "Stop with Ctrl-C.\n")
    out.flush()
    try:
        return agent.serve_forever()
    finally:
        service.stop()
