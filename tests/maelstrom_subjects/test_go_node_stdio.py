"""The Go node, never written for faultbed, driven over stdin/stdout: echo, unique ids, broadcast."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.maelstrom_subjects.stdio import Wires
from tests.maelstrom_subjects.test_nodes_stdio import eventually


def test_go_node_echoes_and_generates_ids_unique_across_nodes_and_restarts(go_node: Path) -> None:
    with Wires([str(go_node)], 2) as wires:
        assert wires.request("n1", {"type": "echo", "echo": "héllo"}) == {
            "type": "echo_ok", "echo": "héllo", "in_reply_to": 1}
        ids = [wires.request(n, {"type": "generate"})["id"] for n in ("n1", "n2", "n1", "n2")]
        wires.restart("n1", [str(go_node)])
        ids += [wires.request("n1", {"type": "generate"})["id"] for _ in range(3)]
        assert len(set(ids)) == len(ids) == 7, ids


def test_go_node_broadcast_survives_lost_gossip(go_node: Path) -> None:
    with Wires([str(go_node)], 3) as wires:
        dropped: list[Any] = []

        def lose_first_two(message: dict[str, Any]) -> bool:
            if message["body"]["type"] == "gossip" and message["body"]["messages"] and len(dropped) < 2:
                dropped.append(message)
                return True
            return False
        wires.drop = lose_first_two
        assert wires.request("n2", {"type": "broadcast", "message": 3})["type"] == "broadcast_ok"
        assert wires.request("n3", {"type": "broadcast", "message": 1})["type"] == "broadcast_ok"
        assert eventually(lambda: all(wires.request(n, {"type": "read"})["messages"] == [1, 3] for n in wires.ids))
        assert len(dropped) == 2
        error = wires.request("n1", {"type": "frobnicate"})
        assert (error["type"], error["code"]) == ("error", 10)
