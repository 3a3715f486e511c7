"""slow-node: 400 ms more latency on every link of one random node (a fault kind of our own)."""

from faultbed.nemesis.kinds import ActiveFault, Alias, FaultKindBase
from faultbed.nemesis.targets import plan_targets, resolve_targets


class SlowNode(FaultKindBase):
    name = "slow-node"
    description = "400 ms of latency on every link of one node (slow-node:TARGET)"
    aliases = (Alias("slow-primary", "primary", "400 ms of latency on the primary's links"),)
    color = "#7fc97f"

    def plan(self, arg, nodes, rng, options):
        return plan_targets(arg, nodes, rng, self.name)

    def start(self, ctx, fault_id, params):
        nodes, _ = resolve_targets(ctx, params)
        mesh = ctx.cluster.mesh
        with ctx.lock:
            fault = mesh.add_link_fault(self.name, {"latency": 400, "jitter": 0}, mesh.links_touching(nodes),
                                        toxic_type="latency")
        return ActiveFault(fault_id, self.name, f"slow {','.join(nodes)}", {"nodes": nodes}, state=fault)

    def stop(self, ctx, active):
        with ctx.lock:
            ctx.cluster.mesh.remove_link_fault(active.state)
        return "fast again"


SLOW_NODE = SlowNode()
