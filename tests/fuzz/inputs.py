"""Generated bad inputs for the fuzz tests: histories in every format, run files, flag values.

Each generator starts from something close to valid (a real history, a real spec) and breaks
it in the ways users and crashes do: wrong types, torn lines, deep nesting, huge integers,
bad escapes, binary garbage, NaN and infinity.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from tests.checkers.test_linearizable_properties import linearizable_histories, to_events

HUGE_DIGITS = "9" * 4400  # more than Python's 4,300-digit int limit
NASTY_TEXT = ["nan", "NaN", "inf", "-inf", "Infinity", "1e309", "-1e309", "0", "-0", "-1", "1e-320", "",
              " ", "0x10", "1_000", "\u0661\u0662", "1/0", "9" * 5000, "-" + "9" * 5000, "1e9", "2147483648",
              "18446744073709551616", "3.5", "true", "null", "[]", "{}", "\x00", "é", "1 2"]

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6)


@st.composite
def broken_bytes(draw: st.DrawFn, text: str) -> bytes:
    """`text` as UTF-8, then maybe cut, spliced with garbage, or flipped at a few bytes."""
    data = bytearray(text.encode("utf-8", "surrogatepass"))
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(("cut", "insert", "flip", "none")))
        position = draw(st.integers(0, len(data)))
        if action == "cut":
            del data[position:]
        elif action == "insert":
            data[position:position] = draw(st.sampled_from(
                [b"\xff\xfe", b"\x00", b"\n", b"[" * 3000, b"{", b'"\\uzz"', HUGE_DIGITS.encode(), b"NaN", b"\r\n",
                 b"\xe2\x80\xa8", b"}", b"]"]))
        elif action == "flip" and data:
            index = min(position, len(data) - 1)
            data[index] = draw(st.integers(0, 255))
    return bytes(data)


@st.composite
def faultbed_history(draw: st.DrawFn) -> bytes:
    """A real history's events with fields replaced by odd JSON, odd lines added, then broken bytes."""
    events = to_events(draw(linearizable_histories(max_ops=4)))
    lines = []
    for event in events:
        if draw(st.integers(0, 4)) == 0:
            field = draw(st.sampled_from(("type", "process", "f", "key", "value", "time", "index")))
            event[field] = draw(json_values | st.sampled_from(
                [[1], {"a": 1}, 2**63 - 1, 2**63, -2**63 - 1, 10**30, "nemesis", "invoke", True, None]))
        try:
            lines.append(json.dumps(event))
        except ValueError:
            lines.append(str(event))
    for _ in range(draw(st.integers(0, 2))):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from([
            "[" * 5000 + "]" * 5000, '{"type": "invoke", "process": 1, "f": "w", "time": ' + HUGE_DIGITS + "}",
            '{"type": "ok", "process": 1, "f": "write", "value": "\\uzz", "time": 3}', "{}", "[]", "null", "",
            '{"type": "invoke", "process": 1, "f": "write", "key": "a", "value": 1, "time": 9223372036854775807}',
            '{"type": "info", "process": "nemesis", "f": "start-partition", "value": {"1": [2]}, "time": 5}',
            json.dumps({"type": "invoke", "process": 7, "f": "write", "key": "k", "value": 1, "time": 1})])))
    return draw(broken_bytes("\n".join(lines) + draw(st.sampled_from(["\n", ""]))))


EDN_TYPES = [":invoke", ":ok", ":fail", ":info", ":weird", "1", "nil", '"ok"']
EDN_PROCESSES = ["0", "1", "2", ":nemesis", "[1]", "{}", HUGE_DIGITS, "1/0", '"p"', "-1", "1.5", "nil"]
EDN_FS = [":read", ":write", ":cas", ":txn", ":acquire", ":release", ":enqueue", ":dequeue", "[:x]", "1", ":start"]
EDN_VALUES = ["1", "2", "nil", "[1 2]", "1/0", HUGE_DIGITS, '"\\uzz"', '"\\u12"', "\\u12", '#inst "x"', "#_ 1 2",
              "{1 2 :a 3}", "1e999", "1.5M", "12N", "#{1 2}", "(1 2)", "[" * 200 + "]" * 200, "[" * 100,
              "99999999999999999999/3", "\\newline", "[[:r :x nil] [:w :y 1]]", ":timed-out"]


@st.composite
def edn_history(draw: st.DrawFn) -> bytes:
    """Jepsen-style maps whose parts are drawn from odd EDN, in a vector or one per line."""
    entries = []
    for _ in range(draw(st.integers(0, 8))):
        parts = [f":type {draw(st.sampled_from(EDN_TYPES))}", f":process {draw(st.sampled_from(EDN_PROCESSES))}",
                 f":f {draw(st.sampled_from(EDN_FS))}", f":value {draw(st.sampled_from(EDN_VALUES))}"]
        kept = draw(st.lists(st.sampled_from(parts), min_size=2, max_size=4, unique=True))
        entries.append("{" + ", ".join(kept) + "}")
    text = "\n".join(entries)
    if draw(st.booleans()):
        text = "[" + text + "]"
    return draw(broken_bytes(text + "\n"))


@st.composite
def etcd_log(draw: st.DrawFn) -> bytes:
    """porcupine's Jepsen etcd log lines with odd processes, types, functions and values."""
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        process = draw(st.sampled_from(["0", "1", "2", HUGE_DIGITS, "-1", "x", ""]))
        type_ = draw(st.sampled_from(["invoke", "ok", "fail", "info", "timeout"]))
        f = draw(st.sampled_from(["read", "write", "cas", "foo", "r-w"]))
        value = draw(st.sampled_from(["nil", "1", "[1 2]", "[1 2", ":timed-out", HUGE_DIGITS, '"x"', "", "-7",
                                      f"[{HUGE_DIGITS} 1]"]))
        lines.append(f"INFO  jepsen.util - {process}\t:{type_}\t:{f}\t{value}")
    return draw(broken_bytes("\n".join(lines) + "\n"))


@st.composite
def kv_log(draw: st.DrawFn) -> bytes:
    """porcupine's kv log lines (one EDN map per line) with odd parts."""
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        process = draw(st.sampled_from(["0", "1", HUGE_DIGITS, "[1]", ":p", "nil"]))
        type_ = draw(st.sampled_from([":invoke", ":ok", ":fail", ":info", ":x", "1"]))
        f = draw(st.sampled_from([":get", ":put", ":append", ":x", "[:get]"]))
        key = draw(st.sampled_from(['"a"', '"b"', '"\\uzz"', "1", "nil", "[1]", '"a\\"b"']))
        value = draw(st.sampled_from(["nil", '"x"', '"y"', "1", HUGE_DIGITS, '"\\u00e9"', "{1 2}"]))
        lines.append(f"{{:process {process}, :type {type_}, :f {f}, :key {key}, :value {value}}}")
    return draw(broken_bytes("\n".join(lines) + "\n"))


HISTORY_FORMATS = {".jsonl": faultbed_history(), ".edn": edn_history(), ".log": etcd_log(), ".txt": kv_log()}


@st.composite
def any_history(draw: st.DrawFn) -> tuple[str, bytes]:
    """(file suffix, content) of a bad history in one of the supported formats."""
    suffix = draw(st.sampled_from(sorted(HISTORY_FORMATS)))
    return suffix, draw(HISTORY_FORMATS[suffix])


def good_spec(store: str) -> dict[str, Any]:
    from faultbed.spec import TestSpec

    return TestSpec(store=store, time_limit=1, seed=3).to_json()


@st.composite
def broken_document(draw: st.DrawFn, good: dict[str, Any]) -> bytes:
    """A JSON document near `good`: a field replaced, removed or added, or the whole thing odd."""
    document: Any = dict(good)
    action = draw(st.sampled_from(("replace", "replace", "remove", "add", "whole")))
    if action == "whole":
        document = draw(json_values)
    elif action == "remove" and document:
        document.pop(draw(st.sampled_from(sorted(document))))
    elif action == "add":
        document[draw(st.text(max_size=6))] = draw(json_values)
    elif document:
        document[draw(st.sampled_from(sorted(document)))] = draw(json_values | st.sampled_from(
            [float("nan"), float("inf"), 2**70, -1, 0, [], {}, "", [1], ["partition", 1], 1e9]))
    text = json.dumps(document, default=str)
    return text.encode() if draw(st.booleans()) else draw(broken_bytes(text))


NUMERIC_RUN_FLAGS = ["--nodes", "--concurrency", "--keys", "--rate", "--time-limit", "--nemesis-interval",
                     "--op-timeout", "--seed", "--disk-writeback"]
number_text = st.one_of(st.sampled_from(NASTY_TEXT), st.integers(-2**70, 2**70).map(str),
                        st.floats(allow_nan=True, allow_infinity=True).map(repr))


STRING_RUN_FLAGS = {
    "--system": ["raftkv", "broker", "", "os:system", "json:dumps", "nosuch", "x.toml", "/dev/null", "a:b:c", ":",
                 "faultbed.cli:main", "tests.fuzz.inputs:NASTY_TEXT"],
    "--workload": ["register", "queue", "idempotency", "", "nosuch", "os:system"],
    "--backend": ["local", "docker", "", "x", "os:system"],
    "--nemesis": ["", "none", ",", "partition:", "kill:n99", "latency:abc", "partition,partition", "pause:all",
                  "x" * 1000, "partition-ring", "bandwidth:n1:-1", "kill:n1,kill:n1", "latency:nan", "\x00"],
    "--bug": ["", "x", "stale-reads", "ack-before-replicate"],
    "--partition-mode": ["blackhole", "reject", "x"],
}


@st.composite
def run_flags(draw: st.DrawFn) -> list[str]:
    """1-3 numeric flags of `faultbed run` with odd values, and sometimes odd names and fault lists."""
    argv: list[str] = []
    for flag in draw(st.lists(st.sampled_from(NUMERIC_RUN_FLAGS), min_size=1, max_size=3, unique=True)):
        argv += [flag, draw(number_text)]
    for flag in draw(st.lists(st.sampled_from(sorted(STRING_RUN_FLAGS)), max_size=3, unique=True)):
        argv += [flag, draw(st.sampled_from(STRING_RUN_FLAGS[flag]) | st.text(max_size=12))]
    return argv


@st.composite
def string_run_flags(draw: st.DrawFn) -> list[str]:
    """Names and fault lists only: the numbers stay valid, so the string checks are what is tested."""
    argv: list[str] = []
    for flag in draw(st.lists(st.sampled_from(sorted(STRING_RUN_FLAGS)), min_size=1, max_size=4, unique=True)):
        argv += [flag, draw(st.sampled_from(STRING_RUN_FLAGS[flag]) | st.text(max_size=12))]
    return argv
