"""capture(): parallel collectors under a time budget, a size budget and redaction."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from patrol.agent.diagnostics import capture
from patrol.agent.diagnostics.budget import fit, json_size
from patrol.checks.base import Result, Status
from patrol.checks.config import Secret

RESULT = Result(Status.CRITICAL, "something broke on testhost")


class NoDiagnose:
    type = "plain"


class Diagnosing:
    def __init__(self, payload: Any) -> None:
        self.payload = payload
        self.seen: list[Result] = []

    def diagnose(self, result: Result) -> Any:
        self.seen.append(result)
        return self.payload


def _fast(value: Any) -> Callable[[], Any]:
    return lambda: value


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at teardown so abandoned collector threads end instead of lingering."""
    event = threading.Event()
    yield event
    event.set()


def _collectors(**extra: Callable[[], Any]) -> dict[str, Callable[[], Any]]:
    return {"host": _fast({"hostname": "db-01"}), "recent_changes": _fast({"packages": []}),
            "top_processes": _fast({"by_cpu": []}), **extra}


def test_a_slow_collector_is_abandoned_at_the_budget(release: threading.Event) -> None:
    def stuck() -> dict[str, Any]:
        release.wait(30)
        return {"late": True}

    started = time.monotonic()
    doc = capture(NoDiagnose(), RESULT, time_budget=0.5,
                  collectors=_collectors(top_processes=stuck))
    elapsed = time.monotonic() - started
    assert elapsed < 0.5 + 0.5
    assert doc["top_processes"] == {"error": "timed out after 0.5s"}
    assert doc["host"] == {"hostname": "db-01"}
    assert doc["recent_changes"] == {"packages": []}
    assert doc["duration_seconds"]["top_processes"] == 0.5
    assert doc["duration_seconds"]["host"] < 0.5


def test_collectors_run_in_parallel() -> None:
    def nap() -> str:
        time.sleep(0.3)
        return "done"

    started = time.monotonic()
    doc = capture(Diagnosing({"x": 1}), RESULT, time_budget=2.0,
                  collectors={"host": nap, "recent_changes": nap, "top_processes": nap})
    assert time.monotonic() - started < 0.6
    assert (doc["host"], doc["recent_changes"], doc["top_processes"]) == ("done",) * 3
    assert doc["check"] == {"x": 1}


def test_a_raising_collector_is_reported_and_others_survive() -> None:
    def broken() -> None:
        raise ValueError("boom")

    doc = capture(Diagnosing({"sessions": 3}), RESULT,
                  collectors=_collectors(recent_changes=broken))
    assert doc["recent_changes"] == {"error": "ValueError: boom"}
    assert doc["host"] == {"hostname": "db-01"}
    assert doc["check"] == {"sessions": 3}


def test_a_raising_diagnose_is_reported_as_check_error() -> None:
    class Broken:
        def diagnose(self, result: Result) -> dict[str, Any]:
            raise KeyError("pg_stat_activity")

    doc = capture(Broken(), RESULT, collectors=_collectors())
    assert doc["check"] == {"error": "KeyError: 'pg_stat_activity'"}


def test_document_shape() -> None:
    check = Diagnosing({"unit": "nginx.service"})
    doc = capture(check, RESULT, collectors=_collectors(), clock=lambda: 1_795_000_000.0)
    assert list(doc) == ["captured_at", "duration_seconds", "host", "recent_changes",
                         "top_processes", "check"]
    assert doc["captured_at"] == "2026-11-18T11:06:40+00:00"
    assert set(doc["duration_seconds"]) == {"host", "recent_changes", "top_processes", "check"}
    assert check.seen == [RESULT]


def test_no_diagnose_no_check_section_and_extras_are_chosen() -> None:
    doc = capture(NoDiagnose(), RESULT, extras=(), collectors=_collectors())
    assert list(doc) == ["captured_at", "duration_seconds", "host", "recent_changes"]


def test_unknown_extra_is_an_error_not_a_crash() -> None:
    doc = capture(NoDiagnose(), RESULT, extras=("bogus",), collectors=_collectors())
    assert doc["bogus"] == {
        "error": "LookupError: no diagnostic named 'bogus'; "
                 "known: host, recent_changes, top_processes"}


def test_an_oversized_collector_is_truncated_under_the_budget() -> None:
    rows = [{"i": i, "text": "x" * 200} for i in range(2000)]
    big = {"rows": rows, "blob": "y" * 100_000, "count": 2000}
    doc = capture(NoDiagnose(), RESULT, size_budget=4096,
                  collectors=_collectors(top_processes=_fast(big)))
    section = doc["top_processes"]
    assert json_size(section) <= 4096
    assert section["truncated"] is True
    assert section["count"] == 2000
    assert section["rows"][0] == {"i": 0, "text": "x" * 200}
    assert 1 <= len(section["rows"]) < 2000
    assert section["blob"].startswith("yyyy")
    assert doc["host"] == {"hostname": "db-01"}  # small sections untouched, no marker


def test_secrets_in_check_diagnostics_never_appear() -> None:
    check = Diagnosing({
        "sessions": [
            {"dsn": "postgresql://app:S3cretPw@db-01:5432/orders", "state": "active"},
            {"cmdline": "pg_dump --password Hunter22 --host db-01 orders"},
            {"env": "PGPASSWORD=EnvPass77 psql"},
        ],
        "log": "connected using Xyzzy-9876 as the key",
        "password": "DictPass55",
    })
    doc = capture(check, RESULT, secrets=[Secret("Xyzzy-9876")], collectors=_collectors())
    text = json.dumps(doc)
    for secret in ("S3cretPw", "Hunter22", "EnvPass77", "Xyzzy-9876", "DictPass55"):
        assert secret not in text
    assert doc["check"]["sessions"][0]["dsn"] == "postgresql://app:***@db-01:5432/orders"
    assert doc["check"]["sessions"][1]["cmdline"] == "pg_dump --password *** --host db-01 orders"


def test_secrets_in_error_messages_never_appear() -> None:
    def fails() -> None:
        raise ConnectionError("cannot reach redis://:RedisPw1@127.0.0.1:6379")

    doc = capture(NoDiagnose(), RESULT, collectors=_collectors(top_processes=fails))
    assert doc["top_processes"] == {
        "error": "ConnectionError: cannot reach redis://:***@127.0.0.1:6379"}


def test_truncation_never_cuts_a_secret_in_half() -> None:
    # The 1000-character string is halved once; unredacted, the cut would land inside
    # the password, after which no rule could recognise what is left of it.
    url = "postgresql://u:TopSecret99@h"
    text = "x" * 475 + url + "z" * 497
    doc = capture(NoDiagnose(), RESULT, size_budget=800,
                  collectors=_collectors(top_processes=_fast({"text": text})))
    assert doc["top_processes"]["truncated"] is True
    assert "TopSecret" not in json.dumps(doc)


@pytest.mark.parametrize("payload", [
    [{"n": i, "s": "é" * 50} for i in range(500)],
    {"a": ["x" * 5000] * 3, "b": {"c": ["y" * 3000, "z"]}},
    "w" * 50_000,
    {f"k{i}": i for i in range(5000)},
], ids=["list-of-rows", "nested", "bare-string", "many-keys"])
def test_fit_always_returns_valid_json_under_the_limit(payload: Any) -> None:
    out, truncated = fit(payload, 2048)
    assert truncated is True
    assert json_size(out) <= 2048
    assert json.loads(json.dumps(out)) == out
    assert out["truncated"] is True


def test_fit_leaves_small_documents_alone() -> None:
    doc = {"a": [1, 2, 3]}
    assert fit(doc, 1024) == (doc, False)


@pytest.mark.slow
def test_real_capture_on_this_machine() -> None:
    check = Diagnosing({"dsn": "host=127.0.0.1 password=RealPw123 user=postgres"})
    started = time.monotonic()
    doc = capture(check, RESULT)
    assert time.monotonic() - started < 2.5
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", doc["captured_at"])
    assert doc["host"]["hostname"]
    assert "etc_files" in doc["recent_changes"]
    assert doc["top_processes"]["counts"]["total"] > 0
    assert doc["check"] == {"dsn": "host=127.0.0.1 password=*** user=postgres"}
    for name in ("host", "recent_changes", "top_processes", "check"):
        assert json_size(doc[name]) <= 64 * 1024
    assert "RealPw123" not in json.dumps(doc)
