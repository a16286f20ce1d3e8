"""The ``patrol`` command line.

``patrol agent``     serve checks on a schedule with /metrics and the status API
``patrol check``     run checks once; exit code is the worst status (0-3)
``patrol validate``  report every config problem at once, as FILE:LINE: ...
``patrol report``    the daily inspection report or a retrospective (HTML or JSON)
``patrol init``      a commented starting config for this host (agent or collector)
``patrol install-units``  the systemd units and service user (deploy/systemd)
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from difflib import get_close_matches
from typing import Any

from patrol.agent.validation import ValidationFailed
from patrol.contract.yamlsource import ConfigError


class _Version(argparse.Action):
    """``--version``, reading the package metadata only when asked: importing
    importlib.metadata costs ``patrol agent`` ~20 ms before its validating child starts."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str = "show the version and exit",
                 ) -> None:
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        from patrol.agent.version import AGENT_VERSION

        print(f"patrol {AGENT_VERSION}")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="patrol", description="Proactive inspection agent.")
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    agent = sub.add_parser("agent", help="run the agent: scheduled checks, /metrics, API")
    agent.add_argument("--config", "-c", required=True, help="agent YAML file")
    agent.add_argument("--log-level", default="INFO",
                       choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    check = sub.add_parser("check", help="run the checks once and print the results")
    check.add_argument("--config", "-c", required=True, help="agent YAML file")
    check.add_argument("--only", nargs="+", metavar="NAME", help="run only these checks")
    check.add_argument("--json", action="store_true",
                       help="print results with measurements and diagnostics as JSON")

    validate = sub.add_parser("validate", help="check config files and report every problem")
    validate.add_argument("files", nargs="+", metavar="FILE")

    collector = sub.add_parser("collector", help="run the collector: events in, tickets out")
    collector.add_argument("--config", "-c", required=True, help="collector YAML file")
    collector.add_argument("--log-level", default="INFO",
                           choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    up = sub.add_parser("up", help="run an agent and a collector together on this host")
    up.add_argument("--config", "-c", default="configs/agent.yaml", help="agent YAML file")
    up.add_argument("--collector-config", default="configs/collector.yaml",
                    help="collector YAML file")
    up.add_argument("--log-level", default="INFO",
                    choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    units = sub.add_parser("install-units", help="install the systemd units and service user")
    units.add_argument("--root", default="/", help="install below this directory (default /)")
    units.add_argument("--patrol", help="ExecStart command (default: this patrol)")

    init = sub.add_parser("init", help="write a commented starting config for this host")
    init.add_argument("role", choices=["agent", "collector"])
    init.add_argument("--output", "-o", help="file to write (default: print it)")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")

    enroll = sub.add_parser("enroll", help="get this agent its own collector credential")
    enroll.add_argument("--config", "-c", required=True, help="agent YAML file")
    enroll.add_argument("--url", help="collector URL (default: the config's first collector)")
    enroll.add_argument("--token", help="operator token (default $PATROL_OPERATOR_TOKEN)")
    enroll.add_argument("--also", action="append", metavar="GLOB",
                        help="more host names (globs) this agent may report")

    from patrol.collector.access.credentials_cli import add_arguments as add_credential_arguments
    from patrol.collector.client import add_arguments
    from patrol.collector.reports.cli import add_arguments as add_report_arguments

    add_arguments(sub)
    add_credential_arguments(sub)
    add_report_arguments(sub)
    return parser


def _validate(files: list[str]) -> int:
    """Agent and collector configs alike; a file with a ``collector:`` block is the
    collector's."""
    from patrol.agent.config import load_config
    from patrol.collector.config import is_collector_config, load_collector_config

    failed = False
    for file in files:
        try:
            if is_collector_config(file):
                load_collector_config(file)
                print(f"{file}: OK (collector)")
                continue
            config = load_config(file)
        except ConfigError as exc:
            failed = True
            for problem in exc.problems:
                print(problem)
            continue
        for warning in config.warnings:
            print(f"warning: {warning}")
        print(f"{file}: OK ({len(config.checks)} checks)")
    return 1 if failed else 0


def _load_or_exit(path: str, load: Callable[[str], Any] | None = None) -> Any:
    """The validated agent config at ``path``, or its problems on stderr and exit 2."""
    if load is None:
        from patrol.agent.config import load_config

        load = load_config
    try:
        return load(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"patrol: {path} has {len(exc.problems)} problem(s); nothing was started",
              file=sys.stderr)
        raise SystemExit(2) from None
    except ValidationFailed as exc:
        print(f"patrol: cannot validate {path}: {exc}; nothing was started", file=sys.stderr)
        raise SystemExit(2) from None


def _collector(path: str) -> int:
    """``patrol collector``: serve until SIGTERM/SIGINT."""
    import signal
    import threading

    from patrol.collector.config import load_collector_config
    from patrol.collector.service import CollectorService
    from patrol.collector.store import StoreError

    try:
        config = load_collector_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    try:
        service = CollectorService(config)
    except StoreError as exc:
        print(f"patrol: cannot open the store: {exc}; fix collector.store in {path}",
              file=sys.stderr)
        return 2
    stop, reload = threading.Event(), threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: reload.set())
    try:
        service.start()
    except OSError as exc:
        print(f"patrol: {exc}; set collector.listen to a free HOST:PORT", file=sys.stderr)
        return 2
    while not stop.wait(0.2):
        if reload.is_set():
            reload.clear()
            _reload_collector(service, path)
    service.stop()
    return 0


def _reload_collector(service: Any, path: str) -> None:
    """``SIGHUP``: re-read the config; one with problems is logged and the running
    config stays in force, as the agent does (a typo must not stop ticketing)."""
    from patrol.collector.config import load_collector_config

    log = logging.getLogger("patrol.collector")
    try:
        config = load_collector_config(path)
    except ConfigError as exc:
        log.error("reload refused, the running config stays in force:\n%s",
                  "\n".join(str(p) for p in exc.problems))
        return
    try:
        notes = service.reload(config)
    except Exception:  # e.g. a helpdesk adapter that cannot start: keep serving
        log.exception("reload of %s failed; the running config stays in force", path)
        return
    for note in notes:
        log.warning("%s", note)
    log.info("reloaded %s", path)


def _start_failure(exc: OSError, listen: str, state_dir: object) -> str:
    """What stopped the agent from starting, and which setting fixes it: an error
    about a file (a read-only or full state directory) is not a port problem."""
    if exc.filename is not None:
        return (f"patrol: cannot write {exc.filename}: {exc.strerror}; make agent.state_dir "
                f"({state_dir}) writable for this user or point it elsewhere")
    return (f"patrol: cannot serve on {listen}: {exc.strerror}; "
            "set agent.listen to a free HOST:PORT")


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (``patrol tickets show N | head -1``): that is how a
        # pipe ends, not an error. Point stdout at /dev/null so the interpreter's
        # final flush does not raise again.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141  # as a tool killed by SIGPIPE: the output was not all read


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "validate":
        return _validate(args.files)
    if args.command == "check":
        from patrol.agent import oneshot

        config = _load_or_exit(args.config)
        for warning in config.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        known = [c.config.name for c in config.checks]
        for name in args.only or []:
            if name not in known:
                hint = get_close_matches(name, known, n=1)
                did = f"; did you mean '{hint[0]}'?" if hint else ""
                print(f"patrol: no check named '{name}' in {args.config}{did}", file=sys.stderr)
                return 3
        return oneshot.main(config, args.only, args.json)
    if args.command == "install-units":
        from patrol import install_units as units

        return units.main(args.root, args.patrol)
    if args.command == "init":
        from patrol import starter_config

        return starter_config.main(args.role, args.output, args.force)
    if args.command == "tickets":
        from patrol.collector import client

        return client.main(args)
    if args.command == "enroll":
        from patrol import enroll

        return enroll.main(_load_or_exit(args.config), args.url, args.token, args.also)
    if args.command in ("agents", "operators"):
        from patrol.collector.access import credentials_cli

        return credentials_cli.main(args)
    if args.command == "report":
        from patrol.collector.reports import cli as report_cli

        return report_cli.main(args)
    if args.command in ("agent", "collector", "up"):
        logging.basicConfig(level=args.log_level, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    if args.command == "collector":
        return _collector(args.config)
    if args.command == "up":
        from patrol import up

        try:
            return up.main(args.config, args.collector_config)
        except ConfigError as exc:
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"patrol: cannot start: {exc}; is another Patrol already running?",
                  file=sys.stderr)
            return 2
    if args.command == "agent":
        from patrol.agent.validation import InChild

        # Validated in a child (the agent never imports pydantic), which starts first so
        # its start-up overlaps with this interpreter's imports of the agent.
        validator = InChild()
        pending = validator.start_load(args.config)
        from patrol.agent.agent import Agent, warm_up

        warm_up()

        config = _load_or_exit(args.config, lambda _: validator.finish_load(pending))
        try:
            return Agent(args.config, config, validator=validator).serve_forever()
        except OSError as exc:
            print(_start_failure(exc, config.agent.listen, config.agent.state_dir),
                  file=sys.stderr)
            return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
