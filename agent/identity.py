"""The agent's stable identity: a random id written once to ``state_dir/agent_id``.

The host name is not an identity: hosts get renamed and re-imaged, and two agents
may claim one name. The id lives next to the outbox, so wiping the state directory
starts a new identity *and* a new event sequence together, never one without the
other (the collector may rely on ``(agent.id, sequence)`` being unique).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

FILE_NAME = "agent_id"


def ensure_state_dir(state_dir: Path) -> Path:
    """Create the state directory (owner-only, 0700) if it is missing."""
    state_dir = Path(state_dir)
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return state_dir


def agent_id(state_dir: Path) -> str:
    """The id stored in ``state_dir``, creating it (a uuid4 hex) on first use.

    Written to a temporary file, fsynced and linked into place, so a crash leaves
    either no id or a whole one, and two processes racing to create it agree on the
    winner's id.
    """
    path = ensure_state_dir(state_dir) / FILE_NAME
    try:
        existing = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(uuid.uuid4().hex + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)  # fails if another process won the race: use theirs
        except FileExistsError:
            if not path.read_text(encoding="ascii").strip():
                os.replace(tmp, path)  # an empty file (truncated by hand) is no identity
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text(encoding="ascii").strip()
