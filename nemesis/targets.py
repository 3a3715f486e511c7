"""Which nodes a fault hits: chosen at planning time, except `primary` (the leader when it starts)."""

from __future__ import annotations

import logging
import random
from typing import Any, Sequence

from faultbed.errors import FaultbedError
from faultbed.nemesis.grudge import majority
from faultbed.nemesis.kinds import FaultContext

log = logging.getLogger(__name__)

PRIMARY = "primary"
TARGETS = ("one", "minority", "majority", "all", PRIMARY, "random")
TARGET_HELP = "TARGET: one, minority, majority, all, primary, random, or node names joined by + (n1+n3)"


def plan_targets(target: str | None, nodes: Sequence[str], rng: random.Random, what: str) -> dict[str, Any]:
    """Choose nodes for `target` now; `primary` keeps a fallback node for when no leader is known."""
    target = target or "one"
    ordered = list(nodes)
    count = len(ordered)
    sizes = {"one": 1, "minority": (count - 1) // 2, "majority": majority(count), "all": count}
    if target == PRIMARY:
        return {"target": PRIMARY, "fallback": rng.choice(ordered)}
    if target == "random":
        return {"target": target, "nodes": sorted(rng.sample(ordered, rng.randint(1, count)))}
    if target in sizes:
        size = min(sizes[target], count)
        if size < 1:
            raise FaultbedError(f"{what}:{target} needs more nodes than {count}")
        return {"target": target, "nodes": sorted(rng.sample(ordered, size))}
    named = [n.strip() for n in target.split("+") if n.strip()]
    unknown = [n for n in named if n not in ordered]
    if not named or unknown:
        raise FaultbedError(f"{what}: unknown target {target!r} ({TARGET_HELP}; nodes: {', '.join(ordered)})")
    return {"target": target, "nodes": sorted(set(named))}


def resolve_targets(ctx: FaultContext, params: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """The planned nodes, or for `primary` the current leader (else the planned fallback)."""
    if params.get("target") != PRIMARY:
        return list(params["nodes"]), {}
    leader = ctx.cluster.leader()
    if leader is None:
        log.warning("no leader known; targeting the fallback node %s", params["fallback"])
        return [params["fallback"]], {"leader": None}
    return [leader], {"leader": leader}
