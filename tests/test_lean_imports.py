"""An agent with the shipped Linux profile loads no library it does not use: memory
and start-up are features (a stray import of requests costs ~5 MiB and ~100 ms)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("requests", "urllib3", "cryptography", "psycopg", "pymysql", "redis", "fastapi",
         "uvicorn", "starlette", "jinja2")


def heavy_modules_after(code: str) -> str:
    """The HEAVY modules a fresh interpreter holds after running ``code``."""
    code += f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True, timeout=60)
    return done.stdout.strip()


def test_the_default_agent_profile_imports_no_heavy_optional_library() -> None:
    code = (
        "import sys\n"
        "import patrol.cli as cli\n"
        "cli._parser()\n"
        "from patrol.agent.agent import Agent\n"
        "from patrol.agent.config import load_config\n"
        "Agent('configs/agent.yaml', load_config('configs/agent.yaml'))\n"
    )
    assert heavy_modules_after(code) == "[]"


def test_delivering_to_a_collector_loads_no_http_library() -> None:
    """The pusher speaks to the collector with http.client: requests would add
    ~4 MiB PSS and ~35 ms of start-up to every agent that has a collector."""
    code = (
        "import sys\n"
        "from patrol.agent.outbox import Outbox\n"
        "from patrol.agent.pusher import Pusher, Target\n"
        "from patrol.agent.events import Emitter\n"
        "import tempfile\n"
        "d = tempfile.mkdtemp()\n"
        "outbox = Outbox(d, ['https://collector.example:9732'])\n"
        "Pusher(outbox, [Target('https://collector.example:9732', 't')])\n"
        "outbox.close()\n"
    )
    assert heavy_modules_after(code) == "[]"


def test_the_agent_schedules_without_apscheduler_asyncio_or_multiprocessing(tmp_path) -> None:
    """The agent's own scheduler replaced APScheduler's (2.6 MiB PSS, ~45 ms: it pulled
    in asyncio and multiprocessing). Only a cron ``schedule:`` loads APScheduler's
    cron parser, and still neither its scheduler nor multiprocessing."""
    config, shipped = tmp_path / "interval.yaml", tmp_path / "shipped.yaml"
    config.write_text(f"agent:\n  listen: 127.0.0.1:0\n  state_dir: {tmp_path / 'state'}\n"
                      "checks:\n  - {name: cpu, type: cpu}\n  - {name: load, type: load}\n")
    profile = yaml.safe_load((ROOT / "configs" / "agent.yaml").read_text())
    profile.pop("include")
    profile["agent"]["state_dir"] = str(tmp_path / "shipped-state")
    shipped.write_text(yaml.safe_dump(profile))
    code = (
        "import sys\n"
        "from patrol.agent.agent import Agent\n"
        "from patrol.agent.config import load_config\n"
        "for path in sys.argv[1:]:\n"
        "    agent = Agent(path, load_config(path))\n"
        "    agent.start(serve=False)\n"
        "    agent.stop()\n"
        "    print(sorted(m for m in ('apscheduler', 'apscheduler.schedulers', 'asyncio',\n"
        "                             'multiprocessing') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(config), str(shipped)],
                          capture_output=True, text=True, cwd=ROOT, check=True, timeout=60)
    assert done.stdout.splitlines() == ["[]", "['apscheduler', 'asyncio']"]


def test_the_database_checks_load_no_heavy_driver(postgres_dsn: str, mysql_server: dict,
                                                  redis_url: str) -> None:
    """pg8000 instead of psycopg (~7 MiB), our RESP client instead of redis-py (~10 MiB),
    PyMySQL without cryptography (~9 MiB, loaded only for RSA-based auth): after one
    real run of each check, none of them is in the interpreter."""
    options = {"postgres": {"dsn": postgres_dsn}, "redis": {"url": redis_url},
               "mysql": {k: v for k, v in mysql_server.items() if k != "password"}}
    code = (
        "import sys\n"
        "from tests.helpers import build\n"
        f"for check_type, options in {options!r}.items():\n"
        "    check, ctx = build(check_type, **options)\n"
        "    result = check.run(ctx)\n"
        "    assert result.status.name == 'OK', result.summary\n"
        "print(sorted(m for m in ('cryptography', 'psycopg', 'redis', 'requests')\n"
        "             if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_http_check_loads_no_http_library(tmp_path: Path) -> None:
    """The http check speaks http.client (checks/http_fetch.py): after one real run of
    an http and an https check (servers on 127.0.0.1, TLS by a test CA), requests and
    its companions are not in the interpreter (~5 MiB PSS they would add)."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from tests.certs import issue, make_ca\n"
        "from tests.helpers import build\n"
        "from tests.test_check_http import serve\n"
        "d = Path(sys.argv[1])\n"
        "ca = make_ca(d)\n"
        "with serve() as (plain, _), serve(issue(ca, d)) as (tls, _):\n"
        "    for options in ({'url': plain + '/ok'},\n"
        "                    {'url': tls + '/ok', 'ca_file': str(ca.cert_path)}):\n"
        "        check, ctx = build('http', **options)\n"
        "        result = check.run(ctx)\n"
        "        assert result.status.name == 'OK', result.summary\n"
        "print(sorted(m for m in ('requests', 'urllib3', 'charset_normalizer')\n"
        "             if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
