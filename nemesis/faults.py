"""Nemesis entries by name: parsing `--nemesis`, finding each kind in the registry, validating.

A nemesis entry is `KIND` or `KIND:ARG` (`kill:minority`, `kill:n1+n3`,
`partition:bridge`, `latency:one`, `partition:{"n1": ["n2"]}`), or an alias a kind
declares (`partition-ring`, `kill-primary`, ...). Kinds come from the plugin registry
(entry point group `faultbed.faults`), faultbed's own and everyone else's alike.
`plan` turns an entry into JSON-able parameters when the schedule is generated
(grudges and node sets are chosen there, from the schedule's seeded random, so
schedule.json says exactly what will happen); only `primary` is resolved when the
fault starts, from the cluster's current leader.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any, Sequence

from faultbed import plugins
from faultbed.cluster.mesh import PARTITION_MODES
from faultbed.errors import FaultbedError
from faultbed.nemesis.kinds import (DEFAULT_COLOR, ActiveFault, Alias, FaultContext, FaultKind, NemesisCluster)
from faultbed.nemesis.network import TOPOLOGY_HELP
from faultbed.nemesis.targets import TARGET_HELP, TARGETS

log = logging.getLogger(__name__)

NONE = "none"
NEMESIS_SYNTAX = (TOPOLOGY_HELP, TARGET_HELP,
                  'custom grudge: partition:{"n1": ["n2", "n3"]} (n1 drops the traffic of n2 and n3)')


@dataclass(frozen=True)
class FaultEntry:
    """One parsed nemesis entry: `text` as the user wrote it, its kind and argument."""

    text: str
    kind: str
    arg: str | None


def fault_kind(name: str) -> FaultKind[Any]:
    """The fault kind registered as `name` (FaultbedError when none is, or it cannot be loaded)."""
    kind = plugins.load("faults", name)
    if kind.name != name:
        raise FaultbedError(f"fault kind registered as {name!r} calls itself {kind.name!r}")
    return kind  # type: ignore[no-any-return]


def fault_kinds() -> list[FaultKind[Any]]:
    """Every registered fault kind that loads (one that cannot is logged and left out)."""
    kinds = []
    for name in plugins.names("faults"):
        try:
            kinds.append(fault_kind(name))
        except FaultbedError as exc:
            log.warning("%s", exc)
    return kinds


def aliases() -> dict[str, tuple[str, Alias]]:
    """Every alias of every registered kind: alias name -> (kind name, alias)."""
    return {alias.name: (kind.name, alias) for kind in fault_kinds() for alias in kind.aliases}


def fault_help() -> dict[str, str]:
    """One line per kind and alias, for `faultbed run --help` (none first)."""
    lines = {NONE: "no faults"}
    for kind in fault_kinds():
        lines[kind.name] = kind.description
        lines.update({alias.name: alias.description for alias in kind.aliases})
    return lines


def fault_color(text: str) -> str:
    """The colour of the kind of a nemesis entry (`kill:n1`, `partition-ring`), or the default."""
    try:
        return fault_kind(parse_fault(text).kind).color
    except FaultbedError:
        return DEFAULT_COLOR


def split_nemesis(text: str) -> tuple[str, ...]:
    """Split a `--nemesis` value at commas outside JSON braces and brackets; drops `none`."""
    entries: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        depth += {"{": 1, "[": 1, "}": -1, "]": -1}.get(char, 0)
        if char == "," and depth <= 0:
            entries.append("".join(current))
            current = []
        else:
            current.append(char)
    entries.append("".join(current))
    return tuple(e.strip() for e in entries if e.strip() and e.strip() != NONE)


def parse_fault(text: str) -> FaultEntry:
    """`KIND`, `KIND:ARG` or an alias -> FaultEntry; FaultbedError on unknown names."""
    name = text.strip()
    kind, _, arg = name.partition(":")
    if kind in plugins.registered("faults"):
        return FaultEntry(name, kind, arg or None)
    known_aliases = aliases()
    if name in known_aliases:
        kind, alias = known_aliases[name]
        return FaultEntry(name, kind, alias.arg)
    known = ", ".join(k for k in fault_help() if k != NONE)
    raise FaultbedError(f"unknown nemesis {text!r} (known: {known}; or none)")


def validate_entries(names: Sequence[str], nodes: Sequence[str], partition_mode: str,
                     options: dict[str, Any] | None = None) -> list[FaultEntry]:
    """Parse and plan every entry once over `nodes`, so bad names and arguments fail before a run."""
    if partition_mode not in PARTITION_MODES:
        raise FaultbedError(f"unknown partition mode {partition_mode!r} (known: {', '.join(PARTITION_MODES)})")
    if NONE in names and len(names) > 1:
        raise FaultbedError("nemesis `none` cannot be combined with other faults")
    entries = [parse_fault(n) for n in names if n != NONE]
    seen = [e.text for e in entries]
    duplicates = sorted({t for t in seen if seen.count(t) > 1})
    if duplicates:
        raise FaultbedError(f"nemesis listed twice: {', '.join(duplicates)}")
    for entry in entries:
        fault_kind(entry.kind).plan(entry.arg, nodes, random.Random(0), options or {})
    return entries


__all__ = ["NEMESIS_SYNTAX", "NONE", "TARGETS", "ActiveFault", "FaultContext", "FaultEntry", "NemesisCluster",
           "aliases", "fault_color", "fault_help", "fault_kind", "fault_kinds", "parse_fault", "split_nemesis",
           "validate_entries"]
