"""The disk fault kinds' pure parts: which files, which bytes, chosen from the seed."""

from __future__ import annotations

import random

import pytest

from faultbed.errors import FaultbedError
from faultbed.nemesis.disk import CORRUPT, corrupt_file, data_files


def _files(root, sizes):
    for name, size in sizes.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes(range(256)) * (size // 256) + bytes(size % 256))


def test_data_files_match_the_system_patterns_and_skip_empty_files(tmp_path):
    _files(tmp_path, {"raft.journal": 4096, "raft.dump": 0, "raft.vote.json": 40, "wal/0.wal": 1000})
    assert data_files(str(tmp_path), ("raft.journal", "raft.dump")) == ["raft.journal"]
    assert data_files(str(tmp_path), ("wal/*.wal",)) == ["wal/0.wal"]
    assert data_files(str(tmp_path), ()) == ["raft.journal", "raft.vote.json", "wal/0.wal"]


def test_bitflip_flips_exactly_the_recorded_bits(tmp_path):
    _files(tmp_path, {"f": 10000})
    before = (tmp_path / "f").read_bytes()
    done = corrupt_file(str(tmp_path), "n1", "f", "bitflip", random.Random(1))
    after = (tmp_path / "f").read_bytes()
    assert len(after) == len(before) and done.bits
    flipped = {i * 8 + b for i, (x, y) in enumerate(zip(before, after)) for b in range(8) if (x ^ y) >> b & 1}
    assert flipped == set(done.bits)


def test_truncate_shortens_and_the_same_seed_does_the_same(tmp_path):
    for root in (tmp_path / "a", tmp_path / "b"):
        _files(root, {"f": 5000})
    first = corrupt_file(str(tmp_path / "a"), "n1", "f", "truncate", random.Random(7))
    second = corrupt_file(str(tmp_path / "b"), "n1", "f", "truncate", random.Random(7))
    assert first == second and first.offset < 5000
    assert (tmp_path / "a" / "f").stat().st_size == first.offset


def test_corrupt_plans_targets_from_the_seed_and_refuses_unknown_ones():
    nodes = ["n1", "n2", "n3"]
    plan = CORRUPT.plan("minority", nodes, random.Random(3), {})
    assert plan == CORRUPT.plan("minority", nodes, random.Random(3), {})
    assert len(plan["nodes"]) == 1 and set(plan["modes"]) == set(nodes)
    with pytest.raises(FaultbedError):
        CORRUPT.plan("n9", nodes, random.Random(3), {})
