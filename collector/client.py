"""``patrol tickets``: the ticket API from a terminal.

Finds the collector and the operator token from ``--url``/``--token``, else
``PATROL_COLLECTOR_URL``/``PATROL_OPERATOR_TOKEN``, else the ``up.json`` that
``patrol up`` writes into its state folder, so after ``patrol up`` the command
needs no flags. That file is looked for (:func:`find_up_file`) in ``--state-dir``,
else ``$PATROL_STATE_DIR``, else ``state/`` in the working directory or any folder
above it (so it works from anywhere inside the folder ``patrol up`` runs in, as git
finds ``.git``), else the packaged default ``/var/lib/patrol``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:9732"
UP_FILE = Path("state") / "up.json"
SYSTEM_STATE_DIR = Path("/var/lib/patrol")
WHERE_UP_IS_LOOKED_FOR = ("--state-dir, $PATROL_STATE_DIR, state/up.json in this folder or "
                          f"one above it, {SYSTEM_STATE_DIR}/up.json")


def up_file_candidates(cwd: Path, environ: Mapping[str, str],
                       state_dir: str | None = None) -> list[Path]:
    """Where ``patrol up``'s state may be, in the order it is looked for."""
    chosen = state_dir or environ.get("PATROL_STATE_DIR")
    if chosen:
        return [Path(chosen) / "up.json"]  # named explicitly: nothing else is guessed
    return [folder / UP_FILE for folder in (cwd, *cwd.parents)] + \
        [SYSTEM_STATE_DIR / "up.json"]


def find_up_file(cwd: Path, environ: Mapping[str, str],
                 state_dir: str | None = None) -> Path | None:
    return next((p for p in up_file_candidates(cwd, environ, state_dir) if p.is_file()),
                None)


def _saved(state_dir: str | None) -> dict[str, Any]:
    up_file = find_up_file(Path.cwd(), os.environ, state_dir)
    if up_file is None:
        return {}
    try:
        saved = json.loads(up_file.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"patrol: cannot read {up_file}: {exc}") from None
    return saved if isinstance(saved, dict) else {}


def _connection(url: str | None, token: str | None,
                state_dir: str | None = None) -> tuple[str, str | None]:
    saved = {} if url and token else _saved(state_dir)
    url = url or os.environ.get("PATROL_COLLECTOR_URL") or saved.get("url") or DEFAULT_URL
    token = token or os.environ.get("PATROL_OPERATOR_TOKEN") or saved.get("operator_token")
    return url.rstrip("/"), token


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M")


def _request(method: str, url: str, token: str | None, **kwargs: Any) -> Any:
    import requests  # here, not at the top: every `patrol` command builds this parser

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = requests.request(method, url, headers=headers, timeout=10, **kwargs)
    except requests.ConnectionError:
        raise SystemExit(f"patrol: no collector at {url.split('/api/')[0]}; start one with "
                         "'patrol up' or 'patrol collector', or pass --url") from None
    if response.status_code >= 400:
        try:
            detail = response.json().get("error", response.text)
        except ValueError:
            detail = response.text
        hint = ""
        if response.status_code == 401 and not token:
            hint = (f"; no operator token found: pass --token, set PATROL_OPERATOR_TOKEN, "
                    f"or run where patrol up keeps its state ({WHERE_UP_IS_LOOKED_FOR})")
        raise SystemExit(f"patrol: {response.status_code}: {detail}{hint}")
    return response.json()


def main(args: Any) -> int:
    url, token = _connection(args.url, args.token, getattr(args, "state_dir", None))
    api = f"{url}/api/v1/tickets"
    if args.action == "list":
        params = {"status": args.status or ["new", "in_progress", "pending", "resolved"]}
        tickets = _request("GET", api, token, params=params)["tickets"]
        print(f"{'NUMBER':<15} {'PRI':<3} {'STATUS':<11} {'HOST':<16} {'RESPOND BY':<16} TITLE")
        for t in tickets:
            print(f"{t['number']:<15} {t['priority']:<3} {t['status']:<11} {t['host'][:16]:<16} "
                  f"{_when(t['respond_by']):<16} {t['title']}")
        if not tickets:
            print("(no tickets)")
        return 0
    if args.action == "show":
        ticket = _request("GET", f"{api}/{args.number}", token)
        print(f"{ticket['number']} {ticket['priority']} {ticket['status']}: {ticket['title']}")
        print(f"respond by {_when(ticket['respond_by'])} UTC, resolve by "
              f"{_when(ticket['resolve_by'])} UTC\n")
        print(ticket["body"])
        print("\nTimeline:")
        for entry in ticket["timeline"]:
            print(f"  {_when(entry['at'])}  {entry['kind']:<20} {entry['author']}: "
                  f"{entry['text']}")
        return 0
    action = {"ack": "acknowledge", "close": "close", "resolve": "resolve",
              "comment": "comment"}[args.action]
    body = {"text": args.text or "", "author": args.author or os.environ.get("USER", "operator"),
            "force": bool(getattr(args, "force", False))}
    ticket = _request("POST", f"{api}/{args.number}/{action}", token, json=body)
    print(f"{ticket['number']}: {ticket['status']}")
    return 0


def add_arguments(sub: Any) -> None:
    tickets = sub.add_parser("tickets", help="list, show and act on the collector's tickets")
    tickets.add_argument("--url", help=f"collector URL (default {DEFAULT_URL} or patrol up's)")
    tickets.add_argument("--token", help="operator token (default $PATROL_OPERATOR_TOKEN)")
    tickets.add_argument("--state-dir", help="patrol up's state folder, holding up.json "
                         "(default $PATROL_STATE_DIR, else ./state or the nearest above)")
    actions = tickets.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="open and recently resolved tickets")
    listing.add_argument("--status", action="append",
                         choices=["new", "in_progress", "pending", "resolved", "closed"])
    actions.add_parser("show", help="one ticket with its body and timeline").add_argument(
        "number")
    for name, text in (("ack", "acknowledge"), ("comment", "comment on"),
                       ("resolve", "resolve"), ("close", "close")):
        action = actions.add_parser(name, help=f"{text} a ticket")
        action.add_argument("number")
        action.add_argument("--text", "-m", default="")
        action.add_argument("--author")
        if name in ("resolve", "close"):
            action.add_argument("--force", action="store_true",
                                help="even though the check still fails (won't fix)")


if __name__ == "__main__":
    sys.exit(main(None))
