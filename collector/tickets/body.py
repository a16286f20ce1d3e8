"""The ticket body in Markdown: DOMAIN.md's record fields, readable in one pass.

Sections, in order: Problem (symptom, source, host, first seen, occurrences, impact
scope, category), Environment, Measured values (each against its thresholds or, for
rules without levels such as a tcp check's ``up``, what was expected), Diagnostics,
Steps Patrol already took (in time order), Suggested first actions, Past
occurrences, How to verify, SLA. Facts only: a field Patrol does not know is left
out, never guessed. Tickets the collector opens itself because something went
silent (a stale check, an unreachable host) have no measurements or diagnostics;
they get "What stopped" and "What to look at" instead, and commands that work for
a silent agent.

Diagnostics are rendered generically from the agent's dict, so a new check's
``diagnose()`` needs no code here: a dict becomes bullets (scalars) and sub-headings
(nested values), a list of dicts a table (at most ``MAX_ROWS`` rows, then "… and N
more"), a long or multi-line string a fenced block (at most ``MAX_TEXT``
characters). Values are formatted by their key (:mod:`collector.tickets.readable`): PIDs as
ids, epochs and ISO strings as one UTC ``Z`` form, durations in words. A section
that would take the diagnostics past ``MAX_DIAGNOSTICS`` characters is replaced by
a note: helpdesks cap ticket sizes, and the collector's ticket page has the full data.

Thresholds are read from ``Event.thresholds`` as ``{name: {"warning", "critical"}}``
or per item ``{name: {item: {...}}}`` or ``{"name[item]": {...}}``.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from patrol.collector.i18n import gettext_for
from patrol.collector.model import Ticket, TimelineEntry, body_lines, declared
from patrol.collector.tickets import expectations
from patrol.collector.tickets.knowledge import first_actions
from patrol.collector.tickets.readable import iso_z, limit, measured, parse_moment
from patrol.contract.wire import Event

MAX_ROWS = 10
MAX_COLUMNS = 10
MAX_TEXT = 4000
MAX_CELL = 100
MAX_DIAGNOSTICS = 16000
MAX_PAST = 10
MAX_DEPTH = 4
DEFAULT_AGENT_CONFIG = "/etc/patrol/agent.yaml"
AGENT_ADDRESS = "127.0.0.1:9731"  # the agent's default listen address (agent.listen)
LIVENESS_TYPES = ("heartbeat", "staleness")
_SECTION_TITLES = {"check": "From the check", "result": "What the check saw",
                   "top_processes": "Top processes", "recent_changes": "Recent changes",
                   "host": "Host facts"}
# The order diagnostics sections are shown in (body and web page): the check's own
# findings first, the host's facts last. Fixed here because PostgreSQL's jsonb does not
# keep the agent's key order.
SECTION_ORDER = ("check", "result", "top_processes", "recent_changes", "host")
# Context around the problem, not the problem: the first few rows say enough.
_SECTION_ROWS = {"top_processes": 5, "recent_changes": 5, "host": 5}
_SKIPPED = ("captured_at", "duration_seconds")
_ENVIRONMENT_FACTS = (("os", "OS"), ("kernel", "Kernel"), ("architecture", "Architecture"))
_SHOWN_IN_ENVIRONMENT = ("os", "kernel", "architecture", "uptime_seconds")
_CONFIG_IN_COMMAND = re.compile(r"patrol check --config ('[^']*'|\S+) --only ")


def verify_command(check: str, agent_config: str = DEFAULT_AGENT_CONFIG) -> str:
    """The command that re-runs one check on its host, as ``patrol check`` takes it."""
    return f"patrol check --config {shlex.quote(agent_config)} --only {shlex.quote(check)}"


def _fence(text: str) -> list[str]:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + f"\n... ({len(text) - MAX_TEXT} more characters)"
    return [fence, text, fence]


_BLOCK_START = re.compile(r"(?:[`~#>|=<*+_-]|\d{1,9}[.)])")


def _as_text(line: str) -> str:
    """An agent's value that starts a Markdown line, kept as text. A value that begins
    like a fence (a log line of backticks or tildes), a heading, a quote, a list or a
    table would otherwise change how everything after it reads: a fence hides the rest
    of the ticket in a code block. CommonMark's backslash escape keeps the character."""
    text = line.lstrip()
    if not _BLOCK_START.match(text):
        return line
    number = re.match(r"\d{1,9}", text)
    if number:
        return text[:number.end()] + "\\" + text[number.end():]
    return "\\" + text


def _cell(name: str, value: Any) -> str:
    if isinstance(value, dict | list) and not (isinstance(value, list) and all(
            not isinstance(v, dict | list) for v in value)):
        text = json.dumps(value, sort_keys=True)
    elif isinstance(value, list):
        text = ", ".join(measured(name, v) for v in value)
    else:
        text = measured(name, value)
    text = " ".join(text.split())  # padded process titles, newlines: one tidy line
    text = text.replace("\\", "\\\\").replace("|", "\\|")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


_UNIT_SUFFIXES = ("_seconds_ago", "_bytes_per_second", "_bytes", "_ratio", "_seconds")


def label(key: str) -> str:
    """A key as a column or bullet name: the value shows the unit, so ``rss_bytes`` is
    "rss" and ``modified_seconds_ago`` "modified"; underscores become spaces."""
    for suffix in _UNIT_SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix):
            key = key[: -len(suffix)]
            break
    return key.replace("_", " ")


def _more(count: int) -> str:
    return f"… and {count} more"


# Table columns a reader scans first (what the row is), and last (long free text);
# the agent's JSON may arrive with its keys sorted, which would lead with "cmdline".
_FIRST_COLUMNS = ("pid", "name", "unit", "user", "path", "time", "action", "package")
_LAST_COLUMNS = ("cmdline", "command", "query", "message", "line", "text")


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]

    def place(key: str) -> tuple[int, int]:
        if key in _FIRST_COLUMNS:
            return (0, _FIRST_COLUMNS.index(key))
        return (2, _LAST_COLUMNS.index(key)) if key in _LAST_COLUMNS else (1, 0)

    return sorted(columns, key=place)[:MAX_COLUMNS]  # stable: the rest keep their order


def _table(rows: Sequence[Mapping[str, Any]], most: int = MAX_ROWS) -> list[str]:
    columns = _columns(rows)
    lines = ["| " + " | ".join(label(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows[:most]:
        lines.append("| " + " | ".join(_cell(c, row.get(c)) for c in columns) + " |")
    if len(rows) > most:
        lines += ["", _more(len(rows) - most)]
    return lines


def _is_long(value: Any) -> bool:
    return isinstance(value, str) and (len(value) > 120 or "\n" in value)


def heading(path: Sequence[str]) -> str:
    """A sub-heading a person can read: ``mounts › / › largest directories``, not
    ``mounts / / / largest_directories`` (a mount point is itself a slash)."""
    return "#### " + " › ".join(label(part) for part in path)


def _shown(value: Mapping[str, Any], key: str) -> bool:
    """``boot_time_iso`` says again what ``boot_time`` says once it is shown as a time."""
    return not (key.endswith("_iso") and key[: -len("_iso")] in value)


def render_value(value: Any, path: tuple[str, ...] = (), most: int = MAX_ROWS) -> list[str]:
    """Markdown lines for one diagnostics value (see the module docstring). Nested
    values get ``####`` headings naming their whole path, so depth never runs out of
    heading levels; past ``MAX_DEPTH`` keys they become JSON. Lists show ``most``
    rows."""
    if isinstance(value, dict):
        if not value:
            return ["(empty)"]
        keys = [k for k in value if _shown(value, str(k))]
        simple = {k for k in keys if not isinstance(value[k], dict | list)
                  and not _is_long(value[k])}
        lines = [f"- {label(str(k))}: {measured(str(k), value[k])}"
                 for k in keys if k in simple]
        for key in keys:
            if key in simple:
                continue
            sub = value[key]
            if lines:
                lines.append("")
            if len(path) >= MAX_DEPTH:
                lines += [f"{key}:", *_fence(json.dumps(sub, indent=1, sort_keys=True))]
                continue
            child = render_value(sub, (*path, str(key)), most)
            if not (isinstance(sub, dict) and child[0].startswith("#### ")):
                child = [heading((*path, str(key))), "", *child]
            lines += child  # a dict of only nested values: its children's headings say it
        return lines
    if isinstance(value, list):
        if not value:
            return ["(none)"]
        if all(isinstance(v, dict) for v in value):
            return _table(value, most)
        if all(not isinstance(v, dict | list) and not _is_long(v) for v in value):
            name = path[-1] if path else ""
            more = [f"- {_more(len(value) - most)}"] if len(value) > most else []
            return [f"- {_as_text(measured(name, v))}" for v in value[:most]] + more
        return _fence(json.dumps(value, indent=1, sort_keys=True))
    if _is_long(value):
        return _fence(value)
    return [_as_text(measured(path[-1] if path else "", value))]


def render_diagnostics(diagnostics: Mapping[str, Any]) -> list[str]:
    """Every diagnostics section under a ``###`` heading, within ``MAX_DIAGNOSTICS``."""
    keys = [k for k in SECTION_ORDER if k in diagnostics]
    keys += sorted(k for k in diagnostics if k not in keys and k not in _SKIPPED)
    lines: list[str] = []
    used = 0
    for key in keys:
        title = _SECTION_TITLES.get(key, key.replace("_", " ").capitalize())
        value = diagnostics[key]
        if value in ({}, [], None, ""):
            continue  # an empty section is noise, not evidence
        if key == "host" and isinstance(value, dict):  # the Environment section has these
            value = {k: v for k, v in value.items() if k not in _SHOWN_IN_ENVIRONMENT}
            if not value:
                continue
        section = ["", f"### {title}", "",
                   *render_value(value, most=_SECTION_ROWS.get(key, MAX_ROWS))]
        size = sum(len(line) + 1 for line in section)
        if used + size > MAX_DIAGNOSTICS:
            section = ["", f"### {title}", "",
                       f"(omitted here: {size} characters; the ticket page has it)"]
        used += sum(len(line) + 1 for line in section)
        lines += section
    return lines or ["", "None captured."]


def _levels(thresholds: Mapping[str, Any], name: str, item: str) -> dict[str, Any]:
    """Levels keyed ``name``, ``name -> item``, or (as the agent sends them) ``name[item]``."""
    entry = thresholds.get(f"{name}[{item}]") if item else None
    entry = entry if entry is not None else thresholds.get(name)
    if isinstance(entry, dict) and item in entry and isinstance(entry[item], dict):
        entry = entry[item]
    return entry if isinstance(entry, dict) else {}


def _expected(check_type: str, name: str, levels: Mapping[str, Any]) -> str:
    """"warning ≥ 90%, critical ≥ 95%" from the levels, or the rule in words."""
    sign = "≥" if levels.get("higher_is_worse", True) else "≤"
    unit = levels.get("unit") if isinstance(levels.get("unit"), str) else None
    parts = [f"{level} {sign} {limit(name, levels[level], unit)}"
             for level in ("warning", "critical") if levels.get(level) is not None]
    if parts and levels.get("recover") is not None:
        side = "below" if levels.get("higher_is_worse", True) else "above"
        parts.append(f"clears {side} {limit(name, levels['recover'], unit)}")
    return ", ".join(parts) or expectations.expected(check_type, name) or "-"


def _measurements(ticket: Ticket, event: Event | None) -> list[str]:
    rows = ([m.model_dump() for m in event.measurements] if event is not None
            else ticket.measurements)
    rule = expectations.for_type(ticket.check_type)
    if not rows:
        return [f"None reported. Expected: {rule}."] if rule else ["None reported."]
    thresholds = event.thresholds if event is not None else {}
    lines = ["| Measurement | Item | Value | Expected |", "|---|---|---|---|"]
    for row in rows:
        name, item = row["name"], row.get("item", "")
        expected = _expected(ticket.check_type, name, _levels(thresholds, name, item))
        lines.append(f"| {name} | {_cell('', item) or '-'} | {measured(name, row['value'])} | "
                     f"{expected} |")
    if rule:
        lines += ["", f"Expected: {rule}."]
    return lines


def _is_liveness(ticket: Ticket) -> bool:
    return ticket.check_type in LIVENESS_TYPES or ticket.check.startswith("stale:")


def _silent_check(ticket: Ticket) -> str:
    return ticket.check.removeprefix("stale:")


def _problem(ticket: Ticket, event: Event | None, parent_number: str | None) -> list[str]:
    if _is_liveness(ticket):
        source = "liveness: the collector noticed the silence (nothing ran on the host)"
    else:
        source = f"inspection: check `{ticket.check}` (type `{ticket.check_type}`)"
        if event is not None:
            source += f" by agent `{event.agent.id}` {event.agent.version}"
    scope = (f"{len(ticket.hosts)} hosts: {', '.join(ticket.hosts)}" if ticket.is_group
             else f"1 host ({ticket.host})")
    lines = [f"- **Symptom**: {ticket.title}", f"- **Source**: {source}",
             f"- **Host**: {ticket.host}", f"- **First seen**: {iso_z(ticket.first_seen)}",
             f"- **Seen**: {ticket.occurrences} time{'s' * (ticket.occurrences != 1)}, "
             f"last {iso_z(ticket.last_seen)}; check now {ticket.check_status} "
             f"(severity {ticket.severity})",
             f"- **Impact scope**: {scope}", f"- **Category**: {ticket.category}"]
    if ticket.parent_id is not None:
        lines.insert(6, f"- **Group**: part of group ticket {parent_number or ticket.parent_id}")
    return lines


def _environment(ticket: Ticket, diagnostics: Mapping[str, Any]) -> list[str]:
    labels = ", ".join(f"{k}={v}" for k, v in sorted(ticket.labels.items()))
    lines = [f"- **Labels**: {labels or 'none'}"]
    if "tier" in ticket.labels:
        lines.append(f"- **Tier**: {ticket.labels['tier']}")
    host = diagnostics.get("host")
    if isinstance(host, dict):
        for key, title in _ENVIRONMENT_FACTS:
            if host.get(key):
                lines.append(f"- **{title}**: {host[key]}")
        if isinstance(host.get("uptime_seconds"), int | float):
            lines.append(f"- **Uptime**: {measured('uptime_seconds', host['uptime_seconds'])}")
    return lines


def _steps(ticket: Ticket, diagnostics: Mapping[str, Any],
           timeline: Sequence[TimelineEntry], past: Sequence[Ticket]) -> list[str]:
    """What Patrol did, oldest first; the past-occurrence lookup happens at opening."""
    steps: list[tuple[float, int, str]] = []
    captured = [k for k in diagnostics if k not in _SKIPPED]
    at = diagnostics.get("captured_at")
    moment = parse_moment(at) if isinstance(at, str) and captured else None
    # The agent captures right after the run that detected the problem and before it
    # sends the event, so detection is no later than the capture.
    detected = ticket.first_seen if moment is None else min(ticket.first_seen, moment)
    how = ("noticed the silence in its liveness watch" if _is_liveness(ticket)
           else "detected the problem in routine inspection")
    steps.append((detected, 0, how))
    if captured:
        steps.append((detected if moment is None else moment, 1,
                      f"captured diagnostics: {', '.join(captured)}"))
    steps.append((ticket.opened_at, 2, f"looked up past occurrences: {len(past)} found"))
    steps += [(e.at, 3, e.text) for e in timeline if e.author == "patrol"]
    return [f"- {iso_z(at)} {text}" for at, _, text in sorted(steps, key=lambda s: s[:2])]


def _last_fix(fix: Mapping[str, Any] | None, host: str, _: Any = str) -> list[str]:
    """"Last time this was fixed by" from the knowledge archive (collector/tickets/archive.py)."""
    if not fix:
        return []
    where = "" if fix["host"] == host else f" on {fix['host']}"
    return ["", f"**{_('Last time this was fixed by')}**: {fix['author']}, {iso_z(fix['at'])}"
                f" ({fix['ticket_number']}{where}; cause: {fix['category']}): "
                f"{_cell('', fix['note'])}"]


def _past(past: Sequence[Ticket]) -> list[str]:
    if not past:
        return ["None: this is the first ticket for this host and check."]
    lines = ["| Ticket | Opened | Resolved | How it was resolved |", "|---|---|---|---|"]
    for old in past[:MAX_PAST]:
        resolved = iso_z(old.resolved_at) if old.resolved_at is not None else "-"
        how = old.resolution or ("no note" if old.resolved_at is not None else old.status.value)
        lines.append(f"| {old.number or old.id} | {iso_z(old.opened_at)} | {resolved} | "
                     f"{_cell('', how)} |")
    if len(past) > MAX_PAST:
        lines += ["", f"… and {len(past) - MAX_PAST} older tickets"]
    return lines


def agent_config(ticket: Ticket, event: Event | None, collector_command: str) -> str:
    """The config file the host's agent runs: as the agent reported it in the event,
    else as an earlier rendering of this body named it (a re-render without an event
    must not fall back to a guess), else the collector's default in its command."""
    if event is not None and event.agent.config:
        return event.agent.config
    for text in (ticket.body, collector_command):
        found = _CONFIG_IN_COMMAND.search(text or "")
        if found:
            return _first_word(found.group(1))
    return DEFAULT_AGENT_CONFIG


@lru_cache(maxsize=256)
def _first_word(text: str) -> str:
    """The first shell word of ``text``, remembered: every new ticket's body parses the
    same verify command (shlex was 3 % of the CPU of opening a ticket)."""
    return shlex.split(text)[0]


def _verify(ticket: Ticket, event: Event | None, collector_command: str) -> list[str]:
    config = agent_config(ticket, event, collector_command)
    base = f"http://{AGENT_ADDRESS}"
    if ticket.check_type == "heartbeat":
        return [f"On {ticket.host} (the agent's address is agent.listen in {config}, "
                f"{AGENT_ADDRESS} by default):", "",
                *_fence("\n".join([
                    "systemctl status patrol-agent",
                    "journalctl -u patrol-agent -n 100 --no-pager",
                    f"curl -s {base}/healthz",
                    f"curl -s {base}/api/v1/status"])),
                "", "The ticket resolves by itself with the host's next heartbeat."]
    check = _silent_check(ticket)
    command = verify_command(check, config)
    if _is_liveness(ticket):
        return [f"On {ticket.host}:", "",
                *_fence("\n".join([
                    command,
                    f"curl -s '{base}/api/v1/status?check={check}'",
                    "journalctl -u patrol-agent -n 100 --no-pager"])),
                "", f"The first command runs `{check}` once by hand; the status API shows "
                "when the agent last ran it. The ticket resolves by itself when results "
                "arrive again."]
    return [f"On {ticket.host}:", "", *_fence(command), "",
            "The check reports OK once the problem is fixed."]


def _what_stopped(ticket: Ticket, event: Event | None) -> list[str]:
    """A silent check or host: what went quiet, since when, what was last known."""
    if ticket.check_type == "heartbeat":
        lines = [f"- **What**: the Patrol agent on {ticket.host} stopped sending heartbeats "
                 "(the host, the agent or the network path to the collector is down)",
                 f"- **Noticed**: {iso_z(ticket.first_seen)}"]
    else:
        lines = [f"- **What**: check `{_silent_check(ticket)}` on {ticket.host} stopped "
                 "sending results (its host still sends heartbeats)",
                 f"- **Last result**: {iso_z(ticket.first_seen)}"]
    last = event.summary if event is not None else ticket.title
    if last != ticket.title:  # the symptom line says it already
        lines.append(f"- **Last known**: {last}")
    if ticket.measurements:
        lines += ["", *_measurements(ticket, None)]
    return lines


def render_body(ticket: Ticket, event: Event | None, past: Sequence[Ticket],
                timeline: Sequence[TimelineEntry], verify_command: str,
                parent_number: str | None = None,
                last_fix: Mapping[str, Any] | None = None, language: str = "en",
                own_actions: Sequence[str] = ()) -> str:
    """The body of ``ticket``. ``event``: the one that opened or last changed it (None
    renders from the ticket's stored measurements, without thresholds); ``past``:
    earlier tickets for the same ``dedup_key``, newest first; ``verify_command``: the
    collector's command for the check, used when the agent did not name its config;
    ``parent_number``: the group ticket it belongs to, if any; ``own_actions``: the
    operator's first actions for this check type (their knowledge file), listed before
    the built-in ones, since they know their hosts."""
    _ = gettext_for(language)
    diagnostics = event.diagnostics if event is not None else ticket.diagnostics
    actions = [f"{n}. {text}" for n, text in enumerate(
        (*own_actions, *first_actions(ticket.check_type, bool(diagnostics))), 1)]
    if _is_liveness(ticket):
        evidence = [("What stopped", _what_stopped(ticket, event))]
    else:
        evidence = [("Measured values", _measurements(ticket, event)),
                    ("Diagnostics", render_diagnostics(diagnostics)[1:])]
    sections = [
        ("Problem", _problem(ticket, event, parent_number)),
        ("Environment", _environment(ticket, diagnostics)),
        *evidence,
        ("Steps Patrol already took", _steps(ticket, diagnostics, timeline, past)),
        ("Suggested first actions", actions),
        ("Past occurrences", _past(past) + _last_fix(last_fix, ticket.host, _)),
        ("How to verify", _verify(ticket, event, verify_command)),
        ("SLA", [f"- **{_('Priority')}**: {ticket.priority}",
                 f"- **{_('Respond by')}**: {iso_z(ticket.respond_by)}",
                 f"- **{_('Resolve by')}**: {iso_z(ticket.resolve_by)}"]),
    ]
    sections = [(title, [*lines, *_declared(ticket, title)]) for title, lines in sections]
    # Headings and fixed sentences in the collector's ``language`` (collector/i18n.py).
    return "\n".join("\n".join([f"## {_(title)}", "", *(_(line) if line else line
                                                        for line in lines)])
                      + "\n" for title, lines in sections)


def _declared(ticket: Ticket, section: str) -> list[str]:
    """Lines for the fields :class:`collector.model.Ticket` declares for ``section``
    (``shown(body=...)``): after the first actions a paragraph (the check's runbook),
    elsewhere one more fact of the list."""
    if section not in _body_sections(type(ticket)):
        return []  # most sections have no declared field: no walk over the fields
    style = "\n{}: {}" if section == "Suggested first actions" else "- **{}**: {}"
    return [style.format(label, value) for label, value in body_lines(ticket, section)]


_SECTIONS: dict[type[Ticket], frozenset[str]] = {}


def _body_sections(cls: type[Ticket]) -> frozenset[str]:
    """The sections in which ``cls`` declares fields (``shown(body=...)``)."""
    found = _SECTIONS.get(cls)
    if found is None:
        found = _SECTIONS[cls] = frozenset(spec.body[0] for _, spec in declared(cls)
                                           if spec.body is not None)
    return found
