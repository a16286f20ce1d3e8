"""The plain, frozen copy of a validated config (checks/values.py PlainConfig) is what
the running agent gets from its validating child: it must judge, run and keep secrets
exactly as the pydantic model it was copied from."""

from __future__ import annotations

import pickle

import pytest

from patrol.agent.config import load_config
from patrol.agent.runtime_config import plain_config
from patrol.checks.base import Measurement
from patrol.checks.registry import load
from patrol.checks.thresholds import Evaluator
from patrol.checks.values import PlainConfig, Secret, field_names, to_plain


def model(check_type: str, **options: object) -> object:
    return load(check_type).Config.model_validate({"name": "x", "type": check_type, **options})


def test_thresholds_judge_the_same_on_the_copy() -> None:
    config = model("disk", warning="80%", thresholds={"inodes_used_ratio": {"critical": None}},
                   overrides={"/var*": {"warning": "70%", "recover": "60%"}})
    specs = load("disk").MEASUREMENTS
    copy = pickle.loads(pickle.dumps(to_plain(config)))
    for name in ("used_ratio", "inodes_used_ratio", "free_bytes"):
        for item in ("/", "/var/lib"):
            assert Evaluator(copy, specs).levels(name, item) == \
                Evaluator(config, specs).levels(name, item)
    judged = [Evaluator(c, specs).judge(Measurement("used_ratio", 0.75, "/var"))
              for c in (config, copy)]
    assert judged[0] == judged[1]


def test_the_copy_has_the_same_values_and_properties_and_is_frozen() -> None:
    config = model("disk", paths=["/", "/var"])
    copy = to_plain(config)
    assert isinstance(copy, PlainConfig)
    assert field_names(copy) == tuple(type(config).model_fields)
    assert all(getattr(copy, f) == getattr(config, f) for f in field_names(copy))
    assert copy.chosen_paths == config.chosen_paths == ["/", "/var"]  # a property, copied
    assert copy.model_fields_set == config.model_fields_set
    assert copy == pickle.loads(pickle.dumps(copy))
    with pytest.raises(AttributeError):
        copy.paths = ["/tmp"]  # type: ignore[misc]


def test_secrets_stay_secret_in_the_copy(tmp_path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("agent: {token: agent-secret-123456}\n"
                    "checks:\n  - {name: db, type: redis,"
                    " url: 'redis://:redis-secret-98765@127.0.0.1:6379'}\n")
    config = load_config(path)
    copy = pickle.loads(pickle.dumps(plain_config(config)))
    assert copy.secrets() == config.secrets() >= {"agent-secret-123456"}
    assert isinstance(copy.agent.token, Secret)
    assert "-secret-" not in repr(copy.agent) + repr(copy.checks[0].config)
