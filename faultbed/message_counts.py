"""What the network did to a Maelstrom run's messages: per node, sent, received, dropped by the mesh.

Each node's router keeps `data/<node>/maelstrom-counts.json` (cluster/systems/maelstrom/router.py):
messages and bytes it wrote to each peer's proxy, and received from each peer. A message node a
sent to b that b never received was dropped by the mesh (a blackholed link, a connection cut by
a heal) or lost with a killed node; `unsent` ones never left a (no connection to the peer).
Counts are saved every half second and at exit, so a SIGKILL may lose the last half second of them.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from typing import Any

COUNTS_FILE = "maelstrom-counts.json"


@dataclass(frozen=True)
class NodeMessages:
    node: str
    sent: int
    received: int
    dropped: int     # sent by this node into the mesh, never received by the peer
    unsent: int      # no connection to the peer (refused, reset) or its queue was full
    sent_bytes: int
    received_bytes: int


def read_counts(run_dir: str) -> dict[str, dict[str, dict[str, int]]]:
    """Each node's counts file as stored (nodes without one, or with a damaged one, are left out)."""
    data_dir = os.path.join(run_dir, "data")
    found: dict[str, dict[str, dict[str, int]]] = {}
    if not os.path.isdir(data_dir):
        return found
    for node in sorted(os.listdir(data_dir)):
        try:
            with open(os.path.join(data_dir, node, COUNTS_FILE), encoding="utf-8") as fh:
                loaded = json.load(fh)
        except (OSError, ValueError):
            continue
        if isinstance(loaded, dict):
            found[node] = {k: {str(p): int(n) for p, n in v.items() if isinstance(n, int)}
                           for k, v in loaded.items() if isinstance(v, dict)}
    return found


def node_messages(counts: dict[str, dict[str, dict[str, int]]]) -> list[NodeMessages]:
    """Per node totals; dropped = what it sent to each peer minus what that peer says it received from it."""
    rows = []
    for node, mine in counts.items():
        sent = mine.get("sent", {})
        dropped = sum(max(0, n - counts.get(peer, {}).get("received", {}).get(node, 0))
                      for peer, n in sent.items() if peer in counts)
        rows.append(NodeMessages(node, sum(sent.values()), sum(mine.get("received", {}).values()), dropped,
                                 sum(mine.get("unsent", {}).values()), sum(mine.get("sent_bytes", {}).values()),
                                 sum(mine.get("received_bytes", {}).values())))
    return rows


def messages_section(run_dir: str) -> str:
    """The report's "Messages" section; empty for a run whose nodes kept no counts."""
    rows = node_messages(read_counts(run_dir))
    if not rows:
        return ""
    cells = "".join(
        f"<tr><td>{html.escape(r.node)}</td><td>{r.sent}</td><td>{r.received}</td><td>{r.dropped}</td>"
        f"<td>{r.unsent}</td><td>{r.sent_bytes}</td><td>{r.received_bytes}</td></tr>" for r in rows)
    return ('<section id="messages"><h2>Messages between nodes</h2><p>Counted by each node\'s router: '
            'dropped = sent into the mesh but never received by the peer (blackholed, cut at a heal, or lost '
            'with a killed node); unsent = no connection to the peer at the time.</p>'
            '<table><tr><th>node</th><th>sent</th><th>received</th><th>dropped by the mesh</th><th>unsent</th>'
            f'<th>bytes sent</th><th>bytes received</th></tr>{cells}</table></section>')


def describe(run_dir: str) -> dict[str, Any]:
    """The per-node numbers as plain data (for results and tests)."""
    return {r.node: {"sent": r.sent, "received": r.received, "dropped": r.dropped, "unsent": r.unsent}
            for r in node_messages(read_counts(run_dir))}
