"""TestSpec round-trips through spec.json; results directories never collide."""

import os
import threading

import pytest

from faultbed import store
from faultbed.errors import FaultbedError
from faultbed.run_files import read_spec
from faultbed.spec import TestSpec


def test_spec_round_trips_through_json(tmp_path):
    spec = TestSpec(nemesis=("partition", "kill"), bugs=("stale-reads",), seed=42, options={"check_timeout": 5})
    path = tmp_path / "spec.json"
    path.write_text(spec.dumps())
    assert read_spec(str(tmp_path)) == spec


def test_spec_with_unknown_field_is_rejected_clearly(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text('{"system": "raftkv", "colour": "red"}')
    with pytest.raises(FaultbedError, match=r"unknown field\(s\) colour"):
        read_spec(str(tmp_path))


def test_parallel_run_dirs_are_distinct_and_latest_points_at_one(tmp_path):
    spec = TestSpec(store=str(tmp_path))
    made = []

    def make():
        made.append(store.create_run_dir(spec))
    threads = [threading.Thread(target=make) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == 20
    assert all(p.startswith(str(tmp_path / "raftkv-register")) for p in made)
    store.point_latest(spec, made[3])
    assert os.path.realpath(tmp_path / "latest") == os.path.realpath(made[3])
    for p in made:
        store.write_json(p, store.SPEC, spec.to_json())
    assert sorted(store.list_runs(str(tmp_path))) == sorted(made)
