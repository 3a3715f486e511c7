"""How fast is `faultbed check`, and what do the Python bindings cost over porcupine itself?

Checks porcupine's 103 Jepsen etcd logs and 6 kv logs in one process and prints the
wall time, the time inside porcupine's search as measured by the Go side, and the
ratio; then times `faultbed check` on the Jepsen directory as a user would run it.
Goals: the Jepsen directory in under 3 s end to end; the bindings (everything but
the search, parsing included) add at most 20% to the time inside porcupine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from faultbed.checkers.formats import load_history
from faultbed.checkers.linearizable import check_imported

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("FAULTBED_CORPUS") or REPO.parent / "shared" / "corpus")
END_TO_END_GOAL_S = 3.0
OVERHEAD_GOAL = 0.20
ROUNDS = 3  # best of: the machine is shared


@dataclass(frozen=True)
class Timing:
    """One pass over a set of histories: seconds spent where."""

    histories: int
    ops: int
    wall_s: float    # read + parse + check, measured in Python
    parse_s: float   # reading and importing the files
    check_s: float   # check_imported calls: encode, ctypes, Go
    go_s: float      # inside the Go call
    search_s: float  # porcupine's search alone

    @property
    def overhead(self) -> float:
        """What everything but porcupine's search adds, relative to the search."""
        return (self.wall_s - self.search_s) / self.search_s if self.search_s else float("inf")


def time_histories(paths: list[Path]) -> Timing:
    parse = check = go = search = 0.0
    ops = 0
    started = time.perf_counter()
    for path in paths:
        before = time.perf_counter()
        history = load_history(str(path))
        parsed = time.perf_counter()
        result = check_imported(history)
        check += time.perf_counter() - parsed
        parse += parsed - before
        go += result.details["go_ms"] / 1000
        search += result.details["porcupine_ms"] / 1000
        ops += result.details["ops"]
    return Timing(len(paths), ops, time.perf_counter() - started, parse, check, go, search)


def best_of(paths: list[Path]) -> Timing:
    return min((time_histories(paths) for _ in range(ROUNDS)), key=lambda t: t.wall_s)


def end_to_end_seconds(directory: Path) -> float:
    """`faultbed check DIR` in a fresh interpreter, as a user runs it."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "faultbed", "check", str(directory)], cwd=REPO,
                   stdout=subprocess.DEVNULL, check=False, timeout=120)
    return time.perf_counter() - started


def report(name: str, t: Timing) -> str:
    return (f"{name:8} {t.histories:4} histories {t.ops:6} ops  wall {t.wall_s * 1000:7.1f} ms  "
            f"(parse {t.parse_s * 1000:6.1f}, bindings+Go {t.check_s * 1000:6.1f}, inside Go {t.go_s * 1000:6.1f})  "
            f"porcupine {t.search_s * 1000:7.1f} ms  ratio {t.wall_s / t.search_s:5.2f}")


def main() -> int:
    jepsen = sorted((CORPUS / "porcupine" / "jepsen").glob("*.log"))
    kv = sorted((CORPUS / "porcupine" / "kv").glob("*.txt"))
    if len(jepsen) != 103 or len(kv) != 6:
        print(f"checker: corpus not found at {CORPUS} (set FAULTBED_CORPUS)")
        return 1
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} on {os.cpu_count()} CPUs (timings are wall clock: a busy machine slows both sides)")
    time_histories(jepsen[:3])  # load the library and warm up the caches
    timings = {"jepsen": best_of(jepsen), "kv": best_of(kv), "both": best_of(jepsen + kv)}
    for name, timing in timings.items():
        print(report(name, timing))
    overhead = timings["both"].overhead
    end_to_end = min(end_to_end_seconds(CORPUS / "porcupine" / "jepsen") for _ in range(ROUNDS))
    print(f"overhead over porcupine's search (parse + bindings): {overhead * 100:.1f}% "
          f"(goal <= {OVERHEAD_GOAL * 100:.0f}%)")
    print(f"`faultbed check` on the Jepsen directory, end to end: {end_to_end:.2f} s "
          f"(goal < {END_TO_END_GOAL_S:.0f} s)")
    met = overhead <= OVERHEAD_GOAL and end_to_end < END_TO_END_GOAL_S
    print("checker: goals met" if met else "checker: GOALS MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
