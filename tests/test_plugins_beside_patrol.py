"""A plugin check and a plugin adapter installed beside Patrol leave its suite green.

The demo distribution in ``tests/plugins/`` (a check and an adapter with contract
targets, and one of each without) is made importable, metadata and all, by putting
its folder on ``PYTHONPATH``; a child pytest then runs both contract suites over the
registries as they are with it installed. The built-in Redmine and RT targets are left
out (``-m "not slow"``): the plugin cannot change them, and a second RT would cost
the machine ~0.5 GB for nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = ROOT / "tests" / "plugins"
pytestmark = pytest.mark.slow  # a child pytest, ~30 s


def test_contract_suites_pass_with_a_plugin_installed_and_report_the_untested_one() -> None:
    path = os.pathsep.join(filter(None, [str(PLUGINS), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "-rs",
         "-m", "not slow", "tests/test_contract.py", "tests/test_adapter_contract.py"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True,
        timeout=600)
    out = done.stdout
    assert done.returncode == 0, out[-3000:]
    for ran in ("test_runs_against_a_real_target_and_emits_only_declared_measurements"
                "[folder_entries] PASSED",
                "test_real_run_renders_a_body_with_levels_or_expectations[folder_entries] PASSED",
                "test_ticket_lifecycle_in_the_dispatchers_order[folder_desk] PASSED",
                "test_a_helpdesk_that_refuses_is_a_permanent_error[folder_desk] PASSED",
                "test_class_speaks_the_protocol_and_its_config_is_strict"
                "[demo_untested_desk] PASSED"):
        assert ran in out, ran
    assert ("check type 'demo_untested' from plugin patrol-plugin-demo "
            "(patrol_plugin_demo.checks:UntestedCheck) declares no contract target") in out
    assert ("helpdesk type 'demo_untested_desk' from plugin patrol-plugin-demo "
            "(patrol_plugin_demo.desk:UntestedDesk) names no contract target") in out
