"""Searching a faultbed history while Go reads it (checkers/porcupine/stream.go) gives the verdict of
searching it after reading: seeded histories long enough to be cut, valid and not, with info operations,
and a history whose times go backwards (what was searched early is then voided)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.histories import Shape, generate

# Go reads its environment once, when the library loads: each setting is its own process.
PROBE = ("import json, sys\n"
         "from faultbed.checkers.linearizable import check_file\n"
         "r = check_file(sys.argv[1], 'kv')\n"
         "print(json.dumps([r.valid, r.details.get('illegal_keys', []), r.details['ops'], "
         "r.details.get('segments_while_reading', 0)]))")
SHAPES = [Shape(20_000, seed=11), Shape(20_000, seed=12, broken=True), Shape(20_000, seed=13, info_rate=0.001),
          Shape(20_000, seed=14, broken=True, info_rate=0.0005),
          Shape(20_000, seed=16, broken=True, anomaly="stale")]  # found by a search, not without one


def checked(path: str, while_reading: bool) -> list[Any]:
    env = dict(os.environ, FAULTBED_SEARCH_WHILE_READING="1" if while_reading else "0")
    done = subprocess.run([sys.executable, "-c", PROBE, path], env=env, capture_output=True, text=True,
                          timeout=300, check=True)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name())
def test_searching_while_reading_gives_the_verdict_of_searching_after(shape: Shape, tmp_path: Path) -> None:
    path = generate(shape, str(tmp_path / "history.jsonl"))
    after = checked(path, while_reading=False)
    during = checked(path, while_reading=True)
    assert after[3] == 0
    assert during[:3] == after[:3]
    assert after[0] is (not shape.broken)
    if not shape.broken:  # an illegal segment found early stops the rest, but a valid history is cut all along
        assert during[3] > 0


def test_a_key_whose_calls_go_back_in_time_voids_what_was_searched_early(tmp_path: Path) -> None:
    path = Path(generate(Shape(20_000, seed=15, broken=True), str(tmp_path / "history.jsonl")))
    lines = path.read_text().splitlines()
    last = max(i for i, line in enumerate(lines) if '"invoke"' in line and '"k0"' in line)
    event = json.loads(lines[last])
    event["time"] = 1  # its interval now spans the whole history: cuts made before it was read do not hold
    lines[last] = json.dumps(event)
    path.write_text("\n".join(lines) + "\n")
    after = checked(str(path), while_reading=False)
    during = checked(str(path), while_reading=True)
    assert during == after
    assert after[0] is False and during[3] == 0
