"""The Raft lin-kv node driven over stdin/stdout, with the test as the network (and its partitions)."""

from __future__ import annotations

import time
from typing import Any

from tests.maelstrom_subjects.stdio import Wires, python_node
from tests.maelstrom_subjects.test_nodes_stdio import eventually

RAFT = python_node("raft_kv.py")


def until_ok(wires: Wires, node: str, body: dict[str, Any]) -> dict[str, Any]:
    """Ask until an answer comes that is not "temporarily unavailable" (no leader known yet); a request
    forwarded to a leader that is cut off gets no answer, and is asked again."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        answer = wires.ask(node, body, seconds=2)
        if answer is not None and answer.get("code") != 11:
            return answer
        time.sleep(0.2)
    raise AssertionError(f"{node} never answered {body} (last: {answer})")


def isolate(node: str) -> Any:
    return lambda message: node in (message["src"], message["dest"])


def test_raft_kv_writes_reads_and_cas_through_any_node() -> None:
    with Wires(RAFT, 3) as wires:
        assert until_ok(wires, "n1", {"type": "write", "key": 1, "value": 10})["type"] == "write_ok"
        assert until_ok(wires, "n2", {"type": "read", "key": 1})["value"] == 10
        assert until_ok(wires, "n3", {"type": "cas", "key": 1, "from": 10, "to": 11})["type"] == "cas_ok"
        failed = until_ok(wires, "n1", {"type": "cas", "key": 1, "from": 10, "to": 12})
        assert (failed["type"], failed["code"]) == ("error", 22)
        missing = until_ok(wires, "n2", {"type": "read", "key": 99})
        assert (missing["type"], missing["code"]) == ("error", 20)
        assert until_ok(wires, "n3", {"type": "read", "key": 1})["value"] == 11


def test_raft_kv_keeps_acknowledged_writes_when_nodes_restart_with_empty_memory() -> None:
    with Wires(RAFT, 3) as wires:
        assert until_ok(wires, "n1", {"type": "write", "key": "k", "value": 1})["type"] == "write_ok"
        for node in ("n1", "n2", "n3"):  # one at a time: each rejoins empty and must learn the log again
            wires.restart(node, RAFT)
            assert until_ok(wires, node, {"type": "read", "key": "k"})["value"] == 1
        assert until_ok(wires, "n2", {"type": "cas", "key": "k", "from": 1, "to": 2})["type"] == "cas_ok"


def test_raft_kv_isolated_node_answers_no_stale_read() -> None:
    with Wires(RAFT, 3) as wires:
        assert until_ok(wires, "n1", {"type": "write", "key": 0, "value": "old"})["type"] == "write_ok"
        assert eventually(lambda: until_ok(wires, "n3", {"type": "read", "key": 0}).get("value") == "old")
        wires.drop = isolate("n3")
        majority_node = "n1"
        assert until_ok(wires, majority_node, {"type": "write", "key": 0, "value": "new"})["type"] == "write_ok"
        answer = wires.ask("n3", {"type": "read", "key": 0}, seconds=2)
        assert answer is None or answer.get("value") != "old", answer  # cut off: no answer or an error, never stale


def test_raft_kv_with_stale_reads_bug_answers_an_isolated_follower_read_from_old_state() -> None:
    with Wires(RAFT + ["--stale-reads"], 3) as wires:
        assert until_ok(wires, "n1", {"type": "write", "key": 0, "value": 0})["type"] == "write_ok"
        for value in (1, 2):  # if n3 led when cut off, it reads through its log (no answer): cut it again
            # a deposed leader may leave a read unanswered: ask again until a follower n3 answers
            assert eventually(lambda: (wires.ask("n3", {"type": "read", "key": 0}, seconds=2) or {}).get("value")
                              == value - 1, seconds=30)
            wires.drop = isolate("n3")
            assert until_ok(wires, "n1", {"type": "write", "key": 0, "value": value})["type"] == "write_ok"
            answer = wires.ask("n3", {"type": "read", "key": 0}, seconds=2)
            if answer is not None:
                assert answer["value"] == value - 1, answer  # acknowledged value + 1 was already written
                return
            wires.drop = lambda message: False
        raise AssertionError("n3 never answered a read while cut off")


def _vote(wires: Wires, node: str, candidate: str, term: int) -> dict[str, Any]:
    """A vote request from a candidate outside the cluster (its reply comes to the test)."""
    wires.nodes[node].send({"src": candidate, "dest": node, "body": {
        "type": "request_vote", "term": term, "last_log_index": 10_000, "last_log_term": term}})
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        reply = wires.replies.get(timeout=5)
        if reply["dest"] == candidate and reply["body"]["type"] == "vote":
            return dict(reply["body"])
    raise AssertionError(f"{node} did not answer {candidate}'s vote request")


def test_raft_kv_node_remembers_its_vote_over_a_kill() -> None:
    """Raft's one vote a term: a node that voted, was killed and started again refuses another candidate
    of that term (its term and vote are on disk before its answer goes out)."""
    with Wires(RAFT, 1) as wires:
        assert _vote(wires, "n1", "n8", 50) == {"type": "vote", "term": 50, "granted": True}
        wires.restart("n1", RAFT)
        assert _vote(wires, "n1", "n9", 50) == {"type": "vote", "term": 50, "granted": False}
        assert _vote(wires, "n1", "n8", 50)["granted"] is True  # the same candidate again: the same vote
