"""`faultbed store merge|pull`: gather the stores of several hosts (shards, CI jobs) into one store.

    faultbed store merge --into all-runs host-a-store host-b-store ...      # stores copied here already
    faultbed store pull --hosts hosts.toml --from /srv/chaos/store --into all-runs   # over ssh
    faultbed serve --store all-runs

Each run lands at <into>/<group>/<stamp>@<host> (faultbed/merge.py); merging again copies
only what is new. The command prints one line per source and a total, and the command
that browses the result.
"""

from __future__ import annotations

import argparse

from typing import TYPE_CHECKING

from faultbed.errors import FaultbedError

if TYPE_CHECKING:
    from faultbed.merge import Merged

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
    pull = actions.add_parser("pull", help="copy the store DIR of every host of an inventory (over ssh) into --into",
                              description="copy the store --from of every host of the ssh inventory --hosts "
                                          "(or those named by --only) into --into, as `merge` does; each run's "
                                          "host is the inventory's name for it")
    pull.add_argument("--hosts", required=True, metavar="FILE", help="the ssh inventory (hosts.toml, docs/REMOTE.md)")
    pull.add_argument("--from", dest="remote_store", required=True, metavar="DIR",
                      help="the store directory on the hosts (absolute, or relative to the login directory)")
    pull.add_argument("--into", required=True, metavar="DIR", help="the store that gathers them (made if missing)")
    pull.add_argument("--only", default=None, metavar="H1,H2", help="only these hosts of the inventory")


def execute(args: argparse.Namespace) -> int:
    from faultbed.merge import merge_stores

    if args.store_action == "pull":
        merged = _pull(args)
    elif args.store_action == "merge":
        merged = merge_stores(list(args.sources), args.into, args.host)
    else:
        raise FaultbedError(f"store {args.store_action}: unknown action")
    for source, runs in merged.items():
        copied = sum(1 for m in runs if m.copied)
        hosts = ", ".join(sorted({m.host for m in runs})) or "no runs"
        print(f"{args.store_action}: {source}: {copied} run(s) copied, {len(runs) - copied} already there ({hosts})")
    every = [m for runs in merged.values() for m in runs]
    print(f"{args.store_action}: {sum(1 for m in every if m.copied)} new run(s) in {args.into}, "
          f"from {len({m.host for m in every})} host(s)")
    print(f"browse: faultbed serve --store {args.into}")
    return 0


def _pull(args: argparse.Namespace) -> "dict[str, list[Merged]]":
    from faultbed.cluster.ssh.inventory import load_inventory
    from faultbed.pull import pull_stores

    inventory = load_inventory(args.hosts)
    names = list(inventory.hosts) if args.only is None else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [name for name in names if name not in inventory.hosts]
    if unknown or not names:
        raise FaultbedError(f"--only: {', '.join(unknown) or 'no host'} not in {args.hosts} "
                            f"(hosts: {', '.join(inventory.hosts)})")
    return pull_stores([inventory.hosts[name] for name in names], args.remote_store, args.into)
