"""The collector process: store, engine, watchdog and the HTTP server, started and
stopped together. ``patrol collector`` runs it alone; ``patrol up`` runs it beside
an agent in one process.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from patrol.collector.config import CollectorConfig
from patrol.collector.engine import Engine
from patrol.collector.policy.settings import PolicyConfig
from patrol.collector.watchdog.leader import leadership_for
from patrol.collector.watchdog.timers import Watchdog

if TYPE_CHECKING:
    from patrol.collector.dispatch.dispatcher import Dispatcher

log = logging.getLogger("patrol.collector")


class CollectorService:
    def __init__(self, config: CollectorConfig, *, policy: PolicyConfig | None = None,
                 agent_tokens: list[str] | None = None,
                 operator_tokens: list[str] | None = None,
                 agent_config_path: str = "/etc/patrol/agent.yaml",
                 watchdog_interval: float | None = None) -> None:
        from patrol.collector.store import open_store

        settings = config.collector
        self.settings = settings
        self.config = config
        self.store = open_store(settings.store)
        self.engine = Engine(self.store, policy or config.policy,
                             agent_config_path=agent_config_path)
        self.engine.sync_config_windows(config.maintenance)
        self.engine.language = settings.language
        self.engine.own_actions = self._own_actions(settings.knowledge_file)
        self.dispatcher = self._dispatcher(config)
        self.engine.dispatcher = self.dispatcher
        self.watchdog = Watchdog(self.engine, settings.retention,
                                 leadership_for(settings.store, self.store.backend))
        self.engine.watchdog = self.watchdog  # its health and lead, for /metrics
        # Tokens given by the caller (``patrol up``'s own) survive a reload; the config's
        # are re-read.
        self._extra_tokens = (list(agent_tokens or []), list(operator_tokens or []))
        self.agent_tokens = list(settings.agent_tokens) + self._extra_tokens[0]
        self.operator_tokens = list(settings.operator_tokens) + self._extra_tokens[1]
        self.watchdog_interval = watchdog_interval or settings.watchdog_interval
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._delivery: tuple[threading.Event, threading.Thread] | None = None
        self.server: Any = None
        self._app: Any = None
        self._schedule_reports(config)

    def _schedule_reports(self, config: CollectorConfig) -> None:
        """The ``reports:`` schedules, run by the watchdog (leader only)."""
        from patrol.collector.watchdog.reports import ScheduledReports

        self.watchdog.reports = ScheduledReports(config.reports, self.engine) \
            if config.reports.scheduled() else None
        if self._app is not None:
            self._app.state.reports = config.reports

    def _dispatcher(self, config: CollectorConfig) -> Any:
        """Adapters for the configured helpdesks, behind the dispatch outbox."""
        if not config.helpdesks:
            return None
        from patrol.collector.dispatch.dispatcher import Dispatcher
        from patrol.ticketing_bridge import registry

        adapters = {name: registry.load(cfg.type)(cfg, name)
                    for name, cfg in config.helpdesks.items()}
        limits = {name: cfg.max_concurrency for name, cfg in config.helpdesks.items()}
        return Dispatcher(self.store, config.ticketing, adapters, limits, self.engine.clock)

    def _loop(self, interval: float, work: Any, what: str) -> None:
        while not self._stop.wait(interval):
            try:
                work()
            except Exception:  # one failed pass must not end the loop
                log.exception("%s pass failed", what)

    @property
    def url(self) -> str:
        host, port = self.settings.address
        if self.server is not None and getattr(self.server, "servers", None):
            port = self.server.servers[0].sockets[0].getsockname()[1]
        scheme = "https" if self.settings.tls_cert else "http"
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"{scheme}://{shown}:{port}"

    def app(self) -> Any:
        from patrol.collector.ingest.api import create_app

        self._app = create_app(self.engine, self.agent_tokens, self.operator_tokens,
                               self.settings.max_body_bytes)
        self._app.state.knowledge_file = self.settings.knowledge_file
        self._app.state.language = self.settings.language
        self._app.state.reports = self.config.reports  # the archive, for the Reports page
        self._app.state.check_sets = self.config.check_sets
        return self._app

    @staticmethod
    def _own_actions(path: Path | None) -> dict[str, tuple[str, ...]]:
        """The operator's knowledge file, already checked when the config was read."""
        if path is None:
            return {}
        from patrol.collector.tickets.knowledge import load_operator_knowledge

        return load_operator_knowledge(path)

    def reload(self, config: CollectorConfig) -> list[str]:
        """Swap in a new, already validated config while serving (``SIGHUP``).

        Tokens, policy, maintenance windows from the config, and the helpdesks with
        their routes take effect at once; the listen address, TLS files, store and
        body limit are bound when the process starts, so a change to them is returned
        as a note ("takes effect on restart") instead of half-applied.
        """
        from patrol.collector.access.auth import TokenBook

        new, old = config.collector, self.settings
        notes = [f"collector.{key} changed; it takes effect on restart, not reload"
                 for key in RESTART_ONLY if getattr(new, key) != getattr(old, key)]
        self.agent_tokens = list(new.agent_tokens) + self._extra_tokens[0]
        self.operator_tokens = list(new.operator_tokens) + self._extra_tokens[1]
        if self._app is not None:
            # With the store: issued (per-host) credentials must outlive a reload.
            self._app.state.tokens = TokenBook(self.agent_tokens, self.operator_tokens,
                                               self.store, self.engine.clock)
        self.engine.policy = config.policy
        self.engine.own_actions = self._own_actions(new.knowledge_file)
        if self._app is not None:
            self._app.state.knowledge_file = new.knowledge_file
        if self._app is not None:  # agents see a changed set on their next pull
            self._app.state.check_sets = config.check_sets
        self.engine.sync_config_windows(config.maintenance)
        if (config.helpdesks, config.ticketing) != (self.config.helpdesks,
                                                    self.config.ticketing):
            self._swap_dispatcher(self._dispatcher(config))
        self._schedule_reports(config)
        self.config = config
        return notes

    def _swap_dispatcher(self, dispatcher: Dispatcher) -> None:
        """Retire the running dispatcher (its in-flight deliveries finish first, so the
        new one never re-sends a row the old one still holds) and start ``dispatcher``."""
        old = self.dispatcher
        if self._delivery is not None:
            stop, thread = self._delivery
            stop.set()
            if old is not None:
                old.wakeup.set()
            thread.join(timeout=30)
            self._delivery = None
        if old is not None:
            old.close()
            old.drain()
        self.dispatcher = self.engine.dispatcher = dispatcher
        if dispatcher is not None and self.server is not None:
            self._start_delivery(dispatcher)

    def _start_delivery(self, dispatcher: Dispatcher) -> None:
        stop = threading.Event()
        thread = threading.Thread(target=dispatcher.serve, args=(stop,),
                                  name="collector-dispatch", daemon=True)
        thread.start()
        self._delivery = (stop, thread)

    def _sync_helpdesks(self) -> None:
        if self.dispatcher is not None:
            self.watchdog.sync(self.dispatcher)

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
        # The sync loop runs even without helpdesks: a reload may add some.
        loops = [(self.watchdog_interval, self.watchdog.run_once, "watchdog"),
                 (self.config.ticketing.sync_interval, self._sync_helpdesks, "helpdesk sync")]
        self._threads = [serving]
        if self.dispatcher is not None:
            self._start_delivery(self.dispatcher)
        for interval, work, what in loops:
            thread = threading.Thread(target=self._loop, args=(interval, work, what),
                                      name=f"collector-{what}", daemon=True)
            thread.start()
            self._threads.append(thread)
        _tune_interpreter()
        log.info("patrol collector at %s (store %s)", self.url, _store_label(self.settings.store))

    def stop(self) -> None:
        self._stop.set()
        if self._delivery is not None:
            self._delivery[0].set()
            self._threads.append(self._delivery[1])
        if self.dispatcher is not None:
            self.dispatcher.wakeup.set()
        if self.server is not None:
            self.server.should_exit = True
        for thread in self._threads:
            thread.join(timeout=5)
        if self.dispatcher is not None:
            self.dispatcher.close()
        self.watchdog.leadership.close()
        self.store.close()


# Bound when the process starts: a reload reports a change instead of applying it.
RESTART_ONLY = ("listen", "store", "tls_cert", "tls_key", "max_body_bytes")

SWITCH_INTERVAL = 0.0001  # seconds; CPython's default is 0.005


def _tune_interpreter() -> None:
    """Process-wide settings for serving, applied once everything is started.

    - A shorter GIL switch interval: every SQLite call releases the GIL, and taking it
      back waits up to the switch interval while another thread (the watchdog's pass,
      the event loop parsing a large batch) computes. A request makes ~15 such calls,
      so at the default 5 ms a busy neighbour thread could add tens of milliseconds to
      one request; measured p99 at 50 events/s: see bench/COLLECTOR.md. 0.5 ms still
      left ~15 ms at p99 while the watchdog's pass over 15,000-18,000 open tickets
      (~0.65 s of CPU every 10 s) ran beside the ingest worker; at 0.1 ms it is
      7 ms, with no change in CPU per event outside noise (bench/ALERTMANAGER.md).
      Garbage collection is no factor: 11 young collections, 0.3 ms in all, for
      3,000 single events in-process.
    - ``gc.freeze()``: the objects alive after start-up (modules, the app, pydantic's
      validators) move to the permanent generation, so full collections no longer
      walk them.
    """
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.collect()
    gc.freeze()


def _store_label(url: str) -> str:
    """The store URL without credentials, for logs."""
    if url.startswith("sqlite:"):
        return url
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}" \
           f"{parts.path}"

