"""What "healthy" means for the measurements that have no numeric threshold.

A tcp check's ``up`` is 0 or 1, an http check's ``status_code`` is judged against
``expect_status``, a process check's ``count`` against ``min:``/``max:``: rules the
check applies itself, so the event carries no warning/critical levels for them. A
ticket that shows ``up | 0 | - | -`` leaves the reader guessing what was expected;
this table says it in words, keyed by check type and measurement name. The check's
own options are not on the wire, so a configurable rule names its option and default.
"""

from __future__ import annotations

EXPECTED: dict[tuple[str, str], str] = {
    ("tcp", "up"): "1: the port accepts connections (and answers as configured)",
    ("http", "up"): "1: a status in expect_status (default 200-399) and a body that "
                    "matches body_match / not body_not_match, when set",
    ("http", "status_code"): "a status in expect_status (default 200-399)",
    ("systemd", "active"): "1: the unit is active",
    ("process", "count"): "between min: and max: (default: at least 1)",
    ("file", "exists"): "1: the file exists",
    ("http", "tls_hostname_match"): "1: the server certificate names the URL's host",
    ("clock", "synchronised"): "1: the time service is synchronised to a source",
    ("disk_health", "smart_passed"): "1: the drive's SMART self-assessment passes",
    ("disk_health", "raid_active"): "1: the md array is active with all its members",
    ("dns", "resolved"): "1: the name resolves",
    ("dns", "expected_match"): "1: every value in expect: is among the answers",
    ("net_interface", "link_up"): "1: the link is up (an interface switched off on "
                                  "purpose is not judged)",
    ("updates", "reboot_required"): "0: no reboot pending (/run/reboot-required absent)",
}

# Per type, for measurements the table does not name (a plugin's perfdata).
BY_TYPE: dict[str, str] = {
    "nagios": "the plugin exits 0 (OK); its own levels are in the perfdata",
}


def expected(check_type: str, measurement: str) -> str:
    """The expectation for ``measurement`` of a ``check_type`` check, or ""."""
    return EXPECTED.get((check_type, measurement), "")


def for_type(check_type: str) -> str:
    """What a check of ``check_type`` expects as a whole, when it has a rule, or ""."""
    return BY_TYPE.get(check_type, "")
