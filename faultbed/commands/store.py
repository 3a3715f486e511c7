"""`faultbed store merge`: gather the stores of several hosts (shards, CI jobs) into one store.

    faultbed store merge --into all-runs host-a-store host-b-store ...
    faultbed serve --store all-runs

Each run lands at <into>/<group>/<stamp>@<host> (faultbed/merge.py); merging again copies
only what is new. The command prints one line per source and a total, and the command
that browses the result.
"""

from __future__ import annotations

import argparse

from faultbed.errors import FaultbedError

HELP = "gather runs from several stores (hosts, shards, CI jobs) into one store that `faultbed serve` browses"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="store_action", metavar="ACTION", parser_class=type(parser))
    actions.required = True
    merge = actions.add_parser("merge", help="copy every run of the SOURCE stores into --into",
                               description="copy every run of the SOURCE stores into --into; runs land at "
                                           "<group>/<stamp>@<host>, so hosts never collide, and a run merged "
                                           "before is skipped")
    merge.add_argument("sources", nargs="+", metavar="SOURCE",
                       help="a store directory (a host's, a shard's, a CI job's artifact); nested stores "
                            "(a campaign's seed-N/, pytest's per-worker stores) are searched too")
    merge.add_argument("--into", required=True, metavar="DIR", help="the store that gathers them (made if missing)")
    merge.add_argument("--host", default=None,
                       help="host name for runs that do not record one (runs from before origin.json)")


def execute(args: argparse.Namespace) -> int:
    from faultbed.merge import merge_stores

    if args.store_action != "merge":
        raise FaultbedError(f"store {args.store_action}: unknown action")
    merged = merge_stores(list(args.sources), args.into, args.host)
    for source, runs in merged.items():
        copied = sum(1 for m in runs if m.copied)
        hosts = ", ".join(sorted({m.host for m in runs})) or "no runs"
        print(f"merge: {source}: {copied} run(s) copied, {len(runs) - copied} already there ({hosts})")
    every = [m for runs in merged.values() for m in runs]
    print(f"merge: {sum(1 for m in every if m.copied)} new run(s) in {args.into}, "
          f"from {len({m.host for m in every})} host(s)")
    print(f"browse: faultbed serve --store {args.into}")
    return 0
