"""The collector process: store, engine, watchdog and the HTTP server, started and
stopped together. ``patrol collector`` runs it alone; ``patrol up`` runs it beside
an agent in one process.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from collector.config import CollectorConfig
from collector.engine import Engine
from collector.policy_config import PolicyConfig
from collector.watchdog import Watchdog

log = logging.getLogger("patrol.collector")


class CollectorService:
    def __init__(self, config: CollectorConfig, *, policy: PolicyConfig | None = None,
                 agent_tokens: list[str] | None = None,
                 operator_tokens: list[str] | None = None,
                 agent_config_path: str = "/etc/patrol/agent.yaml",
                 watchdog_interval: float | None = None) -> None:
        from collector.store import open_store

        settings = config.collector
        self.settings = settings
        self.store = open_store(settings.store)
        self.engine = Engine(self.store, policy or config.policy,
                             agent_config_path=agent_config_path)
        self.engine.sync_config_windows(config.maintenance)
        self.watchdog = Watchdog(self.engine)
        self.agent_tokens = list(settings.agent_tokens) + list(agent_tokens or [])
        self.operator_tokens = list(settings.operator_tokens) + list(operator_tokens or [])
        self.watchdog_interval = watchdog_interval or settings.watchdog_interval
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.server: Any = None

    @property
    def url(self) -> str:
        host, port = self.settings.address
        if self.server is not None and getattr(self.server, "servers", None):
            port = self.server.servers[0].sockets[0].getsockname()[1]
        scheme = "https" if self.settings.tls_cert else "http"
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"{scheme}://{shown}:{port}"

    def app(self) -> Any:
        from collector.api import create_app

        return create_app(self.engine, self.agent_tokens, self.operator_tokens,
                          self.settings.max_body_bytes)

    def _watch(self) -> None:
        while not self._stop.wait(self.watchdog_interval):
            try:
                self.watchdog.run_once()
            except Exception:  # a failed pass must not end the watchdog
                log.exception("watchdog pass failed")

    def start(self) -> None:
        """Serve in background threads; returns once the port is bound."""
        import uvicorn

        if not self.agent_tokens or not self.operator_tokens:
            log.warning("no %s tokens configured: that API refuses every request",
                        "agent" if not self.agent_tokens else "operator")
        host, port = self.settings.address
        options: dict[str, Any] = {"host": host, "port": port, "log_level": "warning",
                                   "access_log": False, "lifespan": "off"}
        if self.settings.tls_cert:
            options.update(ssl_certfile=str(self.settings.tls_cert),
                           ssl_keyfile=str(self.settings.tls_key))
        self.server = uvicorn.Server(uvicorn.Config(self.app(), **options))
        self.server.install_signal_handlers = lambda: None  # the caller owns signals
        serving = threading.Thread(target=self.server.run, name="collector-http", daemon=True)
        serving.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not serving.is_alive() or time.monotonic() > deadline:
                raise OSError(98, f"the collector could not listen on {self.settings.listen}")
            time.sleep(0.01)
        watch = threading.Thread(target=self._watch, name="collector-watchdog", daemon=True)
        watch.start()
        self._threads = [serving, watch]
        log.info("patrol collector at %s (store %s)", self.url, _store_label(self.settings.store))

    def stop(self) -> None:
        self._stop.set()
        if self.server is not None:
            self.server.should_exit = True
        for thread in self._threads:
            thread.join(timeout=5)
        self.store.close()


def _store_label(url: str) -> str:
    """The store URL without credentials, for logs."""
    if url.startswith("sqlite:"):
        return url
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}" \
           f"{parts.path}"

