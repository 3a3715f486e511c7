"""`faultbed list`: every registered plugin, by kind, with a line about it and where it came from."""

from __future__ import annotations

import argparse
import json

from faultbed import plugins
from faultbed.errors import FaultbedError

HELP = "list the systems, workloads, fault kinds, checkers and backends faultbed knows, and their origin"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", nargs="?", choices=plugins.KINDS, help="only this kind of plugin")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _rows(kind: str) -> list[dict[str, str]]:
    rows = []
    for name, plugin in sorted(plugins.registered(kind).items()):
        try:
            about = plugins.description(plugin.load())
        except FaultbedError as exc:  # a broken third-party plugin is listed, not fatal
            about = f"(cannot be loaded: {exc})"
        rows.append({"name": name, "description": about, "origin": plugin.origin, "target": plugin.target})
    return rows


def execute(args: argparse.Namespace) -> int:
    kinds = [args.kind] if args.kind else list(plugins.KINDS)
    listing = {kind: _rows(kind) for kind in kinds}
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    rows = [row for kind in kinds for row in listing[kind]]
    name_width = max((len(row["name"]) for row in rows), default=0)
    text_width = max((len(row["description"]) for row in rows), default=0)
    for kind in kinds:
        print(f"{kind}:")
        for row in listing[kind] or [{"name": "(none)", "description": "", "origin": ""}]:
            origin = f"[{row['origin']}]" if row["origin"] else ""
            print(f"  {row['name']:<{name_width}}  {row['description']:<{text_width}}  {origin}".rstrip())
    return 0
