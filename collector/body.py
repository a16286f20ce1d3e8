"""The ticket body in Markdown: DOMAIN.md's record fields, complete the first time.

Sections, in order: Problem (symptom, source, host, first seen, occurrences, impact
scope, category), Environment, Measured values (against the thresholds the agent
sent), Diagnostics, Steps Patrol already took, Suggested first actions, Past
occurrences, How to verify, SLA. Facts only: a field Patrol does not know is left
out, never guessed.

Diagnostics are rendered generically from the agent's dict, so a new check's
``diagnose()`` needs no code here: a dict becomes bullets (scalars) and sub-headings
(nested values), a list of dicts a table (at most ``MAX_ROWS`` rows), a long or
multi-line string a fenced block (at most ``MAX_TEXT`` characters). Values are
formatted by the base-unit suffix of their key (``_bytes``, ``_ratio``,
``_seconds``). A section that would take the diagnostics past ``MAX_DIAGNOSTICS``
characters is replaced by a note: helpdesks cap ticket sizes, and the collector's
ticket page has the full data.

Thresholds are read from ``Event.thresholds`` as ``{name: {"warning", "critical"}}``
or per item ``{name: {item: {"warning", "critical"}}}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from collector.knowledge import first_actions
from collector.model import Ticket, TimelineEntry
from collector.priority import iso_utc
from collector.wire import Event

MAX_ROWS = 20
MAX_COLUMNS = 10
MAX_TEXT = 4000
MAX_CELL = 200
MAX_DIAGNOSTICS = 16000
MAX_PAST = 10
MAX_DEPTH = 4
_SECTION_TITLES = {"check": "From the check", "top_processes": "Top processes",
                   "recent_changes": "Recent changes", "host": "Host facts"}
_SECTION_ORDER = ("check", "top_processes", "recent_changes", "host")
_SKIPPED = ("captured_at", "duration_seconds")


def verify_command(check: str, agent_config: str = "/etc/patrol/agent.yaml") -> str:
    """The command that re-runs one check on its host, as ``patrol check`` takes it."""
    return f"patrol check --config {agent_config} --only {check}"


def _bytes(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds >= 1 else f"{seconds * 1000:.0f}ms"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{int(count)}{unit}")
    return " ".join(parts[:2])


def measured(name: str, value: Any) -> str:
    """A value as a person reads it, by its key's unit suffix: ``96.2%``, ``1.2 GiB``."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, int | float):
        return "-" if value is None else str(value)
    unit = name.rsplit("_", 1)[-1]
    if unit == "ratio":
        return f"{value * 100:.1f}%"
    if unit == "bytes":
        return _bytes(value)
    if unit == "seconds":
        return _duration(value)
    return f"{value:,.12g}"


def _limit(name: str, value: Any) -> str:
    """A threshold as written: ``95%``, never rounded across the measured value."""
    if isinstance(value, int | float) and not isinstance(value, bool) and name.endswith(
            "_ratio"):
        return f"{round(value * 100, 4):g}%"
    return measured(name, value)


def _fence(text: str) -> list[str]:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + f"\n... ({len(text) - MAX_TEXT} more characters)"
    return [fence, text, fence]


def _cell(name: str, value: Any) -> str:
    if isinstance(value, dict | list) and not (isinstance(value, list) and all(
            not isinstance(v, dict | list) for v in value)):
        text = json.dumps(value, sort_keys=True)
    elif isinstance(value, list):
        text = ", ".join(str(v) for v in value)
    else:
        text = measured(name, value)
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    columns = columns[:MAX_COLUMNS]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows[:MAX_ROWS]:
        lines.append("| " + " | ".join(_cell(c, row.get(c)) for c in columns) + " |")
    if len(rows) > MAX_ROWS:
        lines.append(f"\n({len(rows) - MAX_ROWS} more rows not shown)")
    return lines


def _is_long(value: Any) -> bool:
    return isinstance(value, str) and (len(value) > 120 or "\n" in value)


def render_value(value: Any, path: tuple[str, ...] = ()) -> list[str]:
    """Markdown lines for one diagnostics value (see the module docstring). Nested
    values get ``####`` headings naming their whole path (``mounts / /var``), so depth
    never runs out of heading levels; past ``MAX_DEPTH`` keys they become JSON."""
    if isinstance(value, dict):
        if not value:
            return ["(empty)"]
        simple = {k for k, v in value.items()
                  if not isinstance(v, dict | list) and not _is_long(v)}
        lines = [f"- {k}: {measured(k, value[k])}" for k in value if k in simple]
        for key, sub in value.items():
            if key in simple:
                continue
            if lines:
                lines.append("")
            if len(path) >= MAX_DEPTH:
                lines += [f"{key}:", *_fence(json.dumps(sub, indent=1, sort_keys=True))]
                continue
            child = render_value(sub, (*path, str(key)))
            if not (isinstance(sub, dict) and child[0].startswith("#### ")):
                child = [f"#### {' / '.join((*path, str(key)))}", "", *child]
            lines += child  # a dict of only nested values: its children's headings say it
        return lines
    if isinstance(value, list):
        if not value:
            return ["(none)"]
        if all(isinstance(v, dict) for v in value):
            return _table(value)
        if all(not isinstance(v, dict | list) and not _is_long(v) for v in value):
            more = [f"- ({len(value) - MAX_ROWS} more)"] if len(value) > MAX_ROWS else []
            return [f"- {v}" for v in value[:MAX_ROWS]] + more
        return _fence(json.dumps(value, indent=1, sort_keys=True))
    if _is_long(value):
        return _fence(value)
    return [measured("", value)]


def render_diagnostics(diagnostics: Mapping[str, Any]) -> list[str]:
    """Every diagnostics section under a ``###`` heading, within ``MAX_DIAGNOSTICS``."""
    keys = [k for k in _SECTION_ORDER if k in diagnostics]
    keys += [k for k in diagnostics if k not in keys and k not in _SKIPPED]
    lines: list[str] = []
    used = 0
    for key in keys:
        title = _SECTION_TITLES.get(key, key.replace("_", " ").capitalize())
        section = ["", f"### {title}", "", *render_value(diagnostics[key])]
        size = sum(len(line) + 1 for line in section)
        if used + size > MAX_DIAGNOSTICS:
            section = ["", f"### {title}", "",
                       f"(omitted here: {size} characters; the ticket page has it)"]
        used += sum(len(line) + 1 for line in section)
        lines += section
    return lines or ["", "None captured."]


def _levels(thresholds: Mapping[str, Any], name: str, item: str) -> tuple[Any, Any]:
    """Levels keyed ``name``, ``name -> item``, or (as the agent sends them) ``name[item]``."""
    entry = thresholds.get(f"{name}[{item}]") if item else None
    entry = entry if entry is not None else thresholds.get(name)
    if isinstance(entry, dict) and item in entry and isinstance(entry[item], dict):
        entry = entry[item]
    if not isinstance(entry, dict):
        return None, None
    return entry.get("warning"), entry.get("critical")


def _measurements(ticket: Ticket, event: Event | None) -> list[str]:
    rows = ([m.model_dump() for m in event.measurements] if event is not None
            else ticket.measurements)
    if not rows:
        return ["None reported."]
    thresholds = event.thresholds if event is not None else {}
    lines = ["| Measurement | Item | Value | Warning | Critical |", "|---|---|---|---|---|"]
    for row in rows:
        name, item = row["name"], row.get("item", "")
        warning, critical = _levels(thresholds, name, item)
        lines.append(f"| {name} | {item or '-'} | {measured(name, row['value'])} | "
                     f"{_limit(name, warning)} | {_limit(name, critical)} |")
    return lines


def _problem(ticket: Ticket, event: Event | None, parent_number: str | None) -> list[str]:
    source = f"inspection: check `{ticket.check}` (type `{ticket.check_type}`)"
    if event is not None:
        source += f" by agent `{event.agent.id}` {event.agent.version}"
    scope = (f"{len(ticket.hosts)} hosts: {', '.join(ticket.hosts)}" if ticket.is_group
             else f"1 host ({ticket.host})")
    lines = [f"- **Symptom**: {ticket.title}", f"- **Source**: {source}",
             f"- **Host**: {ticket.host}", f"- **First seen**: {iso_utc(ticket.first_seen)}",
             f"- **Seen**: {ticket.occurrences} time{'s' * (ticket.occurrences != 1)}, "
             f"last {iso_utc(ticket.last_seen)}; check now {ticket.check_status} "
             f"(severity {ticket.severity})",
             f"- **Impact scope**: {scope}", f"- **Category**: {ticket.category}"]
    if ticket.parent_id is not None:
        lines.insert(6, f"- **Group**: part of group ticket {parent_number or ticket.parent_id}")
    return lines


def _environment(ticket: Ticket, diagnostics: Mapping[str, Any]) -> list[str]:
    labels = ", ".join(f"{k}={v}" for k, v in sorted(ticket.labels.items()))
    lines = [f"- **Labels**: {labels or 'none'}"]
    host = diagnostics.get("host")
    if isinstance(host, dict):
        for key, title in (("os", "OS"), ("kernel", "Kernel"), ("architecture", "Architecture")):
            if host.get(key):
                lines.append(f"- **{title}**: {host[key]}")
        if isinstance(host.get("uptime_seconds"), int | float):
            lines.append(f"- **Uptime**: {_duration(host['uptime_seconds'])}")
    return lines


def _steps(ticket: Ticket, diagnostics: Mapping[str, Any],
           timeline: Sequence[TimelineEntry], past: Sequence[Ticket]) -> list[str]:
    lines = [f"- {iso_utc(ticket.first_seen)} detected the problem in routine inspection"]
    captured = [k for k in diagnostics if k not in _SKIPPED]
    if captured:
        when = f"{diagnostics['captured_at']} " if "captured_at" in diagnostics else ""
        lines.append(f"- {when}captured diagnostics: {', '.join(captured)}")
    lines.append(f"- looked up past occurrences: {len(past)} found")
    lines += [f"- {iso_utc(e.at)} {e.text}" for e in timeline if e.author == "patrol"]
    return lines


def _past(past: Sequence[Ticket]) -> list[str]:
    if not past:
        return ["None: this is the first ticket for this host and check."]
    lines = ["| Ticket | Opened | Resolved | How it was resolved |", "|---|---|---|---|"]
    for old in past[:MAX_PAST]:
        resolved = iso_utc(old.resolved_at) if old.resolved_at is not None else "-"
        how = old.resolution or ("no note" if old.resolved_at is not None else old.status.value)
        lines.append(f"| {old.number or old.id} | {iso_utc(old.opened_at)} | {resolved} | "
                     f"{_cell('', how)} |")
    if len(past) > MAX_PAST:
        lines.append(f"\n({len(past) - MAX_PAST} older tickets not shown)")
    return lines


def render_body(ticket: Ticket, event: Event | None, past: Sequence[Ticket],
                timeline: Sequence[TimelineEntry], verify_command: str,
                parent_number: str | None = None) -> str:
    """The body of ``ticket``. ``event``: the one that opened or last changed it (None
    renders from the ticket's stored measurements, without thresholds); ``past``:
    earlier tickets for the same ``dedup_key``, newest first; ``parent_number``: the
    group ticket it belongs to, if any."""
    diagnostics = event.diagnostics if event is not None else ticket.diagnostics
    actions = [f"{n}. {text}" for n, text in enumerate(first_actions(ticket.check_type), 1)]
    if ticket.runbook:
        actions.append(f"\nRunbook: {ticket.runbook}")
    sections = [
        ("Problem", _problem(ticket, event, parent_number)),
        ("Environment", _environment(ticket, diagnostics)),
        ("Measured values", _measurements(ticket, event)),
        ("Diagnostics", render_diagnostics(diagnostics)[1:]),
        ("Steps Patrol already took", _steps(ticket, diagnostics, timeline, past)),
        ("Suggested first actions", actions),
        ("Past occurrences", _past(past)),
        ("How to verify", [f"On {ticket.host}:", "", *_fence(verify_command)]),
        ("SLA", [f"- **Priority**: {ticket.priority}",
                 f"- **Respond by**: {iso_utc(ticket.respond_by)}",
                 f"- **Resolve by**: {iso_utc(ticket.resolve_by)}"]),
    ]
    return "\n".join("\n".join([f"## {title}", "", *lines]) + "\n" for title, lines in sections)
