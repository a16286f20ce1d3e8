"""``patrol agents`` and ``patrol operators``: issue, list, rotate and revoke
credentials through the collector's operator API (``/api/v1/credentials``), finding the
collector and the operator token as ``patrol tickets`` does.

An issued token is printed once, with the agent config lines that use it; the
collector keeps only its hash.
"""

from __future__ import annotations

from typing import Any

from patrol.collector.client import DEFAULT_URL, _connection, _request, _when

KINDS = {"agents": "agent", "operators": "operator"}


def main(args: Any) -> int:
    url, token = _connection(args.url, args.token)
    api = f"{url}/api/v1/credentials"
    kind = KINDS[args.command]
    if args.action == "issue":
        for name in args.names:
            body = {"kind": kind, "name": name, "hosts": [name, *(args.also or [])]
                    if kind == "agent" else []}
            issued = _request("POST", api, token, json=body)
            _print_issued(issued, url)
        return 0
    if args.action == "list":
        rows = [c for c in _request("GET", api, token)["credentials"] if c["kind"] == kind]
        print(f"{'ID':>4}  {'NAME':<24} {'STATE':<8} {'CREATED':<16} {'EXPIRES':<16} HOSTS")
        for c in rows:
            state = "live" if c["live"] else "revoked" if c["revoked_at"] else "expired"
            print(f"{c['id']:>4}  {c['name'][:24]:<24} {state:<8} {_when(c['created_at']):<16} "
                  f"{_when(c['expires_at']):<16} {', '.join(c['hosts']) or '-'}")
        if not rows:
            print(f"(no {kind} credentials)")
        return 0
    if args.action == "rotate":
        done = _request("POST", f"{api}/{kind}/{args.name}/rotate", token,
                        json={"grace_seconds": args.grace})
        _print_issued(done, url)
        print(f"  the previous token keeps working until {_when(done['previous_valid_until'])}"
              " UTC")
        return 0
    done = _request("POST", f"{api}/{kind}/{args.name}/revoke", token)
    print(f"revoked {done['revoked']} token(s) of {kind} {done['name']}")
    return 0


def _print_issued(issued: dict[str, Any], url: str) -> None:
    print(f"{issued['kind']} {issued['name']}: {issued['token']}")
    if issued["kind"] == "agent":
        print(f"  may report: {', '.join(issued['hosts'])}")
        print("  agent config:\n    collector:\n"
              f"      url: {url}\n      token: {issued['token']}")
    print("  (shown once; the collector keeps only its hash)")


def add_arguments(sub: Any) -> None:
    for command, kind in KINDS.items():
        parser = sub.add_parser(command, help=f"issue, list, rotate and revoke {kind} "
                                "credentials")
        parser.add_argument("--url", help=f"collector URL (default {DEFAULT_URL} or "
                            "patrol up's)")
        parser.add_argument("--token", help="operator token (default "
                            "$PATROL_OPERATOR_TOKEN)")
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        issue = actions.add_parser("issue", help=f"a new credential per {kind} named")
        issue.add_argument("names", nargs="+", metavar="HOST" if kind == "agent" else "NAME")
        if kind == "agent":
            issue.add_argument("--also", action="append", metavar="GLOB",
                               help="more host names (globs) the agent may report")
        actions.add_parser("list", help="every credential, without its token")
        rotate = actions.add_parser("rotate", help="a new token; the old one keeps "
                                    "working for --grace seconds")
        rotate.add_argument("name")
        rotate.add_argument("--grace", type=float, default=86400.0, metavar="SECONDS")
        actions.add_parser("revoke", help="end every token of the name now").add_argument(
            "name")
