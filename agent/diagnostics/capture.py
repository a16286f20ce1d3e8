"""Diagnostics at breach: run every collector in parallel, each within budgets.

Called when a check's hard state leaves OK or worsens. Collectors are zero-argument
callables returning JSON-like data: ``host`` and ``recent_changes`` always, each
name in ``extras`` (a check's ``DIAGNOSTICS``; today only ``top_processes``) and
the check's own ``diagnose(result)`` as ``check`` when it has one.

Contracts, each tested:

* Time: all collectors start together on daemon threads and share one deadline,
  ``time_budget`` seconds after the start, so a capture takes at most about the
  budget. A collector still running then is abandoned (its thread ends on its own,
  its late result is dropped) and reported as ``{"error": "timed out after 2.0s"}``;
  one that raises is ``{"error": "<ExcType>: message"}``. Neither affects the others.
* Size: each section is redacted, then shrunk to ``size_budget`` bytes of JSON by
  :func:`agent.diagnostics.budget.fit` (marked ``"truncated": true``). Redacting
  first means a cut can never leave half a password behind.
* Secrets: the whole document passes through :func:`redact` with the configured
  secret values, once more at the end.

The document: ``captured_at`` (ISO-8601 UTC), ``duration_seconds`` per collector,
then one key per collector.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from patrol.agent.diagnostics.budget import fit
from patrol.agent.diagnostics.changes import recent_changes
from patrol.agent.diagnostics.host import HostFactsCache, iso
from patrol.agent.diagnostics.processes import top_processes
from patrol.agent.diagnostics.redact import redact

Collector = Callable[[], Any]
ALWAYS = ("host", "recent_changes")

# Host facts rarely change; one cache per agent process spares the work at every breach.
_HOST_FACTS = HostFactsCache(ttl=300.0)


def default_collectors() -> dict[str, Collector]:
    """Every generic collector by name (the names a check's ``DIAGNOSTICS`` may use)."""
    return {"host": _HOST_FACTS.get, "recent_changes": recent_changes,
            "top_processes": top_processes}


def _unknown(name: str) -> Collector:
    def collector() -> Any:
        raise LookupError(f"no diagnostic named {name!r}; known: "
                          f"{', '.join(sorted(default_collectors()))}")
    return collector


def _jobs(check: Any, result: Any, extras: Iterable[str],
          collectors: Mapping[str, Collector] | None) -> dict[str, Collector]:
    available = {**default_collectors(), **(collectors or {})}
    jobs: dict[str, Collector] = {}
    for name in (*ALWAYS, *extras):
        jobs.setdefault(name, available.get(name) or _unknown(name))
    diagnose = getattr(check, "diagnose", None)
    if callable(diagnose):
        jobs["check"] = lambda: diagnose(result)
    return jobs


def _run_all(jobs: Mapping[str, Collector], budget: float,
             monotonic: Callable[[], float]) -> dict[str, tuple[bool, Any, float]]:
    """``{name: (ok, value_or_error_text, seconds)}`` for collectors done by the deadline."""
    done: dict[str, tuple[bool, Any, float]] = {}

    def work(name: str, collector: Collector) -> None:
        began = monotonic()
        try:
            outcome: tuple[bool, Any] = (True, collector())
        except Exception as exc:
            outcome = (False, f"{type(exc).__name__}: {exc}")
        done[name] = (*outcome, monotonic() - began)

    deadline = monotonic() + budget
    threads = [threading.Thread(target=work, args=item, name=f"patrol-diagnostics-{item[0]}",
                                daemon=True) for item in jobs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - monotonic()))
    return dict(done)  # a copy: collectors finishing late must not change the result


def capture(
    check: Any,
    result: Any,
    *,
    extras: Iterable[str] = ("top_processes",),
    time_budget: float = 2.0,
    size_budget: int = 64 * 1024,
    secrets: Iterable[Any] = (),
    names: Iterable[str] = (),
    collectors: Mapping[str, Collector] | None = None,
    clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """The redacted diagnostics document for ``check``'s breach ``result``.

    ``collectors`` replaces or adds collectors by name (tests, third parties);
    ``secrets`` are literal values (str or ``Secret``) to scrub wherever they appear.
    """
    secrets = list(secrets)
    jobs = _jobs(check, result, extras, collectors)
    captured_at = iso(clock())
    outcomes = _run_all(jobs, time_budget, monotonic)
    doc: dict[str, Any] = {"captured_at": captured_at, "duration_seconds": {}}
    for name in jobs:
        if name not in outcomes:
            doc["duration_seconds"][name] = round(float(time_budget), 3)
            doc[name] = {"error": f"timed out after {float(time_budget)}s"}
            continue
        ok, value, seconds = outcomes[name]
        doc["duration_seconds"][name] = round(seconds, 3)
        if ok:
            doc[name], _ = fit(redact(value, secrets, names), size_budget)
        else:
            doc[name] = {"error": value}
    return redact(doc, secrets, names)
