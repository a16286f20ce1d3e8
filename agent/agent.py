"""The agent process: scheduler + runners + state + HTTP, with reload and stop.

``SIGHUP`` re-reads the config; a config with problems is logged and the running
one stays in force (a typo during an incident must not blind the host).
``SIGTERM``/``SIGINT`` stop the scheduler and the HTTP server and return.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from patrol.agent import scheduler as sched
from patrol.agent.check_sets import CheckSetState
from patrol.agent.diagnostics.redact import install_log_redaction
from patrol.agent.history import MeasurementHistory
from patrol.agent.identity import ensure_state_dir
from patrol.agent.runner import CheckRunner
from patrol.agent.runtime_config import AgentConfig
from patrol.agent.state import STATE_FILE, CheckInfo, StateTable, Transition
from patrol.agent.validation import InProcess, ValidationFailed, Validator
from patrol.agent.version import AGENT_VERSION
from patrol.checks.base import Result, Status
from patrol.contract.yamlsource import ConfigError

log = logging.getLogger("patrol.agent")


def runners_for(config: AgentConfig) -> dict[str, CheckRunner]:
    settings = config.agent
    policy = config.policy()
    install_log_redaction(policy)
    return {
        c.config.name: CheckRunner(c.config, c.cls, settings.hostname, settings.timeout,
                                   unavailable=c.missing_driver, policy=policy)
        for c in config.checks
    }


def infos_for(config: AgentConfig) -> list[CheckInfo]:
    # A runbook link leaves the agent in every event and ticket: masked like results.
    policy = config.policy()
    return [
        CheckInfo(c.config.name, c.config.type, dict(c.config.labels),
                  policy.text(c.config.runbook) if c.config.runbook else c.config.runbook,
                  c.config.interval or config.agent.interval, c.config.schedule,
                  c.config.timezone, c.config.timeout or config.agent.timeout)
        for c in config.checks
    ]


def state_file(config: AgentConfig) -> Path | None:
    """Where the checks' hard state outlives a restart: beside the outbox, when there
    is a collector to tell (a restart must not look like a recovery and a new breach
    to it)."""
    settings = config.agent
    if not settings.collector:
        return None
    return ensure_state_dir(Path(settings.state_dir)) / STATE_FILE


def warm_up() -> None:
    """Import what :meth:`Agent.start` and the checks will, while the validating child
    works (agent/validation.py): on a host with a core to spare, that time is free."""
    import psutil  # noqa: F401  # most built-in checks read through it

    from patrol.agent import check_set_metrics, delivery_metrics, exposition, server  # noqa: F401


class Agent:
    """Holds the live config and everything built from it."""

    def __init__(self, config_path: str | Path, config: AgentConfig | None = None,
                 adjust: Callable[[AgentConfig], AgentConfig] | None = None,
                 validator: Validator | None = None) -> None:
        self.config_path = Path(config_path)
        # Who validates reloads and check sets: ``patrol agent`` passes InChild, so the
        # running agent never imports pydantic (agent/validation.py).
        self.validator: Validator = validator or InProcess()
        # ``adjust`` rewrites every loaded config, reloads included (``patrol up`` uses
        # it to point the agent at its own collector).
        self.adjust = adjust or (lambda config: config)
        self.check_sets = CheckSetState()
        self.puller: Any = None
        self.config = self._with_check_sets(self.adjust(
            config or self.validator.load(self.config_path)))
        self.policy = self.config.policy()  # built once per config: every event uses it
        self.table = StateTable(infos_for(self.config), state_file(self.config))
        self.runners = runners_for(self.config)
        self.history = MeasurementHistory()
        self.started_at = time.time()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._wake: int | None = None  # write end of serve_forever's pipe, while it runs
        self.scheduler = sched.build(self.config.agent.workers)
        self.server: Any = None
        self.outbox: Any = None
        self.emitter: Any = None
        self.pusher: Any = None
        self.listeners: list[Any] = []  # called with (view, transition) on hard changes

    # -- running checks -------------------------------------------------------------

    def run_check(self, name: str) -> None:
        """One scheduled run: execute, record, capture diagnostics on a hard breach."""
        runner = self.runners.get(name)
        if runner is None:
            return
        result, duration = runner.run()
        now = time.time()
        self.history.record(name, now, ((m.name, m.item, m.value)
                                        for m in result.measurements))
        transition = self.table.record(name, result, runner.config.sustain, now, duration)
        if transition is None:
            return
        self._log_transition(transition, result)
        if transition.capture and runner.config.diagnostics:
            self.table.attach_diagnostics(name, self.capture(runner, result))
        view = self.table.get(name)
        for listener in list(self.listeners):
            try:
                listener(view, transition)
            except Exception:  # a listener must never break the schedule
                log.exception("state-change listener failed for %s", name)

    def capture(self, runner: CheckRunner, result: Result) -> dict[str, Any]:
        from patrol.agent.diagnostics import capture

        budget = self.config.agent.diagnostics
        return capture(
            runner.instance, result, extras=runner.diagnostics_extras,
            time_budget=budget.time_budget, size_budget=int(budget.size_budget),
            secrets=self.config.secrets(), names=self.config.agent.secret_names,
        )

    def _log_transition(self, t: Transition, result: Result) -> None:
        level = logging.INFO if t.new is Status.OK else logging.WARNING
        log.log(level, "%s: %s -> %s: %s", t.name, t.old.name, t.new.name, result.summary)

    # -- lifecycle ------------------------------------------------------------------

    def _schedule_all(self) -> None:
        settings = self.config.agent
        for configured in self.config.checks:
            name = configured.config.name
            sched.add_check(self.scheduler, configured.config,
                            functools.partial(self.run_check, name),
                            settings.interval, settings.jitter)

    def healthy(self) -> bool:
        return self.scheduler.running and not self._stopped.is_set()

    def _registry(self) -> Any:
        from patrol.agent.check_set_metrics import CheckSetCollector
        from patrol.agent.delivery_metrics import DeliveryCollector
        from patrol.agent.exposition import build_registry

        return build_registry(self.table, self.info_labels(),
                              extra=(DeliveryCollector(lambda: self.pusher),
                                     CheckSetCollector(self.check_sets)))

    def info_labels(self) -> dict[str, str]:
        """Labels of ``patrol_agent_info``: the host, then the operator's labels."""
        return {"host": self.config.agent.hostname, **self.config.agent.labels}

    def agent_info(self) -> dict[str, Any]:
        settings = self.config.agent
        return {"host": settings.hostname, "version": AGENT_VERSION,
                "labels": dict(settings.labels), "started_at": self.started_at,
                "config": str(self.config_path)}

    def start(self, serve: bool = True) -> None:
        """Delivery, then the HTTP server, then the scheduler: /metrics answers (every
        check listed, none run yet) while the first runs import their drivers, and
        those imports do not compete with the server's for the GIL."""
        for warning in self.config.warnings:
            log.warning("%s", warning)
        self._start_delivery()
        self._start_pull()
        if serve:
            from patrol.agent.server import AgentServer

            settings = self.config.agent
            self.server = AgentServer(
                settings.address, self._registry(),
                self.table, settings.token.reveal() if settings.token else None,
                self.agent_info(), self.healthy,
                tls_cert=settings.tls_cert, tls_key=settings.tls_key,
            )
            self.server.start()
            host, port = self.server.address
            if self.emitter is not None:  # heartbeats announce it for service discovery
                from patrol.agent.events import metrics_address

                self.emitter.metrics_address = metrics_address(host, port, settings.hostname)
            scheme = "https" if settings.tls_cert else "http"
            log.info("patrol agent %s on %s: %d checks, metrics at %s://%s:%d/metrics",
                     AGENT_VERSION, settings.hostname, len(self.runners), scheme, host, port)
        self._schedule_all()
        self.scheduler.start()

    # -- delivery to the collector(s) ----------------------------------------------

    def _evaluator_of(self, name: str) -> Any:
        runner = self.runners.get(name)
        return runner.context.evaluator if runner is not None and runner.context else None

    def _start_delivery(self) -> None:
        """Outbox, emitter (a state-change listener) and pusher, when collectors are set."""
        settings = self.config.agent
        if not settings.collector:
            return
        from patrol.agent.events import Emitter
        from patrol.agent.identity import agent_id
        from patrol.agent.outbox import Outbox
        from patrol.agent.pusher import Pusher, Target

        targets = [Target(e.url, e.token.reveal() if e.token else None, e.ca_file)
                   for e in settings.collector]
        self.outbox = Outbox(settings.state_dir, [t.name for t in targets],
                             cap=settings.outbox_cap)
        self.emitter = Emitter(self.outbox, settings.hostname, settings.labels,
                               agent_id(settings.state_dir), evaluators=self._evaluator_of,
                               redact=lambda data: self.policy.data(data),
                               config=str(self.config_path.resolve()),
                               history=self.history)
        interval = settings.heartbeat_interval
        self.pusher = Pusher(self.outbox, targets, heartbeat_interval=interval,
                             heartbeat=lambda: self.emitter.heartbeat(self.table.snapshot(),
                                                                      interval))
        self.listeners.append(self.emitter)
        self.pusher.start()
        log.info("delivering events to %s", ", ".join(t.name for t in targets))

    def _with_check_sets(self, config: AgentConfig) -> AgentConfig:
        """``config`` plus the last good check sets from the collector, when pulled."""
        if not config.agent.check_sets.pull:
            return config
        return self.validator.merge(config, Path(config.agent.state_dir), self.check_sets)

    def _start_pull(self) -> None:
        """The check-set puller (agent/check_set_pull.py), once pulling is configured; it
        reads the live settings at each pull, so a reload needs no restart of it."""
        settings = self.config.agent
        if self.puller is not None or not (settings.check_sets.pull and settings.collector):
            return
        from patrol.agent.check_set_pull import CheckSetPuller

        self.puller = CheckSetPuller(lambda: self.config.agent, self.reload, self.check_sets,
                                     problems=self.validator.candidate_problems)
        self.puller.start()

    def _stop_delivery(self) -> None:
        if self.pusher is None:
            return
        self.listeners.remove(self.emitter)
        self.pusher.stop()  # flushes for up to 2 s
        self.outbox.close()
        self.outbox = self.emitter = self.pusher = None

    def reload(self) -> bool:
        """Re-read the config file. Returns False (and keeps the old config) on problems."""
        from patrol.checks import registry

        registry.refresh()  # a plugin installed while the agent ran is found on reload
        try:
            new = self._with_check_sets(self.adjust(self.validator.load(self.config_path)))
        except (ConfigError, ValidationFailed) as exc:
            log.error("config reload refused; still running the previous config:\n%s", exc)
            return False
        with self._lock:
            if new.agent.listen != self.config.agent.listen:
                log.warning("agent.listen changed; it takes effect on restart, not reload")
            old = self.config.agent
            self.config = new
            self.policy = new.policy()
            self.runners = runners_for(new)
            self.history.retain(self.runners)
            delivery = ("collector", "hostname", "labels", "state_dir", "heartbeat_interval")
            if any(getattr(old, k) != getattr(new.agent, k) for k in delivery):
                self._stop_delivery()
                self._start_delivery()
            self.table.path = state_file(new)
            self.table.replace_checks(infos_for(new))
            self.scheduler.remove_all_jobs()
            self._schedule_all()
            if self.server is not None:

                self.server.update(token=new.agent.token.reveal() if new.agent.token else None,
                                   agent_info=self.agent_info(),
                                   registry=self._registry())
        self._start_pull()
        log.info("config reloaded: %d checks", len(self.runners))
        return True

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._poke()  # a stop() from another thread ends serve_forever too
        self.scheduler.shutdown(wait=False)
        if self.puller is not None:
            self.puller.stop()
        self._stop_delivery()
        if self.server is not None:
            self.server.stop()
        log.info("patrol agent stopped")

    def _poke(self) -> None:
        """Wake serve_forever from another thread (a byte that is no signal number)."""
        wake = self._wake
        if wake is not None:
            with contextlib.suppress(OSError):  # full pipe: it is awake already
                os.write(wake, b"\0")

    def serve_forever(self) -> int:
        """Block until SIGTERM/SIGINT; SIGHUP reloads. Returns the exit code.

        The main thread sleeps in ``os.read`` on a pipe: no timeout, so no CPU while
        idle (a 1 s ``Event.wait`` loop cost ~0.014 % of a core). The pipe is the
        signal wake-up fd: the C-level handler writes the signal's number to it in
        whichever thread the kernel delivered the signal to. Blocking in
        ``Event.wait()`` without a timeout would miss a signal delivered to another
        thread (the scheduler's, a check's) until something else woke the main
        thread, and setting an Event inside a handler can deadlock on its lock.
        """
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        self._wake = wake_w
        previous = signal.set_wakeup_fd(wake_w)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, lambda *_: None)  # the work happens below
        stop_on = {signal.SIGTERM, signal.SIGINT, 0}  # 0: stop() from another thread
        try:
            self.start()
            while True:
                got = set(os.read(wake_r, 64))
                if got & stop_on or self._stopped.is_set():
                    break
                if signal.SIGHUP in got:
                    threading.Thread(target=self.reload, name="patrol-reload",
                                     daemon=True).start()
        finally:
            signal.set_wakeup_fd(previous)
            self._wake = None
            os.close(wake_w)
            os.close(wake_r)
        self.stop()
        return 0
