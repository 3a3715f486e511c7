"""The `faultbed` command line: subcommands, one clear line and exit 3 for user errors."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from faultbed.checkers.result import EXIT_ERROR
from faultbed.errors import FaultbedError

SUBCOMMANDS = ("run", "check", "replay", "report", "list", "gc", "serve")


class _Parser(argparse.ArgumentParser):
    """argparse that exits 3 (bad input) instead of 2, which means 'unknown' here."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_ERROR, f"faultbed: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="faultbed", description="Jepsen-style fault injection: run, check, replay.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"faultbed.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"faultbed.commands.{name}":
                raise
            continue
        command = sub.add_parser(name, help=module.HELP, description=module.HELP,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(command)
        command.set_defaults(execute=module.execute)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return int(args.execute(args))
    except FaultbedError as exc:
        print(f"faultbed: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("faultbed: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
