"""An agent with the shipped Linux profile loads no library it does not use: memory
and start-up are features (a stray import of requests costs ~5 MiB and ~100 ms)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("requests", "urllib3", "cryptography", "psycopg", "pymysql", "redis", "fastapi",
         "uvicorn", "starlette", "jinja2")


def test_the_default_agent_profile_imports_no_heavy_optional_library() -> None:
    code = (
        "import sys\n"
        "import agent.cli as cli\n"
        "cli._parser()\n"
        "from agent.agent import Agent\n"
        "from agent.config import load_config\n"
        "Agent('configs/agent.yaml', load_config('configs/agent.yaml'))\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True, timeout=60)
    assert done.stdout.strip() == "[]"
