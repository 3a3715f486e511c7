"""The services' promises on their own (no cluster): lin-kv's errors, seq-kv's order, lww-kv's convergence."""

from __future__ import annotations

import asyncio

from faultbed.cluster.systems.maelstrom.services import ServiceHost


def _host(tmp_path, seed: int = 1) -> tuple[ServiceHost, list[dict]]:
    answers: list[dict] = []
    return ServiceHost(str(tmp_path), answers.append, seed), answers


def _ask(host: ServiceHost, answers: list[dict], service: str, node: str, **body) -> dict:
    host.handle({"src": node, "dest": service, "body": {"msg_id": len(answers) + 1, **body}})
    answer = answers[-1]
    assert answer["src"] == service and answer["dest"] == node and answer["body"]["in_reply_to"] == len(answers)
    return answer["body"]


def test_lin_kv_answers_as_maelstrom_does_and_keeps_its_state_over_a_restart(tmp_path):
    host, answers = _host(tmp_path)
    assert _ask(host, answers, "lin-kv", "n2", type="read", key=1)["code"] == 20
    assert _ask(host, answers, "lin-kv", "n2", type="cas", key=1, **{"from": 0, "to": 1})["code"] == 20
    assert _ask(host, answers, "lin-kv", "n2", type="cas", key=1, create_if_not_exists=True,
                **{"from": 0, "to": 1})["type"] == "cas_ok"
    assert _ask(host, answers, "lin-kv", "n3", type="cas", key=1, **{"from": 0, "to": 2})["code"] == 22
    assert _ask(host, answers, "lin-kv", "n3", type="write", key="k", value=[1])["type"] == "write_ok"
    restarted, again = _host(tmp_path)  # n1 killed and restarted: the services' state is on its disk
    assert _ask(restarted, again, "lin-kv", "n2", type="read", key=1) == {"type": "read_ok", "value": 1,
                                                                           "in_reply_to": 1}
    assert _ask(restarted, again, "lin-kv", "n2", type="read", key="k")["value"] == [1]


def test_seq_kv_reads_go_stale_but_never_back_in_a_nodes_own_order(tmp_path):
    host, answers = _host(tmp_path, seed=7)
    for value in range(1, 30):
        _ask(host, answers, "seq-kv", "n2", type="write", key=0, value=value)
    seen = [_ask(host, answers, "seq-kv", "n3", type="read", key=0).get("value") for _ in range(40)]
    assert any(v != 29 for v in seen), "some reads by another node were stale"
    numbers = [v for v in seen if v is not None]
    assert numbers == sorted(numbers), f"a node never sees an older state after a newer one: {seen}"
    assert _ask(host, answers, "seq-kv", "n2", type="read", key=0)["value"] == 29, "a writer reads its own write"


def test_lww_kv_replicas_differ_at_first_and_converge_on_the_newest_write(tmp_path):
    async def scenario() -> tuple[object, object, object]:
        host, answers = _host(tmp_path)
        for node in ("n2", "n3"):
            _ask(host, answers, "lww-kv", node, type="write", key=0, value=node)
        before = _ask(host, answers, "lww-kv", "n2", type="read", key=0)["value"]
        await asyncio.sleep(1.2)
        return before, *(_ask(host, answers, "lww-kv", n, type="read", key=0)["value"] for n in ("n2", "n3"))

    before, n2, n3 = asyncio.run(scenario())
    assert before == "n2", "n3's newer write has not reached n2's replica yet"
    assert n2 == n3 == "n3", "after the spreading delay both replicas hold the newest write"
