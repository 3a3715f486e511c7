"""The Python test-subject nodes driven over stdin/stdout, with the test as their network."""

from __future__ import annotations

import time
from typing import Any

from tests.maelstrom_subjects.stdio import NodeProcess, Wires, python_node

BROADCAST = python_node("broadcast.py")
COUNTER = python_node("counter.py")


def eventually(check: Any, seconds: float = 5.0) -> Any:
    """Poll `check` until it returns something true; its last answer otherwise."""
    deadline = time.monotonic() + seconds
    while True:
        answer = check()
        if answer or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


def test_node_answers_init_and_refuses_an_unknown_request_with_not_supported() -> None:
    node = NodeProcess(BROADCAST, "n1")
    try:
        node.send({"src": "c1", "dest": "n1", "body": {"type": "init", "msg_id": 1, "node_id": "n1",
                                                       "node_ids": ["n1"]}})
        assert node.next() == {"src": "n1", "dest": "c1", "body": {"type": "init_ok", "in_reply_to": 1}}
        node.send({"src": "c1", "dest": "n1", "body": {"type": "frobnicate", "msg_id": 2}})
        error = node.next()["body"]
        assert (error["type"], error["code"], error["in_reply_to"]) == ("error", 10, 2)
    finally:
        node.stop()


def test_broadcast_reaches_every_node_although_the_first_gossip_messages_are_lost() -> None:
    with Wires(BROADCAST, 3) as wires:
        dropped: list[Any] = []

        def lose_first_three(message: dict[str, Any]) -> bool:
            if message["body"]["type"] == "gossip" and message["body"]["messages"] and len(dropped) < 3:
                dropped.append(message)
                return True
            return False
        wires.drop = lose_first_three
        assert wires.request("n1", {"type": "topology", "topology": {"n1": ["n2"], "n2": ["n1", "n3"],
                                                                     "n3": ["n2"]}})["type"] == "topology_ok"
        assert wires.request("n1", {"type": "broadcast", "message": 7})["type"] == "broadcast_ok"
        assert wires.request("n3", {"type": "broadcast", "message": 9})["type"] == "broadcast_ok"
        assert eventually(lambda: all(wires.request(n, {"type": "read"})["messages"] == [7, 9] for n in wires.ids))
        assert len(dropped) == 3


def test_broadcast_refills_a_restarted_node_that_lost_its_memory() -> None:
    with Wires(BROADCAST, 2) as wires:
        wires.request("n1", {"type": "broadcast", "message": 1})
        assert eventually(lambda: wires.request("n2", {"type": "read"})["messages"] == [1])
        wires.restart("n2", BROADCAST)
        assert eventually(lambda: wires.request("n2", {"type": "read"})["messages"] == [1])


def test_broadcast_without_retransmission_loses_a_dropped_gossip_for_good() -> None:
    with Wires(BROADCAST + ["--no-retransmit"], 2) as wires:
        wires.drop = lambda message: message["body"]["type"] == "gossip" and 5 in message["body"]["messages"]
        wires.request("n1", {"type": "broadcast", "message": 5})
        wires.request("n1", {"type": "broadcast", "message": 6})
        assert eventually(lambda: wires.request("n2", {"type": "read"})["messages"] == [6])
        time.sleep(1.0)  # a correct node would have retransmitted 5 several times by now
        assert wires.request("n2", {"type": "read"})["messages"] == [6]


def test_counter_adds_from_every_node_converge_and_decrements_count() -> None:
    with Wires(COUNTER, 3) as wires:
        for node, delta in (("n1", 5), ("n2", -2), ("n3", 10), ("n1", 1)):
            assert wires.request(node, {"type": "add", "delta": delta})["type"] == "add_ok"
        assert eventually(lambda: {wires.request(n, {"type": "read"})["value"] for n in wires.ids} == {14})


def test_counter_add_cut_off_from_the_majority_times_out_and_keeps_its_value_once_healed() -> None:
    with Wires(COUNTER, 3) as wires:
        wires.drop = lambda message: message["src"] == "n1" or message["dest"] == "n1"
        reply = wires.request("n1", {"type": "add", "delta": 4})
        assert (reply["type"], reply["code"]) == ("error", 0)  # indefinite: it may still spread
        wires.drop = lambda message: False
        assert eventually(lambda: {wires.request(n, {"type": "read"})["value"] for n in wires.ids} == {4})


def test_counter_survives_the_restart_of_the_node_that_took_the_add() -> None:
    with Wires(COUNTER, 3) as wires:
        assert wires.request("n1", {"type": "add", "delta": 3})["type"] == "add_ok"
        wires.restart("n1", COUNTER)
        assert eventually(lambda: wires.request("n1", {"type": "read"})["value"] == 3)


def test_counter_that_double_counts_retries_counts_an_isolated_add_more_than_once() -> None:
    with Wires(COUNTER + ["--double-count-retries"], 3) as wires:
        wires.drop = lambda message: message["src"] == "n1" or message["dest"] == "n1"
        assert wires.request("n1", {"type": "add", "delta": 4})["type"] == "error"
        wires.drop = lambda message: False
        assert eventually(lambda: wires.request("n2", {"type": "read"})["value"] > 4)
