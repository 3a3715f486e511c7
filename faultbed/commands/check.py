"""`faultbed check PATH...`: is a recorded history linearizable? One line per history."""

from __future__ import annotations

import argparse

from faultbed.checkers.names import FORMATS, MODELS

# The checking itself is faultbed/check_paths.py, imported when the command runs: `check --help` stays fast.
HELP = "check recorded histories (faultbed runs, Jepsen EDN, porcupine logs): every checker of a run"
EPILOG = """\
A PATH may be a history file, a faultbed results directory (its history.jsonl) or
any directory (every history in it, recursively). The format is detected from the
content; the model defaults to what the history implies: a faultbed run's workload
(register -> kv), kv for porcupine kv logs, cas-register for etcd logs and Jepsen EDN
(multi-register when it has :txn ops, mutex for :acquire/:release).

A faultbed run (spec.json beside its history) is re-checked by every checker its
workload lists (idempotency, queue, ... and linearizability) and those its system
adds (raft-invariants on the nodes' Raft traces kept in the run's data/), unless
--model asks for linearizability alone; its line names each checker's verdict and
summary.

Which files of a directory are histories: a results directory (one holding
history.jsonl) gives its history.jsonl only. Elsewhere every file named *.jsonl or
*.edn is a history (a bad one is an error), and a *.log or *.txt file is one when
its first line looks like a history (a JSON or EDN map or vector, or a Jepsen log
line); other .log/.txt files (notes, node logs) are listed as skipped, README*
and files with other names are not looked at. FIFOs, sockets and devices are never
opened: in a directory they are skipped, named as a PATH they are an error (the
null device reads as an empty history). Every history gets its own line; a bad
one never stops the others.

A history in which no operation completed (an empty file, a torn first line, a
run interrupted during setup) is unknown: it proves nothing.

Exit code: 0 all valid, 1 some history not linearizable, 2 some inconclusive
(timeout, nothing completed), 3 some history could not be checked (bad input),
130 interrupted (Ctrl-C or SIGTERM), 255 a bug in faultbed. Worst wins, in the
order error > invalid > unknown > valid.
"""
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("paths", nargs="+", metavar="PATH", help="history files or directories")
    parser.add_argument("--model", help=f"sequential model: {', '.join(MODELS)}")
    parser.add_argument("--format", help=f"force the input format: {', '.join(FORMATS)}")
    parser.add_argument("--initial", metavar="JSON", help="initial value as JSON, e.g. 0 or '{\"x\": 0}'")
    parser.add_argument("--timeout", type=float, metavar="S", help="give up on a history after S seconds (unknown); 0 < S <= 86400")
    parser.add_argument("--memory-limit", type=float, metavar="MB",
                        help="give up on a history (unknown) when the process's resident memory passes MB, "
                             "in Go's search and in a run directory's checkers alike "
                             "(0 < MB <= 1048576; default: half the machine's memory, or $FAULTBED_CHECK_MEMORY_MB); "
                             "and when the machine's available memory falls below $FAULTBED_CHECK_MEMORY_FLOOR_MB "
                             "(default 5%% of it, at most 1024)")
    parser.add_argument("--visualize", metavar="DIR", help="write porcupine's HTML page for invalid histories")
    parser.add_argument("--always-visualize", action="store_true", help="with --visualize: for every history")
    parser.add_argument("--json", action="store_true", help="one JSON object per history instead of text")


def execute(args: argparse.Namespace) -> int:
    from faultbed.native import start_go

    start_go()  # Go's runtime starts on another CPU while the checking's modules are imported
    import signal
    import threading

    from faultbed.check_paths import check_paths

    # SIGTERM stops the check as Ctrl-C does (exit 130, as for a run), not the process outright
    if threading.current_thread() is not threading.main_thread():
        return check_paths(args)
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return check_paths(args)
    finally:
        signal.signal(signal.SIGTERM, previous)
