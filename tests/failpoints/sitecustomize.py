"""Test-only failpoint: SIGKILL the collector right after a helpdesk confirmed a new
ticket and before its reference is stored, the worst moment for exactly-once.

Python imports ``sitecustomize`` from ``sys.path`` at start-up, so a test arms this in
a child process by putting this folder first on the child's ``PYTHONPATH``
(``tests/test_bridge_e2e.py``, the crash test), and nowhere else: production code
carries no hook and no environment switch.

The seam: the first thing the dispatcher does with a ticket it has just opened (and
only then: a found or adopted ticket skips it) is to attach the breach chart, before
it stores the link (``Dispatcher._perform``). Replacing ``attach_chart`` therefore
kills the process between "created in the helpdesk" and "stored". Should that order
ever change, the crash test sees no SIGKILL and fails, rather than passing vacuously.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from patrol.collector.tickets import chart


def _killed_after_open(*args: Any, **kwargs: Any) -> bool:
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable: SIGKILL cannot be caught")


chart.attach_chart = _killed_after_open
