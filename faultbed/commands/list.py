"""`faultbed list`: every registered plugin, by kind, with a line about it and where it came from."""

from __future__ import annotations

import argparse
import json
from typing import Any

from faultbed import plugins
from faultbed.errors import FaultbedError

HELP = "list the systems, workloads, fault kinds, checkers and backends faultbed knows, and their origin"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", nargs="?", choices=plugins.KINDS, help="only this kind of plugin")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _rows(kind: str) -> list[dict[str, Any]]:
    rows = []
    for name, plugin in sorted(plugins.registered(kind).items()):
        row: dict[str, Any] = {"name": name, "origin": plugin.origin, "target": plugin.target}
        try:
            loaded = plugin.load()
            row["description"] = plugins.description(loaded)
        except FaultbedError as exc:  # a broken third-party plugin is listed, not fatal
            row["description"] = f"(cannot be loaded: {exc})"
            loaded = None
        if kind == "systems" and loaded is not None:
            row["options"] = _options(loaded)
        rows.append(row)
    return rows


def _options(system: Any) -> list[dict[str, Any]]:
    """A system's `--option`s: name, choices, default, help (none for a system without traits)."""
    traits = getattr(system, "traits", None)  # a broken third-party system is listed, not fatal
    return [{"name": o.name, "choices": list(o.choices), "default": o.default, "help": o.help}
            for o in getattr(traits, "options", ())]


def _option_lines(row: dict[str, Any]) -> list[str]:
    return [f"--option {o['name']}={'|'.join(o['choices'])} (default {o['default']}){': ' + o['help'] if o['help'] else ''}"
            for o in row.get("options", ())]


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
            for line in _option_lines(row):
                print(f"  {'':<{name_width}}    {line}")
    return 0
