"""Cost of the wire's input bounds: ``Event.model_validate`` with an ``git``
revision's wire models (the anchor, default ``main``) and with this tree's, in one run,
on an event with ~6 KB of diagnostics, the load average printed beside every figure.

    .venv/bin/python bench/wire_bounds.py [REVISION]
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from patrol.contract import wire as bounded  # noqa: E402
from tests.collector_fixtures import event, event_json  # noqa: E402

ROUNDS, N = 3, 3000


def _anchor(revision: str) -> object:
    text = subprocess.run(["git", "show", f"{revision}:patrol/contract/wire.py"], cwd=ROOT,
                          check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "wire_anchor.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("wire_anchor", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["wire_anchor"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def main() -> None:
    revision = sys.argv[1] if len(sys.argv) > 1 else "main"
    anchor = _anchor(revision)
    payload = event_json(event())
    payload["labels"] = {f"l{i}": "v" * 20 for i in range(10)}
    payload["diagnostics"] = {
        "processes": [{"pid": i, "cmd": "x" * 40, "cpu": 1.5, "env": {"a": 1, "b": [1, 2]}}
                      for i in range(40)],
        "disk": {"mounts": [{"path": f"/m{i}", "used": 0.5} for i in range(20)]}}
    print(f"payload {len(json.dumps(payload))} bytes, {N} validations per figure")
    for round_ in range(ROUNDS):
        for name, module in ((revision, anchor), ("bounded", bounded)):
            start = time.perf_counter()
            for _ in range(N):
                module.Event.model_validate(payload)  # type: ignore[attr-defined]
            per = (time.perf_counter() - start) / N * 1e6
            print(f"round {round_} {name:>8}: {per:6.1f} us/event   "
                  f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
