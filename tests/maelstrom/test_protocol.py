"""Maelstrom's wire format, error codes and the workloads' codecs, without a cluster."""

from __future__ import annotations

import pytest

from faultbed.cluster.systems.maelstrom.protocol import ProtocolError, decode, describe_error, is_definite
from faultbed.workloads.maelstrom import BROADCAST, G_COUNTER, G_SET, LIN_KV, grid_topology, node_names


@pytest.mark.parametrize("line, problem", [
    (b"hello", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"dest": "n1", "body": {"type": "x"}}', "src"),
    (b'{"src": "n1", "dest": 2, "body": {"type": "x"}}', "dest"),
    (b'{"src": "n1", "dest": "n2", "body": []}', "body"),
    (b'{"src": "n1", "dest": "n2", "body": {"msg_id": 1}}', "type"),
    (b"\xff\xfe", "not JSON"),
])
def test_lines_that_are_not_maelstrom_messages_are_refused_with_the_reason(line, problem):
    with pytest.raises(ProtocolError, match=problem):
        decode(line)


def test_error_codes_keep_maelstroms_definite_and_indefinite_meaning():
    assert [code for code in (0, 1, 10, 11, 12, 13, 14, 20, 21, 22, 30) if is_definite(code)] == \
        [1, 10, 11, 12, 14, 20, 21, 22, 30]
    assert not is_definite(1000) and not is_definite(None) and not is_definite(True) and not is_definite("22")
    assert describe_error({"code": 22, "text": "expected 3"}) == "22 precondition-failed: expected 3"
    assert describe_error({"code": 1001}) == "1001 custom"


def test_lin_kv_speaks_maelstroms_shapes_and_maps_errors_to_fail_or_info():
    assert LIN_KV.request("cas", 3, [1, 2]) == {"type": "cas", "key": 3, "from": 1, "to": 2}
    assert LIN_KV.request("write", 0, 4) == {"type": "write", "key": 0, "value": 4}
    assert LIN_KV.outcome("read", 0, None, {"type": "read_ok", "value": 4}) == ("ok", 4, None)
    assert LIN_KV.outcome("read", 0, None, {"type": "error", "code": 20})[:2] == ("ok", None)
    assert LIN_KV.outcome("cas", 0, [1, 2], {"type": "error", "code": 22, "text": "no"}) == \
        ("fail", None, "22 precondition-failed: no")
    assert LIN_KV.outcome("cas", 0, [1, 2], {"type": "error", "code": 20})[0] == "fail"
    assert LIN_KV.outcome("write", 0, 1, {"type": "error", "code": 0})[0] == "info", "timeout is indefinite"
    assert LIN_KV.outcome("write", 0, 1, {"type": "error", "code": 13})[0] == "info", "crash is indefinite"
    assert LIN_KV.outcome("read", 0, None, {"type": "error", "code": 13})[0] == "fail", "a read changed nothing"
    assert LIN_KV.outcome("write", 0, 1, {"type": "read_ok"})[0] == "info", "a reply of the wrong type"


def test_set_workloads_put_values_where_maelstrom_expects_them_and_sort_reads():
    assert G_SET.request("add", None, 7) == {"type": "add", "element": 7}
    assert G_COUNTER.request("add", None, 3) == {"type": "add", "delta": 3}
    assert BROADCAST.request("broadcast", None, 9) == {"type": "broadcast", "message": 9}
    assert BROADCAST.outcome("read", None, None, {"type": "read_ok", "messages": [3, 1]}) == ("ok", [1, 3], None)
    assert G_SET.outcome("read", None, None, {"type": "read_ok", "value": [2, "a"]})[:2] == ("ok", [2, "a"])


@pytest.mark.parametrize("count", [1, 2, 3, 5, 9, 25])
def test_grid_topology_is_symmetric_and_connected(count):
    nodes = node_names(count)
    topology = grid_topology(nodes)
    assert sorted(topology) == sorted(nodes)
    for node, neighbours in topology.items():
        assert node not in neighbours and all(node in topology[n] for n in neighbours)
    reached, frontier = {nodes[0]}, [nodes[0]]
    while frontier:
        for neighbour in topology[frontier.pop()]:
            if neighbour not in reached:
                reached.add(neighbour)
                frontier.append(neighbour)
    assert reached == set(nodes)
