"""The harness over a long run: `faultbed run` at its maximum rate against raftkv, its memory sampled.

Not part of the default `make bench` (it takes the whole time limit plus the
check): `python -m bench soak` (FAULTBED_SOAK_SECONDS, default 600; the run is
stored in a temporary directory, or kept in $FAULTBED_SOAK_STORE). Prints the
harness's resident memory every SAMPLE_S seconds (the harness process only; the
nodes are processes of their own), then what was recorded and checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SECONDS = float(os.environ.get("FAULTBED_SOAK_SECONDS", "600"))
SAMPLE_S = 10.0


def resident_mb(pid: int) -> float | None:
    """VmRSS of a process, None once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main() -> int:
    kept = os.environ.get("FAULTBED_SOAK_STORE")
    with tempfile.TemporaryDirectory(prefix="faultbed-soak-") as temporary:
        store = kept or temporary
        os.makedirs(store, exist_ok=True)  # $FAULTBED_SOAK_STORE need not exist yet
        argv = [sys.executable, "-m", "faultbed", "run", "--system", "raftkv", "--rate", "0",
                "--time-limit", f"{SECONDS:g}", "--seed", "11", "--quiet", "--store", store]
        print(f"soak: {' '.join(argv[2:])}", flush=True)
        started = time.monotonic()
        output = open(Path(store) / "soak-output.txt", "w+", encoding="utf-8")  # a file: a pipe would fill
        child = subprocess.Popen(argv, cwd=REPO, stdout=output, stderr=subprocess.STDOUT, text=True)
        curve: list[tuple[float, float]] = []
        next_sample = 0.0
        while True:
            # reaped here, not by Popen: wait4 gives the harness's peak (the check phase's, after a flat run)
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                child.returncode = os.waitstatus_to_exitcode(status)
                break
            now = time.monotonic() - started
            if now >= next_sample:
                rss = resident_mb(child.pid)
                if rss is not None:
                    curve.append((now, rss))
                    print(f"  t={now:6.0f} s  harness RSS {rss:7.1f} MB", flush=True)
                next_sample += SAMPLE_S
            time.sleep(0.2)
        ended = time.monotonic() - started
        output.seek(0)
        print(output.read().strip()[-2000:])
        output.close()
        print(f"soak: the harness ended after {ended:.0f} s; its peak resident memory (wait4, the check "
              f"phase's) {usage.ru_maxrss / 1024:.0f} MB")
        return _summary(Path(store), curve, child.returncode)


def _summary(store: Path, curve: list[tuple[float, float]], code: int) -> int:
    runs = sorted(p for p in store.glob("*/*") if (p / "history.jsonl").exists())
    if not runs:
        print(f"soak: no run recorded (exit {code})")
        return 1
    run = runs[-1]
    lines = sum(1 for _ in open(run / "history.jsonl", encoding="utf-8"))
    results = json.loads((run / "results.json").read_text()) if (run / "results.json").exists() else {}
    main_phase = [rss for t, rss in curve if 30 <= t <= SECONDS]
    if main_phase:
        print(f"soak: harness RSS during the main phase {min(main_phase):.0f}-{max(main_phase):.0f} MB "
              f"(first {main_phase[0]:.0f}, last {main_phase[-1]:.0f}); peak overall {max(r for _, r in curve):.0f} MB")
    print(f"soak: {lines} events recorded, exit {code}, verdict {results.get('valid')!r}")
    written = [run / name for name in ("history.jsonl", "results.json", "report.html")]
    if all(path.exists() for path in written):  # the last event, then the cluster's teardown, then the check
        last, checked, reported = (path.stat().st_mtime for path in written)
        print(f"soak: from the last event to results.json (the cluster's teardown and the checkers) "
              f"{checked - last:.1f} s, then the report {reported - checked:.1f} s")
    for result in results.get("results") or []:
        print(f"  {result.get('checker')}: {result.get('valid')!r} {str(result.get('summary', ''))[:120]}")
    return 0 if code in (0, 1, 2) else 1


if __name__ == "__main__":
    sys.exit(main())
