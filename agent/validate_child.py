"""``python -m patrol.agent.validate_child``: validate once, with pydantic, and exit.

Started by :class:`patrol.agent.validation.InChild`. Reads one pickled request on
stdin and writes one pickled answer on stdout, plain data only
(:func:`patrol.agent.runtime_config.plain_config`), so the agent that reads it needs
no pydantic:

- ``("load", PATH)`` -> ``("ok", AgentConfig)`` or ``("problems", [Problem, ...])``;
- ``("merge", AgentConfig, STATE_DIR)`` -> the config with the stored check sets, the
  set's version, its running count, the refusals by reason, and the log lines
  (level, message) the merge wrote, for the agent to log as its own;
- ``("candidate", PATH, ALLOWED)`` -> the problems of a pulled check set.

Anything printed while validating goes to stderr: stdout carries the answer alone.
"""

from __future__ import annotations

import logging
import os
import pickle
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from patrol.agent.check_sets import CheckSetState, candidate_problems, merge
from patrol.agent.config import load_config
from patrol.agent.runtime_config import plain_config
from patrol.contract.yamlsource import ConfigError


class _Lines(logging.Handler):
    """The merge's log lines, kept to be sent back."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.levelno, record.getMessage()))


def answer(request: tuple[Any, ...]) -> Any:
    kind = request[0]
    if kind == "load":
        try:
            return ("ok", plain_config(load_config(request[1])))
        except ConfigError as exc:
            return ("problems", exc.problems)
    if kind == "merge":
        lines = _Lines()
        logger = logging.getLogger("patrol.agent")
        logger.addHandler(lines)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        state = CheckSetState()
        merged = merge(request[1], Path(request[2]), state)
        return (plain_config(merged), state.version, state.running,
                Counter(state.rejected), lines.records)
    if kind == "candidate":
        return candidate_problems(Path(request[1]), set(request[2]))
    raise ValueError(f"unknown request {kind!r}")


def main() -> int:
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints: to stderr
    request = pickle.loads(sys.stdin.buffer.read())  # from the agent that started us
    out.write(pickle.dumps(answer(request), protocol=pickle.HIGHEST_PROTOCOL))
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
