"""What ``patrol validate`` would say about an agent config: the check tests use it
to show that their options fail with ``file:line`` messages an operator can act on."""

from __future__ import annotations

from pathlib import Path

import pytest


def config_problems(tmp_path: Path, text: str) -> tuple[Path, list[str]]:
    """Write ``text`` as agent.yaml; return its path and the loader's problems
    (failing the test when the config loads without any)."""
    from patrol.agent.config import ConfigError, load_config

    path = tmp_path / "agent.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return path, [str(p) for p in info.value.problems]
