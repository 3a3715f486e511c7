"""Seeded kv histories of any size, linearizable or not, written as faultbed JSONL.

Each of `processes` clients runs one operation after another on random keys;
every operation takes effect at a random instant between its invocation and its
completion, and a register per key applies them in that order, so reads and
cas outcomes are what a linearizable store would answer. `info` operations
(timeouts) take effect or not at random, and their process continues under a
new id, as faultbed records them. `broken=True` makes one read, about
`anomaly_at` of the way in, return a value nobody wrote: illegal, and found
without a search (checkers/porcupine/register.go impossibleRead). With
`anomaly="stale"` that read returns instead the value its key held before the
last change that completed before the read was called, while another value was
current (illegal when nothing wrote the old value meanwhile, so only a search
tells; few clients make it likely, the checker's tests check the verdict).

    python -m bench.histories OUT.jsonl --ops 100000 [--seed 1] [--broken [--stale]] [--info 0.001]
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import sys
from dataclasses import dataclass

VALUES = 5          # as faultbed's register workload: few values, as in a real run
IMPOSSIBLE = -1     # never written: a read of it is an anomaly


@dataclass(frozen=True)
class Shape:
    """What to generate."""

    ops: int
    seed: int = 1
    keys: int = 8
    processes: int = 10
    broken: bool = False
    anomaly_at: float = 0.7
    anomaly: str = "impossible"  # or "stale" (see the module's text)
    info_rate: float = 0.0
    spec: bool = True  # write spec.json beside the history (workload register: the kv model)

    def name(self) -> str:
        kind = ("bad" if self.anomaly == "impossible" else f"bad-{self.anomaly}") if self.broken else "ok"
        info = f"-info{self.info_rate:g}" if self.info_rate else ""
        return f"kv-{self.ops}-{self.keys}k-{self.processes}p-s{self.seed}{info}-{kind}"


def generate(shape: Shape, path: str) -> str:
    """Write the history to `path` (and spec.json beside it); returns the path."""
    rng = random.Random(f"bench-history:{shape.seed}")
    ops = _plan(shape, rng)
    _linearize(ops, shape)
    if shape.broken:
        _break_one_read(ops, shape)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(_lines(ops))
    if shape.spec:
        spec_path = os.path.join(os.path.dirname(os.path.abspath(path)), "spec.json")
        with open(spec_path, "w", encoding="utf-8") as fh:
            json.dump({"workload": "register", "keys": shape.keys, "concurrency": shape.processes,
                       "seed": shape.seed}, fh)
    return path


# An operation: [process, f, key, value, invoke, takes effect (or None), complete, outcome, result]
PROCESS, F, KEY, VALUE, INVOKE, EFFECT, COMPLETE, OUTCOME, RESULT = range(9)


def _plan(shape: Shape, rng: random.Random) -> list[list]:
    ops: list[list] = []
    clock = [rng.randrange(100_000) for _ in range(shape.processes)]
    ids = list(range(shape.processes))
    for n in range(shape.ops):
        worker = n % shape.processes
        invoke = clock[worker] + rng.randrange(20_000)
        duration = rng.randrange(50_000, 2_000_000) if rng.random() < 0.95 else rng.randrange(2_000_000, 20_000_000)
        complete = invoke + duration
        clock[worker] = complete
        roll = rng.random()
        f = "read" if roll < 0.5 else "write" if roll < 0.8 else "cas"
        value = None if f == "read" else rng.randrange(VALUES) if f == "write" else [rng.randrange(VALUES),
                                                                                   rng.randrange(VALUES)]
        info = shape.info_rate and rng.random() < shape.info_rate
        effect: int | None = invoke + rng.randrange(duration + 1)
        outcome = "info" if info else "ok"
        if info and rng.random() < 0.5:
            effect = None  # lost: it never happened
        ops.append([ids[worker], f, f"k{rng.randrange(shape.keys)}", value, invoke, effect, complete, outcome, None])
        if info:
            ids[worker] += shape.processes  # faultbed retires a process after info
    return ops


def _linearize(ops: list[list], shape: Shape) -> None:
    """Apply the operations in the order they take effect; reads and cas learn their answers."""
    registers: dict[str, int | None] = {}
    for op in sorted((op for op in ops if op[EFFECT] is not None), key=lambda op: op[EFFECT]):
        current = registers.get(op[KEY])
        if op[F] == "read":
            op[RESULT] = current
        elif op[F] == "write":
            registers[op[KEY]] = op[VALUE]
        elif current == op[VALUE][0]:
            registers[op[KEY]] = op[VALUE][1]
        elif op[OUTCOME] == "ok":
            op[OUTCOME] = "fail"  # cas-mismatch: certainly did not happen


def _break_one_read(ops: list[list], shape: Shape) -> None:
    start = int(len(ops) * shape.anomaly_at)
    if shape.anomaly == "impossible":
        for op in ops[start:] + ops[:start]:
            if op[F] == "read" and op[OUTCOME] == "ok":
                op[RESULT] = IMPOSSIBLE
                return
        raise ValueError("no read to break")
    if shape.anomaly != "stale":
        raise ValueError(f"unknown anomaly {shape.anomaly!r} (impossible, stale)")
    changes: dict[str, list[tuple[int, int, object]]] = {}  # key: (effect, complete, value) of each change
    for op in sorted((op for op in ops if op[EFFECT] is not None), key=lambda op: op[EFFECT]):
        if op[F] == "write" or (op[F] == "cas" and op[OUTCOME] != "fail"):
            changes.setdefault(op[KEY], []).append((op[EFFECT], op[COMPLETE],
                                                    op[VALUE] if op[F] == "write" else op[VALUE][1]))
    for op in ops[start:] + ops[:start]:
        if op[F] != "read" or op[OUTCOME] != "ok":
            continue
        done = [c for c in changes.get(op[KEY], ()) if c[1] < op[INVOKE]]  # completed before the read
        if len(done) >= 2 and done[-2][2] not in (done[-1][2], op[RESULT]):
            op[RESULT] = done[-2][2]
            return
    raise ValueError("no read to make stale")


def _lines(ops: list[list]):
    events = []
    for number, op in enumerate(ops):
        events.append((op[INVOKE], 2 * number, op, True))
        events.append((op[COMPLETE], 2 * number + 1, op, False))
    heapq.heapify(events)
    index = 0
    dumps = json.dumps
    while events:
        time, _, op, invoke = heapq.heappop(events)
        key = dumps(op[KEY])
        if invoke:
            value = dumps(op[VALUE])
            yield (f'{{"type": "invoke", "process": {op[PROCESS]}, "f": "{op[F]}", "key": {key}, '
                   f'"value": {value}, "index": {index}, "time": {time}}}\n')
        else:
            value = dumps(op[RESULT] if op[F] == "read" else op[VALUE])
            if op[OUTCOME] == "fail":
                value = "null"
            extra = ', "error": "cas-mismatch"' if op[OUTCOME] == "fail" else ""
            yield (f'{{"type": "{op[OUTCOME]}", "process": {op[PROCESS]}, "f": "{op[F]}", "key": {key}, '
                   f'"value": {value}, "node": "n1"{extra}, "index": {index}, "time": {time}}}\n')
        index += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.histories", description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--ops", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keys", type=int, default=8)
    parser.add_argument("--processes", type=int, default=10)
    parser.add_argument("--broken", action="store_true")
    parser.add_argument("--stale", action="store_true", help="with --broken: a stale read, not an impossible one")
    parser.add_argument("--info", type=float, default=0.0, help="fraction of operations that time out")
    args = parser.parse_args(argv)
    shape = Shape(args.ops, args.seed, args.keys, args.processes, args.broken, info_rate=args.info,
                  anomaly="stale" if args.stale else "impossible")
    print(generate(shape, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
