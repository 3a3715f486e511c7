"""Properties of the porcupine checker on generated faultbed histories.

Histories come from a simulated linearizable key-value store: every operation
takes effect at a random point of its interval, some outcomes are then lost
(info). Those are always valid. Mutated histories must get the verdict of a
small exhaustive checker written here, independently of porcupine.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faultbed.checkers.linearizable import check_history
from faultbed.checkers.result import UNKNOWN, Valid

KEYS = ("a", "b")
VALUES = (0, 1, 2)
INFINITY = float("inf")


@dataclass(frozen=True)
class SimOp:
    """One client operation as recorded: type is ok, fail or info."""

    f: str
    key: str
    value: Any  # write value, cas [from, to], or what a read saw
    call: int
    ret: float  # infinity for an unknown outcome in the exhaustive search
    type: str


@st.composite
def linearizable_histories(draw: st.DrawFn, max_ops: int = 7, keys: tuple[str, ...] = KEYS) -> list[SimOp]:
    """Operations on a simulated store, each taking effect at a point inside its interval."""
    n = draw(st.integers(1, max_ops))
    times = draw(st.lists(st.integers(0, 1000), min_size=2 * n, max_size=2 * n, unique=True))
    planned: list[tuple[float, str, str, Any, int, int, bool]] = []
    for i in range(n):
        call, ret = sorted(times[2 * i: 2 * i + 2])
        point = draw(st.floats(call, ret, allow_nan=False)) + i * 1e-9  # distinct points
        f = draw(st.sampled_from(("read", "write", "cas")))
        arg: Any = draw(st.sampled_from(VALUES)) if f == "write" else [draw(st.sampled_from(VALUES)) for _ in "ft"]
        lost = draw(st.integers(0, 3)) == 0  # the client never learned the outcome
        planned.append((point, f, draw(st.sampled_from(keys)), arg, call, ret, lost))
    state: dict[str, Any] = {}
    ops = []
    for point, f, key, arg, call, ret, lost in sorted(planned, key=lambda p: p[0]):
        if f == "read":
            ops.append(SimOp(f, key, state.get(key), call, ret, "info" if lost else "ok"))
        elif f == "write":
            state[key] = arg
            ops.append(SimOp(f, key, arg, call, ret, "info" if lost else "ok"))
        else:
            swapped = state.get(key) == arg[0]
            if swapped:
                state[key] = arg[1]
            ops.append(SimOp(f, key, arg, call, ret, "info" if lost else ("ok" if swapped else "fail")))
    return ops


def to_events(ops: list[SimOp]) -> list[dict[str, Any]]:
    """faultbed history events, one process per operation, in time order."""
    events: list[dict[str, Any]] = []
    for process, op in enumerate(ops):
        invoke_value = None if op.f == "read" else op.value
        events.append({"type": "invoke", "process": process, "f": op.f, "key": op.key,
                       "value": invoke_value, "time": op.call})
        completion_value = None if op.type == "info" else op.value
        events.append({"type": op.type, "process": process, "f": op.f, "key": op.key,
                       "value": completion_value, "time": op.ret})
    events.sort(key=lambda e: int(e["time"]))
    for index, event in enumerate(events):
        event["index"] = index
    return events


def exhaustively_linearizable(ops: list[SimOp]) -> bool:
    """Jepsen's semantics by brute force: ok ops happen, fail ops do not, each info op
    either happens (somewhere after its call) or not; try every order."""
    happened = [op for op in ops if op.type == "ok"]
    unknown = [op for op in ops if op.type == "info" and op.f != "read"]
    for count in range(len(unknown) + 1):
        for chosen in itertools.combinations(unknown, count):
            candidates = happened + [replace(op, ret=INFINITY) for op in chosen]
            if _some_order_is_legal(candidates, {}, set()):
                return True
    return False


def _some_order_is_legal(ops: list[SimOp], state: dict[str, Any], done: set[int]) -> bool:
    if len(done) == len(ops):
        return True
    pending = [i for i in range(len(ops)) if i not in done]
    deadline = min(ops[i].ret for i in pending)
    for i in pending:
        op = ops[i]
        if op.call > deadline:
            continue  # some pending op returned before this one was called
        next_state = _step(state, op)
        if next_state is not None and _some_order_is_legal(ops, next_state, done | {i}):
            return True
    return False


def _step(state: dict[str, Any], op: SimOp) -> dict[str, Any] | None:
    current = state.get(op.key)
    if op.f == "read":
        return state if current == op.value else None
    if op.f == "write":
        return {**state, op.key: op.value}
    if current == op.value[0]:
        return {**state, op.key: op.value[1]}
    return None if op.type == "ok" else state  # an unknown cas that found another value: no effect


@st.composite
def mutated_histories(draw: st.DrawFn) -> list[SimOp]:
    ops = list(draw(linearizable_histories(max_ops=6)))
    for _ in range(draw(st.integers(1, 2))):
        i = draw(st.integers(0, len(ops) - 1))
        op = ops[i]
        mutation = draw(st.sampled_from(("value", "value", "type", "time")))
        if mutation == "value" and op.f == "cas":
            ops[i] = replace(op, value=[draw(st.sampled_from(VALUES)), op.value[1]])
        elif mutation == "value":
            others = [v for v in (None,) + VALUES if v != op.value]
            ops[i] = replace(op, value=draw(st.sampled_from(others)))
        elif mutation == "type":
            ops[i] = replace(op, type=draw(st.sampled_from(("ok", "fail", "info"))))
        else:
            shift = draw(st.integers(-300, 300))
            ops[i] = replace(op, call=op.call + shift, ret=op.ret + shift)
    return _with_distinct_times(ops)


def _with_distinct_times(ops: list[SimOp]) -> list[SimOp]:
    """Shifts can make times collide; spread them so the event order is unambiguous."""
    return [replace(op, call=op.call * 16 + i, ret=op.ret * 16 + 8 + i) for i, op in enumerate(ops)]


PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def expected_verdict(ops: list[SimOp]) -> Valid:
    """The exhaustive verdict, except that a history where no operation completed (ok) proves nothing."""
    if not any(op.type == "ok" for op in ops):
        return UNKNOWN
    return exhaustively_linearizable(ops)


@PROPERTY_SETTINGS
@given(linearizable_histories())
def test_histories_of_a_linearizable_store_are_valid(ops: list[SimOp]) -> None:
    result = check_history(to_events(ops), model="kv")
    assert result.valid == expected_verdict(ops) and result.valid is not False, f"{ops} -> {result.details}"


@PROPERTY_SETTINGS
@given(linearizable_histories(keys=("a",)))
def test_single_key_histories_are_valid_for_a_cas_register(ops: list[SimOp]) -> None:
    result = check_history(to_events(ops), model="cas-register")
    assert result.valid == expected_verdict(ops) and result.valid is not False, f"{ops} -> {result.details}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_histories())
def test_mutated_histories_agree_with_an_exhaustive_checker(ops: list[SimOp]) -> None:
    expected = expected_verdict(ops)
    result = check_history(to_events(ops), model="kv")
    assert result.valid == expected, f"exhaustive: {expected}, porcupine: {result.valid} for {ops}"


@PROPERTY_SETTINGS
@given(mutated_histories(), st.sampled_from((2**63 - 1, 2**62)))
def test_times_near_the_end_of_int64_keep_the_exhaustive_verdict(ops: list[SimOp], end: int) -> None:
    """Shifted so the latest event sits at `end`: porcupine's "infinity" must not wrap around (issue 17)."""
    latest = max(max(op.call, op.ret if op.type == "ok" else op.call) for op in ops)
    shifted = [replace(op, call=op.call - latest + end, ret=op.ret - latest + end) for op in ops]
    result = check_history(to_events(shifted), model="kv")
    assert result.valid == expected_verdict(ops), f"{shifted} -> {result.details}"
