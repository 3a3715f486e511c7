"""`faultbed report RUN_DIR...`: write (or rewrite) report.html in results directories."""

from __future__ import annotations

import argparse
import os

from faultbed.errors import FaultbedError

HELP = "write report.html (verdicts, latency and throughput plots, faults, logs) for stored runs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="a results directory (or store/latest)")


def execute(args: argparse.Namespace) -> int:
    from faultbed.report import write_report

    for run_dir in args.run_dirs:
        if not os.path.isdir(run_dir):
            raise FaultbedError(f"{run_dir}: no such directory")
        print(f"report: {write_report(run_dir)}")
    return 0
