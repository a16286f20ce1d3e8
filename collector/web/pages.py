"""The collector's web pages: fleet grid, open tickets with SLA clocks, ticket detail,
and the reports (:mod:`collector.reports`, served as the self-contained HTML they are).

Server-rendered HTML (Jinja2, autoescaped) and one small stylesheet; no JavaScript,
so the pages work in any browser and in ``chromium --dump-dom``. The grid and the
ticket list refresh themselves every 30 s with ``<meta http-equiv="refresh">``.

The app provides ``app.state.store`` (a :class:`collector.store.TicketStore`),
``app.state.tokens`` (:class:`collector.access.auth.TokenBook`) and optionally
``app.state.clock`` (epoch seconds; ``time.time`` if unset).

Authentication: an operator token as a bearer header (curl, scripts), or a web
session (:mod:`collector.access.sessions`): ``POST /login`` with an operator token (shared or
named) starts one and sets the ``patrol_session`` cookie (signed, HttpOnly,
SameSite=Lax so a ticket link from mail or a helpdesk works; Secure over https). The
cookie is not a token and the JSON API ignores it. ``/login?code=...`` redeems the
one-time code ``patrol up`` prints; ``next`` must be a path on this site, so the login
link cannot bounce a browser elsewhere. ``POST /logout`` ends the session.

Actions: the ticket page has forms to acknowledge, comment, resolve, close (the API's
rules: resolving a still-failing check needs "force") and silence (a maintenance window
for the host or the check, 1 to 168 hours). Every form carries the session's CSRF token
and the request's ``Origin``, when sent, must be this site; each action is written on
the timeline under the operator's name (the named credential's, or "operator" for the
shared token). Pages answer 401/403 with an HTML page (the login form), not JSON. Every
page sends a Content-Security-Policy that forbids scripts, so even a rendering bug that
let agent text through as markup could not run code.
"""

from __future__ import annotations

import glob
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

import jinja2
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from patrol.collector.access import auth
from patrol.collector.access.sessions import COOKIE, SESSION_SECONDS, Session, Sessions
from patrol.collector.model import Priority, TicketStatus
from patrol.collector.tickets import chart as ticket_chart
from patrol.collector.tickets.actions import TicketRefused, act
from patrol.collector.web import view as webview
from patrol.contract.markup import safe_url, to_html

if TYPE_CHECKING:
    from patrol.collector.store.base import TicketStore

HERE = Path(__file__).resolve().parent
REFRESH_SECONDS = 30
LOGIN_HINT = "/login"
MAX_FORM_BYTES = 64 * 1024
ACTIONS = ("acknowledge", "comment", "resolve", "close", "silence")
SILENCE_HOURS = (1, 168)
PAGE_SIZE = 100
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; style-src 'self'; img-src 'self'; "
                                "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

templates = Jinja2Templates(env=jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
    undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True))


def render_markdown(text: str) -> Markup:
    """A ticket body (Markdown) as HTML for a template: the helpdesks' renderer
    (:func:`patrol.contract.markup.to_html`, which escapes every character and links only
    http(s)/mailto URLs), so the page shows what a helpdesk shows."""
    return Markup(to_html(text))


templates.env.filters["markdown"] = render_markdown
templates.env.globals.update(when=webview.when, ago=webview.ago, refresh=REFRESH_SECONDS)

router = APIRouter(include_in_schema=False)


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    session: Session | None = getattr(request.state, "session", None)
    context = {"operator": getattr(request.state, "operator", None),
               "csrf": session.csrf if session else None, **context}
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def _problem(request: Request, status: int, title: str, text: str,
             hint: str = "") -> Response:
    return _page(request, "problem.html", {"title": title, "text": text, "status": status,
                                           "hint": hint, "refresh_page": False}, status)


def _sessions(request: Request) -> Sessions:
    state = request.app.state
    if getattr(state, "sessions", None) is None:
        state.sessions = Sessions(state.store)
    return state.sessions


def _login_page(request: Request, status: int, title: str, text: str,
                next_path: str = "/", code: str = "") -> Response:
    return _page(request, "login.html", {"title": title, "text": text, "status": status,
                                         "next": local_path(next_path), "code": code,
                                         "refresh_page": False}, status)


def _denied(request: Request) -> Response | None:
    """None if the request carries an operator token or a live session (and notes who
    is asking on ``request.state``), else the 401/403 page."""
    token = auth.presented_token(request)
    if token is not None:
        principal = request.app.state.tokens.principal(token)
        if principal is None:
            return _login_page(request, 401, "Log in to Patrol",
                               "That bearer token is not valid here. Log in with an "
                               "operator token:", request.url.path)
        if principal.kind != auth.OPERATOR:
            return _problem(request, 403, "Not an operator token",
                            "The token you presented is not an operator token, so it "
                            "cannot open the web pages. Log in with an operator token:",
                            LOGIN_HINT)
        request.state.operator = principal.name
        return None
    session = _sessions(request).find(request.cookies.get(COOKIE), _now(request))
    if session is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return _login_page(request, 401, "Log in to Patrol",
                           "This page needs an operator. Paste an operator token (from "
                           "the collector's configuration, patrol up's output or "
                           "patrol operators issue) or open the one-time link patrol up "
                           "prints:", path)
    request.state.operator, request.state.session = session.operator, session
    return None


def _foreign_origin(request: Request) -> bool:
    """Whether a browser says this POST comes from a page of another site. "null" says
    nothing (our own pages send it: their Referrer-Policy is no-referrer), so the CSRF
    token remains the real check; this one stops a cross-site login form early."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return False
    return origin != f"{request.url.scheme}://{request.url.netloc}"


async def _form(request: Request) -> dict[str, str] | None:
    """An urlencoded form's fields (first value each); None if it is not one or too big.
    Parsed here: six fields do not need a multipart library."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return None
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return None
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return None
    return {key: values[0] for key, values in fields.items()}


def _start_session(request: Request, operator: str, next_path: str) -> Response:
    cookie = _sessions(request).start(operator, _now(request))
    response = RedirectResponse(local_path(next_path), status_code=303)
    response.set_cookie(COOKIE, cookie, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", path="/",
                        max_age=SESSION_SECONDS)
    response.headers.update(SECURITY_HEADERS)
    return response


def _now(request: Request) -> float:
    clock: Callable[[], float] = getattr(request.app.state, "clock", time.time)
    return clock()


def local_path(target: str | None) -> str:
    """``target`` if it is a path on this site (``/...`` but not ``//host`` or
    ``/\\host``, which browsers treat as another host), else ``/``."""
    if (not target or not target.startswith("/") or target[1:2] in ("/", "\\")
            or any(ord(c) < 32 or c == "\\" for c in target)):
        return "/"
    return target


@router.get("/static/patrol.css")
def stylesheet() -> Response:
    return FileResponse(HERE / "static" / "patrol.css", media_type="text/css",
                        headers={"Cache-Control": "max-age=300"})


@router.get("/login")
def login_form(request: Request, code: str = "", token: str = "",
               next_path: str = Query("/", alias="next")) -> Response:
    """The login form; with ``?code=`` (patrol up's one-time link) it logs in at once."""
    if code:
        operator = _sessions(request).redeem_login_code(code, _now(request))
        if operator is not None:
            return _start_session(request, operator, next_path)
        return _login_page(request, 401, "That login link was used already",
                           "A login link works once. Paste the operator token instead "
                           "(patrol up prints it and keeps it in its state directory):",
                           next_path)
    text = ("Paste an operator token to log in; the pages keep you logged in with a "
            "session cookie, never with the token.")
    if token:
        text = ("Tokens are no longer accepted in the address (it ends up in histories "
                "and logs). Paste it here instead:")
    return _login_page(request, 200, "Log in to Patrol", text, next_path)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await _form(request)
    if form is None or _foreign_origin(request):
        return _problem(request, 400, "Not a login form",
                        "Log in with the form on this site's login page:", LOGIN_HINT)
    next_path = form.get("next", "/")
    token = form.get("token", "").strip()
    principal = request.app.state.tokens.principal(token) if token else None
    if principal is None:
        what = "That token is wrong" if token else "No token was given"
        return _login_page(request, 401, "Wrong or missing token",
                           f"{what}, so you are not logged in. Use an operator token "
                           "(patrol up prints one):", next_path)
    if principal.kind != auth.OPERATOR:
        return _login_page(request, 403, "Not an operator token",
                           f"That is an {principal.kind} token; only an operator token "
                           "can log in to the web pages:", next_path)
    return _start_session(request, principal.name, next_path)


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await _form(request) or {}
    session = _sessions(request).find(request.cookies.get(COOKIE), _now(request))
    if session is not None:
        if _foreign_origin(request) or not Sessions.check_csrf(session, form.get("csrf")):
            return _problem(request, 403, "Log out from this site",
                            "This request did not come from Patrol's own page.")
        _sessions(request).end(session, _now(request))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    response.headers.update(SECURITY_HEADERS)
    return response


@router.get("/")
def fleet(request: Request) -> Response:
    if denied := _denied(request):
        return denied
    store = request.app.state.store
    now = _now(request)
    grid = webview.build_grid(store.hosts(), store.check_states(), now)
    counts = webview.priority_counts(store.stats())
    return _page(request, "fleet.html", {
        "title": "Fleet", "grid": grid, "counts": counts, "refresh_page": True,
        "open_total": sum(n for _, n in counts)})


def _choices(raw: list[str], allowed: tuple[str, ...], what: str) -> list[str]:
    """Repeated or comma-separated query values, blanks dropped; 400 for unknown ones."""
    values = [v.strip() for item in raw for v in item.split(",") if v.strip()]
    wrong = [v for v in values if v not in allowed]
    if wrong:
        raise ValueError(f"unknown {what} {wrong[0]!r}; use one of: {', '.join(allowed)}")
    return values


@router.get("/tickets")
def tickets(request: Request, host: str = "", check: str = "", offset: str = "0") -> Response:
    if denied := _denied(request):
        return denied
    query = request.query_params
    statuses = tuple(s.value for s in TicketStatus)
    try:
        status = _choices(query.getlist("status"), ("open", "all", *statuses), "status")
        priority = _choices(query.getlist("priority"), tuple(p.value for p in Priority),
                            "priority")
    except ValueError as exc:
        return _problem(request, 400, "Bad filter", str(exc))
    wanted: list[str] | None = [s for s in status if s not in ("open", "all")]
    if "all" in status:
        wanted = None
    elif not wanted:
        wanted = list(webview.OPEN_STATUSES)
    start = max(0, int(offset)) if offset.isdigit() else 0  # a mangled link: first page
    found = request.app.state.store.list_tickets(
        status=wanted, priority=priority or None, host=host.strip() or None,
        check=check.strip() or None, limit=PAGE_SIZE + 1, offset=start)
    more = len(found) > PAGE_SIZE
    now = _now(request)
    filters = {"status": ",".join(status) or "open", "priority": ",".join(priority),
               "host": host.strip(), "check": check.strip()}
    following = request.url.include_query_params(offset=start + PAGE_SIZE)
    return _page(request, "tickets.html", {
        "title": "Tickets", "groups": webview.by_priority(found[:PAGE_SIZE], now),
        "filters": filters, "status_options": ("open", "all", *statuses),
        "priorities": [p.value for p in Priority], "refresh_page": True,
        "next_page": f"{following.path}?{following.query}" if more else None,
        "count": min(len(found), PAGE_SIZE)})


@router.get("/tickets/{number}")
def ticket_detail(request: Request, number: str) -> Response:
    if denied := _denied(request):
        return denied
    return _ticket_page(request, number)


def _ticket_page(request: Request, number: str, error: str = "",
                 status: int = 200) -> Response:
    store = request.app.state.store
    ticket = store.get_ticket(number)
    if ticket is None:
        return _problem(request, 404, "No such ticket",
                        f"There is no ticket {number}. The ticket list is at /tickets.")
    now = _now(request)
    related = {name: store.get_ticket_by_id(ident) if ident is not None else None
               for name, ident in (("parent", ticket.parent_id),
                                   ("previous", ticket.previous_id))}
    children = store.children(ticket.id) if ticket.is_group else []
    child_of_host = {child.host: child for child in children}
    hosts = [*ticket.hosts, *(h for h in child_of_host if h not in ticket.hosts)]
    return _page(request, "ticket.html", {
        "title": f"{ticket.number} {ticket.title}", "ticket": ticket, "now": now,
        "row": webview.ticket_row(ticket, now), "parent": related["parent"],
        "previous": related["previous"], "children": children,
        "group_hosts": [(h, child_of_host.get(h)) for h in hosts],
        "labels": webview.ordered_labels(ticket.labels),
        "diagnostics": webview.diagnostics_sections(ticket.diagnostics),
        "measurements": webview.pretty_json(ticket.measurements) if ticket.measurements
        else None,
        "runbook_link": ticket.runbook if ticket.runbook and safe_url(ticket.runbook)
        else None,
        "helpdesks": _helpdesks(store, ticket.id),
        "chart": ticket_chart.available(store, ticket, now),
        "timeline": store.timeline(ticket.id), "refresh_page": False,
        "actions": webview.actions_for(ticket), "action_error": error,
        "silence_hours": SILENCE_HOURS}, status)


@router.post("/tickets/{number}/action")
async def ticket_action(request: Request, number: str) -> Response:
    """One operator action from the ticket page's forms, then back to the page."""
    if denied := _denied(request):
        return denied
    form = await _form(request)
    session: Session | None = getattr(request.state, "session", None)
    if form is None or _foreign_origin(request) or (
            session is not None and not Sessions.check_csrf(session, form.get("csrf"))):
        return _problem(request, 403, "Refused",
                        "This form did not come from Patrol's own ticket page (or the "
                        "page is older than your session); reload the ticket and retry.")
    action = form.get("action", "")
    if action not in ACTIONS:
        return _ticket_page(request, number, f"Unknown action {action[:40]!r}.", 400)
    operator: str = request.state.operator
    text = form.get("text", "").strip()[:20000]
    try:
        if action == "silence":
            _silence(request, number, operator, form)
        else:
            act(request.app.state.engine, number, action, operator, text,
                force=form.get("force") == "yes")
    except LookupError:
        return _problem(request, 404, "No such ticket",
                        f"There is no ticket {number}. The ticket list is at /tickets.")
    except ValueError as exc:
        return _ticket_page(request, number, str(exc), 400)
    except TicketRefused as exc:
        return _ticket_page(request, number, str(exc).replace(
            "pass force=true", "tick \"although it still fails\""), 409)
    response = RedirectResponse(f"/tickets/{quote(number)}#timeline", status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response


def _silence(request: Request, number: str, operator: str, form: dict[str, str]) -> None:
    """A maintenance window from now for the ticket's host (or host and check), and a
    timeline entry saying who silenced what for how long."""
    from patrol.collector.model import TimelineEntry
    from patrol.collector.policy.maintenance import MaintenanceWindow

    store = request.app.state.store
    ticket = store.get_ticket(number)
    if ticket is None:
        raise LookupError(number)
    raw = form.get("hours", "")
    hours = int(raw) if raw.isdigit() else 0
    if not SILENCE_HOURS[0] <= hours <= SILENCE_HOURS[1]:
        raise ValueError(f"Silence for {SILENCE_HOURS[0]} to {SILENCE_HOURS[1]} hours.")
    scope = form.get("scope", "host")
    if scope not in ("host", "check"):
        raise ValueError("Silence the host or the check.")
    now = _now(request)
    what = ticket.host if scope == "host" else f"{ticket.check} on {ticket.host}"
    reason = form.get("text", "").strip()[:2000]
    window = MaintenanceWindow.model_validate({
        "name": f"silenced from {ticket.number} by {operator}", "reason": reason,
        "start": datetime.fromtimestamp(now, UTC), "end": datetime.fromtimestamp(
            now + hours * 3600, UTC),
        "hosts": [glob.escape(ticket.host)],
        "checks": [glob.escape(ticket.check)] if scope == "check" else []})
    with store.transaction() as tx:
        window_id = tx.add_maintenance({**window.model_dump(
            mode="json", by_alias=True, exclude_none=True), "origin": "web"})
        tx.add_timeline(ticket.id, TimelineEntry(
            now, "silenced", f"silenced {what} for {hours}h (maintenance window "
            f"{window_id}){': ' + reason if reason else ''}", operator,
            {"window": window_id, "scope": scope, "hours": hours}))
    engine = getattr(request.app.state, "engine", None)
    if engine is not None:
        engine.invalidate_windows()


@router.get("/tickets/{number}/chart.png")
def ticket_chart_png(request: Request, number: str) -> Response:
    """The breaching measurement around the breach (collector/tickets/chart.py)."""
    if denied := _denied(request):
        return denied
    store = request.app.state.store
    ticket = store.get_ticket(number)
    png = ticket_chart.chart_png(store, ticket, _now(request)) if ticket else None
    return _png(request, png, f"ticket {number}")


def _png(request: Request, png: bytes | None, what: str) -> Response:
    """A chart, or the page saying there is no history to draw one from."""
    if png is None:
        return _problem(request, 404, "No chart",
                        f"Patrol holds no measurement history for {what}.")
    return Response(png, media_type="image/png",
                    headers={**SECURITY_HEADERS, "Cache-Control": "private, max-age=60"})


def _helpdesks(store: TicketStore, ticket_id: int) -> list[dict[str, Any]]:
    """Where the ticket lives in helpdesks: the external ticket (a link when its URL is
    safe), or what is still queued or was refused for it."""
    out: dict[str, dict[str, Any]] = {}
    for link in store.links(ticket_id):
        out[link["helpdesk"]] = {
            "helpdesk": link["helpdesk"], "external_id": link["external_id"],
            "url": link["url"] if link["url"] and safe_url(link["url"]) else None,
            "state": link["remote_state"], "error": link["error"], "pending": 0}
    for row in store.dispatch_rows(ticket_id):
        entry = out.setdefault(row["helpdesk"], {"helpdesk": row["helpdesk"],
                                                 "external_id": None, "url": None,
                                                 "state": None, "error": None,
                                                 "pending": 0})
        if row["state"] == "failed":
            entry["error"] = row["last_error"]
        elif row["state"] == "pending":
            entry["pending"] += 1
    return sorted(out.values(), key=lambda e: e["helpdesk"])


@router.get("/hosts")
def hosts(request: Request) -> Response:
    """The fleet inventory (:mod:`collector.ingest.inventory`) as a table."""
    if denied := _denied(request):
        return denied
    from patrol.collector.ingest.inventory import hosts_inventory

    now = _now(request)
    inventory = hosts_inventory(request.app.state.store, now)
    return _page(request, "hosts.html", {
        "title": "Hosts", "inventory": inventory, "now": now, "refresh_page": True,
        "differing": sum(1 for h in inventory["hosts"] if h["version_differs"])})


# -- reports -----------------------------------------------------------------------------

# A report is one self-contained file: its CSS is inline and its charts are data: URIs,
# which the other pages' policy forbids. Scripts stay forbidden.
REPORT_SECURITY_HEADERS = {
    **SECURITY_HEADERS,
    "Content-Security-Policy": ("default-src 'none'; style-src 'unsafe-inline'; "
                                "img-src data:; form-action 'none'; base-uri 'none'; "
                                "frame-ancestors 'none'"),
}


@router.get("/hosts/{host}")
def host_page(request: Request, host: str) -> Response:
    """One host: its checks' states, each with the last week's chart."""
    if denied := _denied(request):
        return denied
    store = request.app.state.store
    found = store.host(host)
    if found is None:
        return _problem(request, 404, "No such host",
                        f"No agent named {host} has reported. The fleet is at /.")
    now = _now(request)
    charted = {(r["check_name"]) for r in store.rollups(
        "hour", now - ticket_chart.HOST_DAYS * 86400.0, now + 3600.0, host=host)}
    return _page(request, "host.html", {
        "title": host, "host": found, "now": now, "charted": charted,
        "checks": store.check_states(host), "refresh_page": False})


@router.get("/hosts/{host}/checks/{check}/chart.png")
def host_check_chart(request: Request, host: str, check: str) -> Response:
    if denied := _denied(request):
        return denied
    png = ticket_chart.check_png(request.app.state.store, host, check, _now(request))
    return _png(request, png, f"{check} on {host}")


@router.get("/knowledge")
def knowledge_page(request: Request) -> Response:
    """Per check type: the first actions (the operator's file, then the built-in ones)
    and how people fixed past tickets (the knowledge archive)."""
    if denied := _denied(request):
        return denied
    from patrol.collector.tickets.knowledge import all_first_actions, load_operator_knowledge
    from patrol.contract.yamlsource import ConfigError

    path = getattr(request.app.state, "knowledge_file", None)
    problem = None
    try:
        operator = load_operator_knowledge(path) if path else None
    except ConfigError as exc:
        operator, problem = None, str(exc)
    resolutions: dict[str, list[dict[str, Any]]] = {}
    for row in request.app.state.store.resolutions(limit=500):
        resolutions.setdefault(row["check_type"], []).append(row)
    actions = all_first_actions(operator)
    return _page(request, "knowledge.html", {
        "title": "Knowledge", "actions": actions, "resolutions": resolutions,
        "types": sorted({*actions, *resolutions}), "problem": problem, "file": path,
        "refresh_page": False})


@router.get("/reports")
def reports(request: Request) -> Response:
    if denied := _denied(request):
        return denied
    from patrol.collector.reports.period import day_of

    today = day_of(_now(request))
    return _page(request, "reports.html", {
        "title": "Reports", "refresh_page": False, "today": today.isoformat(),
        "yesterday": date.fromordinal(today.toordinal() - 1).isoformat(),
        "week_start": date.fromordinal(today.toordinal() - 6).isoformat(),
        "archived": _archived_reports(request)})


def _archive_folders(request: Request) -> list[Path]:
    """The folders the ``reports:`` schedules write to (one, or one per report)."""
    settings = getattr(request.app.state, "reports", None)
    if settings is None:
        return []
    folders = [settings.archive_of(kind) for kind in settings.scheduled()]
    return list(dict.fromkeys(f for f in [settings.archive, *folders] if f is not None))


def _archived_reports(request: Request) -> list[Any]:
    from patrol.collector.reports import archive

    mailed = request.app.state.store.report_mailings
    entries = {e.file: e for folder in _archive_folders(request)
               for e in archive.listing(folder, mailed)}
    return sorted(entries.values(), key=lambda e: (e.last, e.kind, e.first), reverse=True)


@router.get("/reports/archive/{name}")
def archived_report(request: Request, name: str) -> Response:
    """An archived report, as it was made (and mailed)."""
    if denied := _denied(request):
        return denied
    from patrol.collector.reports import archive

    # Only a name the listing shows is served: no path is taken from the URL.
    for folder in _archive_folders(request):
        if any(entry.file == name for entry in archive.listing(folder)):
            return Response((folder / name).read_bytes(),
                            media_type="text/html; charset=utf-8",
                            headers=REPORT_SECURITY_HEADERS)
    return _problem(request, 404, "No such archived report",
                    "The archived reports are listed at /reports.")


@router.get("/reports/{kind}")
def report(request: Request, kind: str, day: str = Query("", alias="date"),
           first: str = Query("", alias="from"), last: str = Query("", alias="to"),
           output: str = Query("html", alias="format")) -> Response:
    """Today's (or ``?date=``) daily report, or the retrospective ``?from=&to=``;
    ``?format=json`` for the figures as ``patrol report --format json`` writes them."""
    if denied := _denied(request):
        return denied
    from patrol.collector.reports import html, make
    from patrol.collector.reports.period import day_of, parse_day

    if kind not in ("daily", "retro"):
        return _problem(request, 404, "No such report",
                        "There are two reports: /reports/daily and /reports/retro.")
    now = _now(request)
    engine = getattr(request.app.state, "engine", None)
    store = request.app.state.store
    try:
        if kind == "daily":
            built = make.daily_report(store, parse_day(day) if day else day_of(now), now,
                                      engine.policy if engine is not None else None)
        else:
            end = parse_day(last) if last else day_of(now)
            start = parse_day(first) if first else date.fromordinal(end.toordinal() - 6)
            built = make.retro_report(store, start, end, now)
    except ValueError as exc:
        return _problem(request, 400, "Bad report period", str(exc))
    if output == "json":
        return Response(html.to_json(built), media_type="application/json",
                        headers=SECURITY_HEADERS)
    try:
        page = html.render(built, getattr(engine, "language", "en"))
    except ModuleNotFoundError as exc:
        return _problem(request, 503, "Reports are not installed",
                        f"Drawing the report's charts needs {exc.name}; install the "
                        "collector with its reports extra:", "pip install "
                        "'patrol-inspect[reports]'")
    return Response(page, media_type="text/html; charset=utf-8",
                    headers=REPORT_SECURITY_HEADERS)
