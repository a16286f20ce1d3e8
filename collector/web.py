"""The collector's web pages: fleet grid, open tickets with SLA clocks, ticket detail,
and the reports (:mod:`collector.reports`, served as the self-contained HTML they are).

Server-rendered HTML (Jinja2, autoescaped) and one small stylesheet; no JavaScript,
so the pages work in any browser and in ``chromium --dump-dom``. The grid and the
ticket list refresh themselves every 30 s with ``<meta http-equiv="refresh">``.

The app provides ``app.state.store`` (a :class:`collector.store.TicketStore`),
``app.state.tokens`` (:class:`collector.auth.TokenBook`) and optionally
``app.state.clock`` (epoch seconds; ``time.time`` if unset).

Authentication: an operator token, as a bearer header or the ``patrol_token`` cookie.
``/login?token=...&next=/path`` (the link ``patrol up`` prints) sets that cookie
(HttpOnly, SameSite=Lax so a ticket link from mail or a helpdesk works; Secure over
https) and redirects; ``next`` must be a path
on this site, so the login link cannot be used to bounce a browser elsewhere. Pages
answer 401/403 with an HTML page explaining how to log in, not JSON. Every page sends
a Content-Security-Policy that forbids scripts, so even a rendering bug that let agent
text through as markup could not run code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from collector import auth, ticket_chart, webview
from collector.model import Priority, TicketStatus
from ticketing_bridge.markdown_tree import safe_url
from ticketing_bridge.markup import to_html

HERE = Path(__file__).resolve().parent
REFRESH_SECONDS = 30
LOGIN_HINT = "/login?token=YOUR-OPERATOR-TOKEN"
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
    (:func:`ticketing_bridge.markup.to_html`, which escapes every character and links only
    http(s)/mailto URLs), so the page shows what a helpdesk shows."""
    return Markup(to_html(text))


templates.env.filters["markdown"] = render_markdown
templates.env.globals.update(when=webview.when, ago=webview.ago, refresh=REFRESH_SECONDS)

router = APIRouter(include_in_schema=False)


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def _problem(request: Request, status: int, title: str, text: str,
             hint: str = "") -> Response:
    return _page(request, "problem.html", {"title": title, "text": text, "status": status,
                                           "hint": hint, "refresh_page": False}, status)


def _denied(request: Request) -> Response | None:
    """None if the request carries an operator token, else the 401/403 page."""
    try:
        auth.require(request, auth.OPERATOR)
    except HTTPException as exc:
        if exc.status_code == 401:
            return _problem(request, 401, "Log in to Patrol",
                            "This page needs an operator token. Open the login link that "
                            "patrol up prints, or this address with your operator token "
                            "from the collector's configuration; it sets a cookie, so you "
                            "log in once per browser session:", LOGIN_HINT)
        return _problem(request, 403, "Not an operator token",
                        "The token you presented is not an operator token, so it cannot "
                        "open the web pages. Log in with an operator token:", LOGIN_HINT)
    return None


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
def login(request: Request, token: str = "",
          next_path: str = Query("/", alias="next")) -> Response:
    book: auth.TokenBook = request.app.state.tokens
    kind = book.kind_of(token)
    if kind is None:
        what = "That token is wrong" if token else "No token was given"
        return _problem(request, 401, "Wrong or missing token",
                        f"{what}, so you are not logged in. Use the operator token from "
                        "the collector's configuration (patrol up prints a ready login "
                        "link):", LOGIN_HINT)
    if kind != auth.OPERATOR:
        return _problem(request, 403, "Not an operator token",
                        f"That is an {kind} token; only an operator token can log in to "
                        "the web pages:", LOGIN_HINT)
    response = RedirectResponse(local_path(next_path), status_code=303)
    response.set_cookie(auth.COOKIE, token, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", path="/")
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
        "timeline": store.timeline(ticket.id), "refresh_page": False})


@router.get("/tickets/{number}/chart.png")
def ticket_chart_png(request: Request, number: str) -> Response:
    """The breaching measurement around the breach (collector/ticket_chart.py)."""
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


def _helpdesks(store: Any, ticket_id: int) -> list[dict[str, Any]]:
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
    from collector.knowledge import all_first_actions, load_operator_knowledge
    from collector.yamlsource import ConfigError

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
    from collector.reports.period import day_of

    today = day_of(_now(request))
    return _page(request, "reports.html", {
        "title": "Reports", "refresh_page": False, "today": today.isoformat(),
        "yesterday": date.fromordinal(today.toordinal() - 1).isoformat(),
        "week_start": date.fromordinal(today.toordinal() - 6).isoformat()})


@router.get("/reports/{kind}")
def report(request: Request, kind: str, day: str = Query("", alias="date"),
           first: str = Query("", alias="from"), last: str = Query("", alias="to"),
           output: str = Query("html", alias="format")) -> Response:
    """Today's (or ``?date=``) daily report, or the retrospective ``?from=&to=``;
    ``?format=json`` for the figures as ``patrol report --format json`` writes them."""
    if denied := _denied(request):
        return denied
    from collector.reports import html, make
    from collector.reports.period import day_of, parse_day

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
