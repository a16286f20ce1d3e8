"""The one shared threshold evaluation: layering, overrides, hysteresis, units."""

from __future__ import annotations

import pytest

from patrol.checks.base import Measurement, MeasurementSpec, Status
from patrol.checks.config import CheckConfig
from patrol.checks.thresholds import Evaluator

SPECS = (
    MeasurementSpec("used_ratio", "space used", True, 0.85, 0.95, primary=True),
    MeasurementSpec("inodes_used_ratio", "inodes used", True, 0.85, 0.95),
    MeasurementSpec("expiry_seconds", "until expiry", False, 14 * 86400, 7 * 86400),
)


def evaluator(**options) -> Evaluator:
    return Evaluator(CheckConfig.model_validate({"name": "d", "type": "disk", **options}), SPECS)


def judge(ev: Evaluator, name: str, value: float, item: str = "") -> Status:
    return ev.judge(Measurement(name, value, item))


@pytest.mark.parametrize(
    ("options", "name", "value", "item", "expected"),
    [
        pytest.param({}, "used_ratio", 0.84, "/", Status.OK, id="default-below"),
        pytest.param({}, "used_ratio", 0.85, "/", Status.WARNING, id="default-at-warning"),
        pytest.param({}, "used_ratio", 0.95, "/", Status.CRITICAL, id="default-at-critical"),
        pytest.param({"warning": "70%"}, "used_ratio", 0.75, "/", Status.WARNING,
                     id="top-level-applies-to-primary"),
        pytest.param({"warning": "70%"}, "inodes_used_ratio", 0.75, "/", Status.OK,
                     id="top-level-not-secondary"),
        pytest.param({"thresholds": {"inodes_used_ratio": {"warning": "50%"}}},
                     "inodes_used_ratio", 0.6, "/", Status.WARNING, id="per-measurement"),
        pytest.param({"overrides": {"/var*": {"warning": "90%"}}}, "used_ratio", 0.88,
                     "/var/lib", Status.OK, id="override-glob-matches"),
        pytest.param({"overrides": {"/var*": {"warning": "90%"}}}, "used_ratio", 0.88,
                     "/home", Status.WARNING, id="override-other-item-unaffected"),
        pytest.param({"overrides": {"/boot": {"warning": None, "critical": None}}},
                     "used_ratio", 0.99, "/boot", Status.OK, id="null-disables"),
        pytest.param({}, "expiry_seconds", 10 * 86400, "", Status.WARNING,
                     id="lower-is-worse-warning"),
        pytest.param({"thresholds": {"expiry_seconds": {"critical": "3d"}}},
                     "expiry_seconds", 5 * 86400, "", Status.WARNING,
                     id="duration-threshold"),
        pytest.param({}, "not_declared", 1e9, "", Status.OK, id="undeclared-is-ignored"),
    ],
)
def test_layering(options, name, value, item, expected) -> None:
    assert judge(evaluator(**options), name, value, item) is expected


def test_recover_level_holds_the_alert_until_crossed() -> None:
    ev = evaluator(warning="85%", critical="95%", recover="80%")
    trace = [judge(ev, "used_ratio", v, "/") for v in (0.96, 0.90, 0.83, 0.81, 0.79, 0.83)]
    assert trace == [Status.CRITICAL, Status.WARNING, Status.WARNING, Status.WARNING,
                     Status.OK, Status.OK]


def test_hysteresis_is_per_item() -> None:
    ev = evaluator(recover="80%")
    assert judge(ev, "used_ratio", 0.90, "/a") is Status.WARNING
    assert judge(ev, "used_ratio", 0.83, "/b") is Status.OK
    assert judge(ev, "used_ratio", 0.83, "/a") is Status.WARNING


def test_without_recover_level_ok_is_immediate() -> None:
    ev = evaluator()
    assert judge(ev, "used_ratio", 0.90, "/") is Status.WARNING
    assert judge(ev, "used_ratio", 0.84, "/") is Status.OK
