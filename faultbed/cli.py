"""The `faultbed` command line: subcommands and the exit-code contract, enforced here at the edge.

User errors (FaultbedError) are one line and exit 3; anything else is a bug in
faultbed: one line, exit 255, the traceback in a file. A crash is never exit 1.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from faultbed import __version__
from faultbed.errors import FaultbedError

# Start-up time: `faultbed --version` and `faultbed check --help` import little more than argparse;
# logging, the crash report and each command's modules are imported when they are used.
EXIT_ERROR = 3  # checkers/result.py's, which tests/test_cli.py holds equal

MAX_MESSAGE = 300
SUBCOMMANDS = ("run", "check", "replay", "shrink", "hunt", "report", "list", "gc", "serve", "store")

EXIT_CODES = """\
exit codes (every command):
  0    valid: every checker passed
  1    anomaly: a checker found the system under test misbehaving (INVALID)
  2    unknown: inconclusive (a checker timed out, no operation completed)
  3    error: bad input or setup failure (one line on stderr says which)
  130  interrupted (Ctrl-C or SIGTERM); everything the run started is stopped
  255  internal error: a bug in faultbed (one line on stderr names it and the
       file holding the traceback: in the run directory when there is one)
Over several histories or checkers the worst wins: error, then anomaly, then unknown."""


class _Parser(argparse.ArgumentParser):
    """argparse that exits 3 (bad input) instead of 2, which means 'unknown' here."""

    def error(self, message: str) -> None:  # type: ignore[override]
        if len(message) > MAX_MESSAGE:  # a 5,000-digit --nodes is still one readable line
            message = message[:MAX_MESSAGE] + "..."
        self.exit(EXIT_ERROR, f"faultbed: {message}\n")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given the arguments, it imports only the command they name (start-up
    time: `faultbed run` alone pulls in the cluster, the nemesis and rich)."""
    parser = _Parser(prog="faultbed", description="Jepsen-style fault injection: run, check, replay.",
                     epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail to stderr")
    parser.add_argument("--version", action="version", version=f"faultbed {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    named = _named_command(argv)
    for name in SUBCOMMANDS:
        if named is not None and name != named:
            continue
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


def _named_command(argv: Sequence[str] | None) -> str | None:
    """The subcommand the arguments name, when they name a known one before any
    option argparse would act on alone (--help, --version); None: build them all."""
    for arg in argv or ():
        if arg in SUBCOMMANDS:
            return arg
        if arg == "--version":
            return ""  # no command needed to print it
        if not arg.startswith("-") or arg in ("-h", "--help"):
            return None
    return None


def _configure_logging(verbose: bool) -> None:
    """Warnings on stderr, one line each (-v: debug, with whole tracebacks)."""
    import logging

    from faultbed.crash import OneLineFormatter

    fmt = "%(asctime)s %(name)s %(levelname)s %(message)s"
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(fmt) if verbose else OneLineFormatter(fmt))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, handlers=[handler])


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the return value is the exit code (see EXIT_CODES)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser(argv).parse_args(argv)
        _configure_logging(args.verbose)
        return int(args.execute(args))
    except FaultbedError as exc:
        print(f"faultbed: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        from faultbed.crash import EXIT_INTERRUPTED

        print("faultbed: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout()  # the reader of our output went away (`| head`): not a bug, not a verdict
        return EXIT_ERROR
    except Exception as exc:  # the contract: a bug in faultbed is 255, never 1 and never a traceback
        from faultbed.crash import EXIT_INTERNAL, describe

        print(describe(exc), file=sys.stderr)
        return EXIT_INTERNAL


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
