"""Where the agent's config is validated: in this process, or once in a short-lived child.

The pydantic models that check an agent config (:mod:`patrol.agent.config`, the check
schemas) cost the agent ~13 MiB PSS for as long as it runs, for work done once per
start, reload or pulled check set. :class:`InChild` does that work in
``python -m patrol.agent.validate_child`` (no shell) and reads back the validated
config as plain data (:func:`patrol.agent.runtime_config.plain_config`), pickled over
the child's stdout: the child is Patrol's own code, and secrets travel only through
the pipe, never to disk or to a log. Problems come back as the same
:class:`~patrol.contract.yamlsource.Problem` objects, so the FILE:LINE messages are
today's. :class:`InProcess` validates here (``patrol check``, ``patrol up``, tests).
"""

from __future__ import annotations

import logging
import pickle
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from patrol.contract.yamlsource import ConfigError, Problem

if TYPE_CHECKING:
    from patrol.agent.check_sets import CheckSetState
    from patrol.agent.runtime_config import AgentConfig

log = logging.getLogger("patrol.agent")

CHILD_MODULE = "patrol.agent.validate_child"
CHILD_TIMEOUT = 120.0  # seconds: file: secrets on a slow mount, a cold page cache


class ValidationFailed(Exception):
    """The validating child did not answer (it crashed, or was killed): no verdict on
    the config, so the caller keeps what it runs (or, at start, starts nothing)."""


class Validator(Protocol):
    def load(self, path: Path) -> AgentConfig:
        """The validated config at ``path``; raises ConfigError with every problem."""

    def merge(self, config: AgentConfig, state_dir: Path, state: CheckSetState) -> AgentConfig:
        """``config`` plus the stored check sets (:func:`agent.check_sets.merge`)."""

    def candidate_problems(self, path: Path, allowed: set[str]) -> list[Problem]:
        """Why a pulled check set must not be stored
        (:func:`agent.check_sets.candidate_problems`)."""


class InProcess:
    """Validation with pydantic in this process."""

    def load(self, path: Path) -> AgentConfig:
        from patrol.agent.config import load_config

        return load_config(path)

    def merge(self, config: AgentConfig, state_dir: Path, state: CheckSetState) -> AgentConfig:
        from patrol.agent.check_sets import merge

        return merge(config, state_dir, state)

    def candidate_problems(self, path: Path, allowed: set[str]) -> list[Problem]:
        from patrol.agent.check_sets import candidate_problems

        return candidate_problems(path, allowed)


class Pending:
    """A child at work; :meth:`answer` waits for it. Started before the agent's own
    imports, so the two interpreters' start-up overlaps."""

    def __init__(self, request: tuple[Any, ...]) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", CHILD_MODULE], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._request = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)

    def answer(self) -> Any:
        try:
            out, err = self._process.communicate(self._request, timeout=CHILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.communicate()
            raise ValidationFailed(f"the config validator did not answer in "
                                   f"{CHILD_TIMEOUT:g} s") from None
        if self._process.returncode != 0 or not out:
            tail = err.decode(errors="replace").strip()[-2000:]
            raise ValidationFailed(f"the config validator failed (exit "
                                   f"{self._process.returncode}): {tail}")
        if err:  # a warning the child printed is the operator's, as it was in-process
            sys.stderr.write(err.decode(errors="replace"))
        return pickle.loads(out)  # our own child, over its own pipe


def _relog(records: list[tuple[int, str]]) -> None:
    """The child's log lines, logged here as if validation had run here."""
    for level, message in records:
        log.log(level, "%s", message)


class InChild:
    """Validation in ``python -m patrol.agent.validate_child``: the agent never imports
    pydantic. Each call starts one short-lived interpreter (~0.2-0.4 s of CPU)."""

    def start_load(self, path: Path | str) -> Pending:
        return Pending(("load", str(path)))

    def finish_load(self, pending: Pending) -> AgentConfig:
        kind, value = pending.answer()
        if kind == "problems":
            raise ConfigError(value)
        config: AgentConfig = value
        return config

    def load(self, path: Path) -> AgentConfig:
        return self.finish_load(self.start_load(path))

    def merge(self, config: AgentConfig, state_dir: Path, state: CheckSetState) -> AgentConfig:
        merged, version, running, rejected, records = Pending(
            ("merge", config, str(state_dir))).answer()
        _relog(records)
        state.version, state.running = version, running
        state.rejected.update(rejected)
        result: AgentConfig = merged
        return result

    def candidate_problems(self, path: Path, allowed: set[str]) -> list[Problem]:
        problems: list[Problem] = Pending(("candidate", str(path), sorted(allowed))).answer()
        return problems
