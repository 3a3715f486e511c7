"""`faultbed check` at scale, beside porcupine alone, measured in the same run.

Histories: seeded kv histories (bench/histories.py: 8 keys, 10 processes) of
10k, 100k and 1M operations, and porcupine's 103 Jepsen etcd logs. Each is
checked by `faultbed check` as a user runs it (a fresh process: wall clock and
peak resident memory from wait4) and by porcupine alone (bench/porcupine_reference:
porcupine's own API from Go, the Jepsen logs with porcupine's own test code, one
after another in one process). "outside" is what the user waits for beside
porcupine's search: the wall time of the check inside the process (from Python's
call to the verdict: reading, parsing, converting, the call) minus the search's
wall time, relative to the search's wall time. The search's wall time is the time
during which porcupine was searching some segment: a faultbed history is searched
while Go reads it (checkers/porcupine/stream.go), so part of it overlaps the reading,
and only what the user waits for outside any search counts as outside. Wall time, not CPU, because that is
the cost a user sees; Python's start-up is left out of it (it is in the wall
column, and `check --help` measures it alone, beside `python -c pass`, the interpreter's own start-up).
Each kv history is checked 21 times (10k), 3 (100k) or 2 (1M) in turns with porcupine alone; the row is
faultbed's run of least wall time, and a line below it gives `outside` over every run (least, median,
most): a small check's outside varies by half from run to run on a virtual machine, so the goal is
judged on the median (of 3 runs or more); below it, the median of each of its parts (`faultbed
check --json`'s times: Python's, Go's before the first search, between searches, after the last).
The row checks the history file alone (`faultbed check FILE`: the goal's reading, parsing and call);
in the same turns the same history is checked as a run's (spec.json beside it), whose outside also
holds reading the spec and looking the workload's checkers up in the registry, in Python beside Go:
printed below the row, not judged by the goal.
Every history is read once before each measured run, untimed (warm: this machine's kernel drops file
pages it finds cold within a minute or two, and a run that found them gone read the disk where the
next, in turn, did not); below the table, the largest history is checked once more from a cold page cache, by
each side, and then by a run's own check as a run directory (`check_run`: every checker of its
workload, results.json and report.html), as `faultbed run` checks a run at its end.
The Python modules are compiled to bytecode first, as an installed faultbed's are
($PYTHONDONTWRITEBYTECODE would otherwise make every start-up compile them again).

    python -m bench checker            # everything (the 1M history is generated once, cached)
    FAULTBED_BENCH_SIZES=10000,100000 python -m bench checker
    FAULTBED_BENCH_SIZES= python -m bench checker     # the Jepsen logs and start-up only
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.histories import Shape

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("FAULTBED_CORPUS") or REPO.parent / "shared" / "corpus")
CACHE = REPO / ".tools" / "bench"
REFERENCE = CACHE / "porcupine_reference"
FAULTBED = [sys.executable, "-m", "faultbed"]
SIZES = tuple(int(n) for n in os.environ.get("FAULTBED_BENCH_SIZES", "10000,100000,1000000").split(",") if n)
REFERENCE_CAP_GB = 3.0  # porcupine alone needs ~12 GB for 1M operations: stop it before it takes the machine
GENERATOR_VERSION = 1   # part of the cache's name: bump when bench/histories.py changes what it writes

WALL_GOAL_S = {100_000: 1.5, 1_000_000: 10.0}
MEMORY_GOAL_MB = {1_000_000: 1536}
OUTSIDE_GOAL = 0.20
START_GOAL_S = 0.150
PARTS = {"python_ms": "Python's (sniff, request, call)", "before_search_ms": "Go's before the first search",
         "between_searches_ms": "between searches (a cut segment waiting for a CPU, or for the reading's next cut)",
         "after_search_ms": "after the last"}  # `faultbed check --json`'s times: outside, part by part


@dataclass(frozen=True)
class Run:
    """One process: how long, how big, and what it said."""

    wall_s: float
    peak_mb: float
    out: str
    code: int
    cpu_s: float  # user + system: steadier than the wall clock on a shared machine


def measure(argv: list[str], timeout: float = 600) -> Run:
    """Run argv to the end; wall clock and the child's peak resident set (wait4)."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    killer = threading.Timer(timeout, child.kill)
    killer.start()
    try:
        assert child.stdout is not None
        out = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)  # reaped here, not by Popen: wait4 reports its peak memory
        child.returncode = os.waitstatus_to_exitcode(status)
    finally:
        killer.cancel()
    return Run(time.perf_counter() - started, usage.ru_maxrss / 1024, out, child.returncode,
               usage.ru_utime + usage.ru_stime)


def warm(paths: tuple[Path, ...]) -> None:
    """Read the files once, untimed, so that a measured run reads them from the page cache, both sides
    alike. This machine's kernel reclaims file pages it finds cold (kdamond): a file read every 0.2 s
    still lost a few pages every few seconds, and the 1M history went from 224 MB resident to 16 MB in
    90 s idle. Whichever side ran first after that read the disk for the other. Wholly cold (its pages
    dropped), the 1M check took 1.02-1.05 s against 0.86-0.92 s cached; 3-8 % resident as the kernel
    left it, no longer than cached. `cold` measures the wholly cold case on its own."""
    for path in paths:
        with open(path, "rb") as file:
            while file.read(1 << 20):
                pass


def evict(path: Path) -> None:
    """Drop the file's pages from the page cache (they are clean: nothing is lost)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(descriptor)


def best(argv: list[str], rounds: int) -> Run:
    return min((measure(argv) for _ in range(rounds)), key=lambda r: r.wall_s)


def paired(ours: list[str], theirs: list[str], rounds: int, their_rounds: int | None = None,
           also: list[str] | None = None, read: tuple[Path, ...] = ()) -> tuple[Run, Run, list[Run], list[Run]]:
    """Best of rounds each, taken in turns: the machine's load changes under both alike; all of ours;
    and every run of `also` (a third command, in the same turns). The files `read` are warmed before
    each run."""
    mine: list[Run] = []
    others: list[Run] = []
    third: list[Run] = []
    for round_ in range(rounds):
        warm(read)
        mine.append(measure(ours))
        if also is not None:
            warm(read)
            third.append(measure(also))
        if round_ < (rounds if their_rounds is None else their_rounds):
            warm(read)
            others.append(measure(theirs))
    return min(mine, key=lambda r: r.wall_s), min(others, key=lambda r: r.wall_s), mine, third


def history_file(ops: int) -> Path:
    """The seeded history of `ops` operations as a file alone (no spec.json beside it: `faultbed check`
    checks it with the kv model, Go alone), a hard link to the run directory's."""
    run = history(ops)
    path = run.parent.with_name(run.parent.name + "-file") / "history.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.link(run, path)
    return path


def history(ops: int) -> Path:
    """The seeded history of `ops` operations, generated once."""
    shape = Shape(ops, seed=1)
    path = CACHE / f"v{GENERATOR_VERSION}-{shape.name()}" / "history.jsonl"
    if not path.exists():
        print(f"  (generating {shape.name()} once: {path})", flush=True)
        partial = path.with_suffix(".partial")
        # in a child: a process's peak memory (wait4) starts from its parent's at the fork, and the
        # generator holds the whole history in memory (600 MB for 1M operations)
        subprocess.run([sys.executable, "-m", "bench.histories", str(partial), "--ops", str(shape.ops),
                        "--seed", str(shape.seed)], cwd=REPO, check=True, timeout=1800)
        partial.rename(path)
    return path


def reference() -> Path:
    """Build porcupine alone (bench/porcupine_reference) when its sources are newer."""
    sources = list((REPO / "bench" / "porcupine_reference").iterdir())
    if REFERENCE.exists() and all(s.stat().st_mtime <= REFERENCE.stat().st_mtime for s in sources):
        return REFERENCE
    go = shutil.which("go") or "/usr/local/go/bin/go"
    subprocess.run([go, "build", "-o", str(REFERENCE), "."], cwd=REPO / "bench" / "porcupine_reference",
                   check=True, timeout=300)
    return REFERENCE


@dataclass(frozen=True)
class Row:
    name: str
    ops: int
    ours: Run
    search_s: float
    outside: float     # (faultbed's time with the history - search) / search
    verdict: Any
    theirs: Run
    their_search_s: float
    their_verdict: str
    outside_spread: list[float] = dataclasses.field(default_factory=list)  # every run's, sorted
    outside_ms: float = 0.0  # the median run's outside in milliseconds (the ratio's numerator)
    run_outside_spread: list[float] = dataclasses.field(default_factory=list)  # as a run's history
    outside_parts: dict[str, float] = dataclasses.field(default_factory=dict)  # each part's median, ms (`times`)


def kv_row(ops: int) -> Row:
    """The history file checked alone (the goal's case: reading, parsing, the call), and in turns with
    it the same history as a run's (spec.json beside it: `faultbed check` also reads the spec and looks
    the workload's checkers up in the registry, in Python, beside Go's reading and searching)."""
    path = history_file(ops)
    rounds = 2 if ops >= 1_000_000 else 3 if ops >= 100_000 else 21  # a small check varies most from run to run
    ours, theirs, every, as_run = paired([*FAULTBED, "check", "--json", str(path)],
                                         reference_kv(path), rounds, 1 if ops >= 1_000_000 else 3,
                                         also=[*FAULTBED, "check", "--json", str(history(ops))],
                                         read=(path,))  # history(ops) is the same file (a hard link)
    answer = _answer(ours)
    search = answer["porcupine_ms"] / 1000
    outside = _outside(answer)
    answers = [_answer(run) for run in every]
    spread = sorted(_outside(a) for a in answers)
    outside_ms = _median(sorted(a["elapsed_ms"] - a["porcupine_ms"] for a in answers))
    timed = [a["times"] for a in answers if "times" in a]
    parts = {part: _median(sorted(t[part] for t in timed)) for part in PARTS} if timed else {}
    run_spread = sorted(_outside(_answer(run)) for run in as_run)
    if not theirs.out.strip():  # killed by measure's timeout (a machine at load 170 got there)
        return Row(f"kv {ops // 1000}k", answer["ops"], ours, search, outside, answer["valid"], theirs, 0.0,
                   "no answer", spread, outside_ms, run_spread, parts)
    report = json.loads(theirs.out)
    return Row(f"kv {ops // 1000}k", answer["ops"], ours, search, outside, answer["valid"], theirs,
               report["search_ms"] / 1000, their_verdict(theirs), spread, outside_ms, run_spread, parts)


def reference_kv(path: Path) -> list[str]:
    """porcupine alone on a kv history, stopped at REFERENCE_CAP_GB."""
    return [str(reference()), "kv", "-max-gb", str(REFERENCE_CAP_GB), str(path)]


def their_verdict(run: Run) -> str:
    """What porcupine alone said of a kv history."""
    if not run.out.strip():  # killed by measure's timeout
        return "no answer"
    report = json.loads(run.out)
    return "stopped at cap" if report.get("exceeded") else "valid" if report["ok"] else "INVALID"


def _answer(run: Run) -> dict[str, Any]:
    """`faultbed check --json FILE`'s answer: its last line."""
    return json.loads(run.out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _outside(answer: dict[str, Any]) -> float:
    search = answer["porcupine_ms"] / 1000
    return (answer["elapsed_ms"] / 1000 - search) / search


def jepsen_row() -> Row | None:
    directory = CORPUS / "porcupine" / "jepsen"
    logs = sorted(directory.glob("*.log"))
    if len(logs) != 103:
        print(f"checker: porcupine's Jepsen logs not found at {directory} (set FAULTBED_CORPUS)")
        return None
    ours, theirs, _, _ = paired([*FAULTBED, "check", str(directory)], [str(reference()), "jepsen", *map(str, logs)], 5,
                                read=tuple(logs))
    detail = measure([*FAULTBED, "check", "--json", str(directory)])
    answers = [json.loads(line) for line in detail.out.splitlines() if line.startswith("{")]
    search = sum(a.get("porcupine_ms") or 0 for a in answers) / 1000
    inside = sum(a["elapsed_ms"] for a in answers) / 1000
    invalid = sum(a.get("valid") is False for a in answers)
    report = json.loads(theirs.out)
    return Row("jepsen 103", sum(a.get("ops") or 0 for a in answers), ours, search, (inside - search) / search,
               f"{invalid} invalid", theirs, report["search_ms"] / 1000, f"{report['illegal']} invalid")


RUN_CHECK = """
import sys, time
from faultbed import plugins
from faultbed.run_files import read_spec
from faultbed.runner import check_run
spec = read_spec(sys.argv[1])
started = time.perf_counter()
outcome = check_run(spec, plugins.workload(spec.workload), sys.argv[1])
print(f"{time.perf_counter() - started:.2f} s:", ", ".join(f"{r.checker} {r.valid}" for r in outcome.results))
"""


def run_check(ops: int) -> str:
    """A run's own check of the kv history as a run directory (check_run: every checker of its workload,
    results.json and report.html; no Raft traces), in a fresh process, in a temporary directory."""
    import tempfile

    path = history(ops)
    with tempfile.TemporaryDirectory(prefix="faultbed-bench-run-") as run_dir:
        os.symlink(path, os.path.join(run_dir, "history.jsonl"))
        shutil.copy(path.parent / "spec.json", run_dir)
        warm((path,))
        run = measure([sys.executable, "-c", RUN_CHECK, run_dir], timeout=1800)
    said = run.out.strip().splitlines()[-1] if run.out.strip() else f"no answer (exit {run.code})"
    return (f"a run's own check (check_run, its report included) of kv {ops // 1000}k: {run.wall_s:.2f} s wall, "
            f"{run.peak_mb:.0f} MB peak; inside check_run {said}")


def cold(ops: int) -> str:
    """The history checked from a cold page cache (its pages dropped first), by each side once: what a
    check of a history that has not been read for a while costs on this machine."""
    path = history_file(ops)
    evict(path)
    ours = measure([*FAULTBED, "check", "--json", str(path)])
    evict(path)
    theirs = measure(reference_kv(path))
    answer = _answer(ours)
    outside_ms = answer["elapsed_ms"] - answer["porcupine_ms"]
    return (f"kv {ops // 1000}k from a cold page cache (the file's pages dropped before each): faultbed check "
            f"{ours.wall_s:.2f} s, outside {_outside(answer) * 100:.0f}% ({outside_ms:.0f} ms); "
            f"porcupine alone {theirs.wall_s:.2f} s, {their_verdict(theirs)}")


def start_up() -> dict[str, Run]:
    """`python -c pass`, `faultbed check --help` and `faultbed --version`: best of 7 each, in turns."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "compileall", "-q", "faultbed", "checkers", "cluster", "nemesis"],
                   cwd=REPO, env=env, check=False, stdout=subprocess.DEVNULL, timeout=300)
    argvs = {"python -c pass": [sys.executable, "-c", "pass"], "faultbed check --help": [*FAULTBED, "check", "--help"],
             "faultbed --version": [*FAULTBED, "--version"]}
    runs: dict[str, list[Run]] = {name: [] for name in argvs}
    for _ in range(7):
        for name, argv in argvs.items():
            runs[name].append(measure(argv))
    return {name: min(these, key=lambda r: r.wall_s) for name, these in runs.items()}


def table(rows: list[Row]) -> str:
    lines = [f"{'history':11} {'ops':>7} | {'faultbed check: wall':>20} {'cpu':>7} {'peak':>8} {'search':>7} "
             f"{'outside':>7} {'verdict':>10} | {'porcupine alone: wall':>21} {'cpu':>7} {'peak':>8} {'search':>7} "
             f"{'verdict':>14}"]
    for r in rows:
        lines.append(f"{r.name:11} {r.ops:7} | {r.ours.wall_s:18.2f} s {r.ours.cpu_s:5.2f} s {r.ours.peak_mb:5.0f} MB "
                     f"{r.search_s:5.2f} s {r.outside * 100:6.0f}% {str(r.verdict):>10} | {r.theirs.wall_s:19.2f} s "
                     f"{r.theirs.cpu_s:5.2f} s {r.theirs.peak_mb:5.0f} MB {r.their_search_s:5.2f} s "
                     f"{r.their_verdict:>14}")
    lines.append("outside: faultbed's time with the history (reading, parsing, the call, start of Go's runtime) beyond "
                 "the wall time during which some segment was searched, relative to that time")
    for r in rows:
        if len(r.outside_spread) > 2:
            lines.append(f"  {r.name}: outside in each of its {len(r.outside_spread)} runs: "
                         f"{_spread(r.outside_spread)}, in time a median {r.outside_ms:.1f} ms "
                         f"(the row: the run of least wall time)")
        if r.outside_parts:
            lines.append(f"  {r.name}: outside's parts, each a median of its {len(r.outside_spread)} runs: "
                         + ", ".join(f"{words} {r.outside_parts[part]:.2f} ms" for part, words in PARTS.items()))
        if len(r.run_outside_spread) > 2:
            lines.append(f"  {r.name} as a run's history (spec.json beside it; not the goal's case: its spec and "
                         f"the registry are read in Python beside the search): outside "
                         f"{_spread(r.run_outside_spread)}")
    for r in rows:
        if r.name.startswith("kv") and r.their_search_s > 0 and r.search_s > 0:
            inside = r.search_s * (1 + r.outside)
            lines.append(f"  {r.name}: faultbed's whole check {inside:.3f} s = {inside / r.their_search_s * 100:.0f}% of "
                         f"porcupine's own search alone ({r.their_search_s:.3f} s) on the same history")
    return "\n".join(lines)


def _median(spread: list[float]) -> float:
    return spread[len(spread) // 2]


def _spread(spread: list[float]) -> str:
    """Sorted outsides as `least a%, median b%, most c%`."""
    return f"least {spread[0] * 100:.0f}%, median {_median(spread) * 100:.0f}%, most {spread[-1] * 100:.0f}%"


def goals(rows: list[Row], starts: dict[str, Run]) -> list[str]:
    """The goals of issue 11 that this run missed (empty: all met)."""
    missed = []
    for r in rows:
        ops = next((n for n in SIZES if r.name == f"kv {n // 1000}k"), None)
        if ops in WALL_GOAL_S and r.ours.wall_s > WALL_GOAL_S[ops]:
            missed.append(f"{r.name}: {r.ours.wall_s:.2f} s > {WALL_GOAL_S[ops]} s")
        if ops in MEMORY_GOAL_MB and r.ours.peak_mb > MEMORY_GOAL_MB[ops]:
            missed.append(f"{r.name}: {r.ours.peak_mb:.0f} MB > {MEMORY_GOAL_MB[ops]} MB")
        # judged on the median of the runs (the row's run, the one of least wall time, is often the best)
        outside = _median(r.outside_spread) if len(r.outside_spread) > 2 else r.outside
        if ops is not None and outside > OUTSIDE_GOAL:
            missed.append(f"{r.name}: outside the search {outside * 100:.0f}% (median of {len(r.outside_spread)} "
                          f"runs) > {OUTSIDE_GOAL * 100:.0f}%")
        if r.name.startswith("jepsen") and r.ours.wall_s >= r.theirs.wall_s:
            missed.append(f"{r.name}: faultbed check {r.ours.wall_s:.2f} s >= porcupine alone {r.theirs.wall_s:.2f} s")
    for name, run in starts.items():
        if name.startswith("faultbed") and run.wall_s >= START_GOAL_S:
            missed.append(f"{name}: {run.wall_s * 1000:.0f} ms >= {START_GOAL_S * 1000:.0f} ms")
    return missed


def main() -> int:
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} CPUs "
          f"(wall clock: a busy machine slows both sides)", flush=True)
    reference()
    rows = [kv_row(ops) for ops in SIZES]
    jepsen = jepsen_row()
    rows += [jepsen] if jepsen else []
    starts = start_up()
    print(table(rows))
    if SIZES:
        print(cold(max(SIZES)))
        print(run_check(max(SIZES)))
    print("start-up (best of 7, in turns; goal < " f"{START_GOAL_S * 1000:.0f} ms for faultbed's): " + ", ".join(
        f"{name} {run.wall_s * 1000:.0f} ms wall / {run.cpu_s * 1000:.0f} ms cpu" for name, run in starts.items()))
    load = os.getloadavg()
    print(f"load average at the end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    missed = goals(rows, starts)
    print("checker: goals met" if not missed else "checker: GOALS MISSED: " + "; ".join(missed))
    return 0 if not missed else 1


if __name__ == "__main__":
    sys.exit(main())
