"""Fuzzing the Maelstrom checkers: histories of their operations with any JSON in values, ids and nodes.

Every checker must give a verdict (a Result whose details are JSON) and never raise, whatever a node
answered or a foreign history holds.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faultbed import plugins
from tests.fuzz.inputs import json_values
from tests.fuzz.test_fuzz import EXAMPLES

CHECKERS = ("echo", "unique-ids", "broadcast", "g-set", "counter")
FS = ("echo", "generate", "broadcast", "add", "read", "topology")
odd_values = json_values | st.sampled_from([2**63, -2**70, 1e300, float("nan"), [1, [2, [3]]], "n1", -1, 0])
operations = st.lists(st.tuples(st.booleans(), st.sampled_from(FS), odd_values,
                                st.sampled_from(("ok", "fail", "info", None)), odd_values,
                                st.sampled_from(("n1", "n2", None, 5, ""))), max_size=20)


LOADED = {name: plugins.load("checkers", name) for name in CHECKERS}


def to_events(ops: list[tuple[bool, str, Any, str | None, Any, Any]]) -> list[dict[str, Any]]:
    """Each operation on its own process (final ones from 1,000,000); None leaves it open."""
    events: list[dict[str, Any]] = []
    for number, (final, f, value, outcome, result, node) in enumerate(ops):
        process = number + (1_000_000 if final else 0)
        events.append({"type": "invoke", "process": process, "f": f, "value": value})
        if outcome is not None:
            events.append({"type": outcome, "process": process, "f": f, "value": result, "node": node})
    for index, event in enumerate(events):
        event.update(index=index, time=index * 1000)
    return events


@settings(max_examples=max(20, EXAMPLES // 2), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_maelstrom_checkers_judge_any_values_without_raising(ops: list[Any]) -> None:
    events = to_events(ops)
    for name, checker in LOADED.items():
        result = checker.check(events, None, None)
        assert result.valid in (True, False, "unknown"), (name, result)
        assert result.summary, name
        json.dumps(result.to_json(), default=str)
