"""Diagnostics captured at breach: host facts, recent changes, top processes and the
check's own ``diagnose()``, under a time budget, a size budget and secret redaction.

The agent calls :func:`capture` when a check's hard state leaves OK or worsens.
"""

from patrol.agent.diagnostics.capture import capture, default_collectors
from patrol.agent.diagnostics.changes import recent_changes
from patrol.agent.diagnostics.host import host_facts
from patrol.agent.diagnostics.processes import top_processes
from patrol.agent.diagnostics.redact import is_secret_name, redact, redact_text

__all__ = ["capture", "default_collectors", "host_facts", "is_secret_name", "recent_changes",
           "redact", "redact_text", "top_processes"]
