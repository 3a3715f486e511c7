"""What happens in what order: one test run, from spec to stored verdict.

    setup cluster + mesh -> wait until ready -> main phase (clients + nemesis)
    -> heal every fault -> final reads / drain -> teardown -> check -> store

The fault schedule and the operation plan are written before the main phase, so a
run can be replayed. Whatever happens (exception, Ctrl-C, SIGTERM), everything
started is stopped and the history recorded so far stays on disk.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field

from faultbed.checkers.result import Result, Valid, merge_valid
from faultbed.checkers.compose import run_checkers, system_checkers
from faultbed.cluster.running import RunningCluster
from faultbed.cluster.start import start_cluster
from faultbed.cluster.systems import System
from faultbed import store
from faultbed.crash import run_dir_on_error, save_traceback
from faultbed.history import HistoryFile, HistoryWriter, completion_counts
from faultbed.interrupts import stop_on_interrupt
from faultbed.spec import TestSpec
from faultbed.worker import Worker, run_worker
from faultbed.workloads import Workload
from faultbed.nemesis.executor import ScheduleExecutor, record_node_exits
from faultbed.nemesis.schedule import Schedule, generate_schedule
from faultbed.plan import RunPlan, resolve


log = logging.getLogger(__name__)

FINAL_PROCESS_BASE = 1_000_000
FINAL_PROCESS_STRIDE = 10_000  # final worker k is process base + k, then + stride after each info


class RunInterrupted(Exception):
    """Ctrl-C or SIGTERM during a run; the history so far is kept in `run_dir`.

    `leftovers` names what teardown could not stop (empty when everything stopped).
    """

    def __init__(self, run_dir: str, leftovers: tuple[str, ...] = ()) -> None:
        super().__init__(run_dir)
        self.run_dir = run_dir
        self.leftovers = leftovers


@dataclass
class Progress:
    """Live numbers for a progress display; written by the runner, read by the CLI."""

    phase: str = "setup"
    started: float = field(default_factory=time.monotonic)
    main_started: float | None = None
    time_limit: float = 0.0
    workers: list[Worker] = field(default_factory=list)
    nemesis: ScheduleExecutor | None = None
    leftovers: tuple[str, ...] = ()  # what teardown could not stop

    def faults(self) -> list[str]:
        """The faults active right now, described for a person."""
        return list(self.nemesis.current_faults()) if self.nemesis is not None else []

    def counts(self) -> dict[str, int]:
        totals = {"ok": 0, "fail": 0, "info": 0}
        for worker in list(self.workers):
            totals["ok"] += worker.counts.ok
            totals["fail"] += worker.counts.fail
            totals["info"] += worker.counts.info
        return totals

    def elapsed(self) -> float:
        return time.monotonic() - (self.main_started or self.started)


@dataclass(frozen=True)
class RunOutcome:
    spec: TestSpec
    run_dir: str
    valid: Valid
    results: list[Result]
    counts: dict[str, int]

    @property
    def replay_command(self) -> str:
        return f"faultbed replay {self.run_dir}"


def plan_length(spec: TestSpec) -> int:
    """How many operations per worker the written plan covers (the plan continues past it)."""
    if spec.rate <= 0:
        return 0
    return math.ceil(spec.rate * spec.time_limit / spec.concurrency * 1.5) + 16


def write_plan(spec: TestSpec, workload: Workload, run_dir: str) -> None:
    count = plan_length(spec)
    with open(os.path.join(run_dir, store.PLAN), "w", encoding="utf-8") as fh:
        for worker in range(spec.concurrency):
            for seq, op in enumerate(itertools.islice(workload.operations(spec, worker), count)):
                fh.write(json.dumps({"worker": worker, "seq": seq, **op.to_json()}, default=str) + "\n")


def _keep_system_file(system: System, run_dir: str) -> None:
    """A system described by a file: its copy goes with the run (spec.system keeps the absolute path)."""
    from faultbed.cluster.systems.file import FileSystem

    if isinstance(system, FileSystem):
        shutil.copyfile(system.path, os.path.join(run_dir, store.SYSTEM_FILE))


def run(spec: TestSpec, schedule: Schedule | None = None, progress: Progress | None = None,
        plan: RunPlan | None = None) -> RunOutcome:
    """Run `spec` (with a given schedule when replaying) and return the stored verdict.

    `plan`: the spec already resolved (faultbed.plan.resolve); resolved here when not given.
    """
    plan = plan or resolve(spec)
    system, workload = plan.system, plan.workload
    progress = progress or Progress()
    progress.time_limit = spec.time_limit
    run_id = uuid.uuid4().hex[:12]
    run_dir = store.create_run_dir(spec)
    with run_dir_on_error(run_dir):  # a bug's traceback then goes next to the run it broke
        store.point_latest(spec, run_dir)
        store.write_json(run_dir, store.SPEC, spec.to_json())
        _keep_system_file(system, run_dir)
        schedule = schedule or generate_schedule(spec, plan.nodes, plan.faults)
        store.write_json(run_dir, store.SCHEDULE, schedule.to_json())
        write_plan(spec, workload, run_dir)
        history_path = os.path.join(run_dir, store.HISTORY)
        log.info("run %s in %s", run_id, run_dir)
        # the first Ctrl-C/SIGTERM stops the run, or its check; later ones cannot cut teardown short
        with stop_on_interrupt():
            try:
                with HistoryWriter(history_path) as history:
                    _execute(plan, schedule, history, run_dir, run_id, progress)
                progress.phase = "check"
                return check_run(spec, workload, run_dir, run_id)
            except KeyboardInterrupt:
                raise RunInterrupted(run_dir, progress.leftovers) from None


def check_run(spec: TestSpec, workload: Workload, run_dir: str, run_id: str | None = None) -> RunOutcome:
    """Check a stored history and write results.json (and report.html, best effort)."""
    # a sequence over the file, not a list: a long run's events are read as each checker goes
    with HistoryFile(os.path.join(run_dir, store.HISTORY)) as events:
        results = run_checkers(tuple(workload.checkers) + system_checkers(spec, run_dir), events, spec, run_dir)
        counts = completion_counts(events)
        valid = merge_valid(r.valid for r in results)
        store.write_json(run_dir, store.RESULTS, {
            "valid": valid, "counts": counts, "results": [r.to_json() for r in results], "run_id": run_id,
            "host": store.read_origin(run_dir).get("host"), "replay": f"faultbed replay {run_dir}"})
        try:  # the verdict is stored already; a report problem must never cost it
            from faultbed.report import write_report
            write_report(run_dir, events)  # the scan's columns: the report makes no pass of its own
        except OSError as exc:
            log.warning("could not write %s in %s: %s", store.REPORT_HTML, run_dir, exc)
        except Exception as exc:  # one line, never a traceback on stderr: it goes to a file in the run directory
            log.warning("could not write %s in %s: %s: %s (a bug in faultbed; traceback: %s)", store.REPORT_HTML,
                        run_dir, type(exc).__name__, exc, save_traceback(exc, run_dir))
    return RunOutcome(spec, run_dir, valid, results, counts)


def _execute(plan: RunPlan, schedule: Schedule, history: HistoryWriter, run_dir: str, run_id: str,
             progress: Progress) -> None:
    spec = plan.spec
    backend = plan.backend(plan.system, spec, run_dir, run_id)

    def waiting() -> None:
        progress.phase = "waiting for the cluster"

    try:
        with start_cluster(plan.system, backend, spec.bugs, plan.ready_timeout, waiting, spec.options) as cluster:
            _phases(plan, schedule, history, cluster, progress)
    finally:
        progress.leftovers = tuple(backend.leftovers)


def _phases(plan: RunPlan, schedule: Schedule, history: HistoryWriter, cluster: RunningCluster,
            progress: Progress) -> None:
    """Main phase with the nemesis, heal, final reads: everything between ready and teardown."""
    spec, workload, patience = plan.spec, plan.workload, plan.ready_timeout
    progress.phase = "main"
    progress.main_started = time.monotonic()
    with ScheduleExecutor(schedule, cluster, history, ready_timeout=patience) as nemesis:
        progress.nemesis = nemesis
        _main_phase(spec, workload, cluster, history, progress, nemesis)
        progress.phase = "healing"
        nemesis.stop()
        nemesis.heal_all(ready_timeout=patience)
    progress.phase = "final"
    final_ids = itertools.count(FINAL_PROCESS_BASE)

    def new_worker(node: str) -> Worker:
        return Worker(-1, next(final_ids), FINAL_PROCESS_STRIDE, cluster, history, node, spec.op_timeout)

    workload.final(spec, new_worker, cluster.nodes)
    record_node_exits(cluster.backend, history, look=True)
    progress.phase = "teardown"


def _main_phase(spec: TestSpec, workload: Workload, cluster: RunningCluster, history: HistoryWriter,
                progress: Progress, nemesis: ScheduleExecutor) -> None:
    stop = threading.Event()
    deadline = time.monotonic() + spec.time_limit
    workers = [Worker(i, i, spec.concurrency, cluster, history, cluster.nodes[i % len(cluster.nodes)],
                      spec.op_timeout) for i in range(spec.concurrency)]
    progress.workers = workers
    history.start_clock()
    if history.unix_origin_ns is not None:
        store.note_clock(os.path.dirname(os.path.abspath(history.path)), history.unix_origin_ns)
    nemesis.start()
    threads = [threading.Thread(target=run_worker, name=f"worker-{w.index}",
                                args=(spec, workload, w, stop, deadline), daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    try:
        while time.monotonic() < deadline and any(t.is_alive() for t in threads):
            stop.wait(min(0.2, max(0.0, deadline - time.monotonic())))
    finally:
        stop.set()
        join_deadline = time.monotonic() + spec.op_timeout * 10 + 5
        for thread in threads:
            thread.join(max(0.0, join_deadline - time.monotonic()))
        for worker in workers:
            worker.close()
    crashed = next((w.crash for w in workers if w.crash is not None), None)
    if crashed is not None:  # teardown still runs; the history so far stays checkable (`faultbed check`)
        raise crashed


