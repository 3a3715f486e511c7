"""`faultbed run --bin` on the docker backend: the program bound into node containers, messages
between containers through the Toxiproxy container, a partition and a pause on the way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faultbed.message_counts import describe as describe_messages
from tests.integration.conftest import results, run_faultbed

pytestmark = pytest.mark.docker

TINY = str(Path(__file__).resolve().parents[1] / "maelstrom" / "tiny_node.py")


def test_a_maelstrom_program_runs_in_containers_and_its_messages_cross_the_toxiproxy_container(tmp_path):
    store = tmp_path / "store"
    proc = run_faultbed("run", "--backend", "docker", "--bin", TINY, "--workload", "lin-kv", "--nodes", "3",
                        "--rate", "40", "--concurrency", "3", "--keys", "3", "--time-limit", "6",
                        "--nemesis", "partition,pause", "--nemesis-interval", "2", "--seed", "11", "--quiet",
                        "--store", str(store), timeout=400)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = (store / "latest").resolve()
    assert results(run_dir)["counts"]["ok"] > 20
    messages = describe_messages(str(run_dir))  # n2 and n3 relay requests to n1, the tiny node's primary
    assert messages["n2"]["sent"] > 5 and messages["n1"]["received"] > 10, messages
    assert "tiny node n1 up" in (run_dir / "nodes" / "n1.log").read_text()
    events = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    assert any(e.get("f") == "start-pause" for e in events)
