"""faultbed's pytest plugin (entry point pytest11): chaos tests as ordinary pytest tests.

    @pytest.mark.faultbed(system="raftkv", nodes=3, nemesis=["partition"], time_limit=5, rate=50)
    def test_register_survives_partitions(run_test):
        run_test()   # a whole run; an anomaly fails the test with verdict, results and replay command

Fixtures: `faultbed_spec` (the marker's TestSpec), `run_test` (one checked run),
`faultbed_cluster` (a started, ready cluster), `faultbed_history` (a HistoryWriter in
the cluster's results directory), `faultbed_nemesis` (the spec's fault schedule,
ready to `start()`; healed at teardown), `faultbed_check` (check what was recorded),
`faultbed_store`. Parametrize `faultbed_system`, `faultbed_backend` or
`faultbed_nodes` to run one test against several. Results go under pytest's tmp
dir unless --faultbed-store says where.

This module is imported by every pytest run in an environment where faultbed is
installed, so it imports only pytest and the standard library at import time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from typing import TYPE_CHECKING, Any, Callable, Iterator, NoReturn

import pytest

if TYPE_CHECKING:
    from faultbed.cluster.running import RunningCluster
    from faultbed.history import HistoryWriter
    from faultbed.runner import RunOutcome
    from faultbed.spec import TestSpec
    from faultbed.nemesis.executor import ScheduleExecutor
    from faultbed.shard import Shard

log = logging.getLogger(__name__)

MARKER = "faultbed"
RUN_DIR_PROPERTY = "faultbed_run_dir"
VERDICT_PROPERTY = "faultbed_verdict"
LIST_FIELDS = ("nemesis", "bugs")
SHARD_KEY: "pytest.StashKey[Shard]" = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("faultbed", "faultbed chaos tests")
    group.addoption("--faultbed-store", metavar="DIR", default=None,
                    help="results root for faultbed runs (default: a directory under pytest's tmp dir)")
    group.addoption("--faultbed-seed", type=int, metavar="N", default=None,
                    help="seed for every faultbed test (default: each test's own, 0 unless marked)")
    group.addoption("--faultbed-time-limit", type=float, metavar="S", default=None,
                    help="main-phase seconds for every faultbed test (overrides the markers)")
    group.addoption("--faultbed-backend", metavar="NAME", default=None,
                    help="backend for faultbed tests that do not parametrize faultbed_backend")
    group.addoption("--faultbed-bug", metavar="NAME", action="append", default=[],
                    help="plant this bug in every faultbed test (repeatable): does the suite catch it?")
    group.addoption("--faultbed-shard", metavar="I/N", default=None,
                    help="run only shard I of N of the collected tests (every N-th test id in sorted "
                         "order, from the I-th): N hosts or CI jobs with I = 1..N run the suite once")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(**spec): a faultbed chaos test; keyword arguments are TestSpec fields "
                   "(system, nodes, nemesis, time_limit, rate, bugs, ...)")
    config.pluginmanager.register(RunSummary(), "faultbed-run-summary")
    chosen = config.getoption("faultbed_shard", None)
    if chosen is not None:
        from faultbed.errors import FaultbedError
        from faultbed.shard import parse_shard

        try:
            config.stash[SHARD_KEY] = parse_shard(chosen)
        except FaultbedError as exc:
            raise pytest.UsageError(f"--faultbed-shard: {exc}") from None


@pytest.hookimpl(trylast=True)  # after -k and -m: a shard of the tests chosen, so every shard gets some
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """--faultbed-shard I/N: keep this shard's tests (by position among the sorted ids of the tests left
    after -k and -m), deselect the rest."""
    shard = config.stash.get(SHARD_KEY, None)
    if shard is None:
        return
    mine = set(shard.pick(sorted(item.nodeid for item in items)))
    deselected = [item for item in items if item.nodeid not in mine]
    if deselected:
        items[:] = [item for item in items if item.nodeid in mine]
        config.hook.pytest_deselected(items=deselected)


def pytest_report_header(config: pytest.Config) -> str | None:
    shard = config.stash.get(SHARD_KEY, None)
    return None if shard is None else f"faultbed: shard {shard} of the collected tests"


# -- the spec -----------------------------------------------------------------------------

def marker_fields(node: pytest.Item) -> dict[str, Any]:
    """The TestSpec fields of every @pytest.mark.faultbed on `node` (closest wins)."""
    from faultbed.spec import TestSpec

    known = set(TestSpec.__dataclass_fields__)
    fields: dict[str, Any] = {}
    for mark in reversed(list(node.iter_markers(MARKER))):
        if mark.args:
            pytest.fail(f"@pytest.mark.{MARKER} takes keyword arguments only (TestSpec fields)", pytrace=False)
        unknown = sorted(set(mark.kwargs) - known - {"bin", "bin_args"})
        if unknown:
            pytest.fail(f"@pytest.mark.{MARKER}: unknown field(s) {unknown} (known: {', '.join(sorted(known))})",
                        pytrace=False)
        fields.update(mark.kwargs)
        if "bin" in mark.kwargs:  # a Maelstrom-protocol program, as `faultbed run --bin` (bin_args optional)
            from faultbed.cluster.systems.maelstrom import spec_fields

            given = spec_fields(str(fields.pop("bin")), list(fields.pop("bin_args", ())))
            fields["system"] = given["system"]
            fields["options"] = {**fields.get("options", {}), **given["options"]}
    for name in LIST_FIELDS:
        if isinstance(fields.get(name), str):
            fields[name] = tuple(p.strip() for p in fields[name].split(",") if p.strip() not in ("", "none"))
        elif name in fields:
            fields[name] = tuple(fields[name])
    return fields


def _default(name: str) -> Any:
    from faultbed.spec import TestSpec

    return TestSpec.__dataclass_fields__[name].default


@pytest.fixture(scope="session")
def faultbed_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The results root: --faultbed-store, or a fresh directory under pytest's tmp dir (one per xdist worker)."""
    chosen = request.config.getoption("faultbed_store")
    if chosen:
        os.makedirs(chosen, exist_ok=True)
        return os.path.abspath(chosen)
    return str(tmp_path_factory.mktemp("faultbed-store", numbered=True))


@pytest.fixture
def faultbed_system(request: pytest.FixtureRequest) -> str:
    """The system under test (the marker's; parametrize to override)."""
    return str(marker_fields(request.node).get("system", _default("system")))


@pytest.fixture
def faultbed_backend(request: pytest.FixtureRequest) -> str:
    """The backend (--faultbed-backend, else the marker's; parametrize to override)."""
    chosen = request.config.getoption("faultbed_backend")
    return str(chosen or marker_fields(request.node).get("backend", _default("backend")))


@pytest.fixture
def faultbed_nodes(request: pytest.FixtureRequest) -> int:
    """The cluster size (the marker's; parametrize to override)."""
    return int(marker_fields(request.node).get("nodes", _default("nodes")))


@pytest.fixture
def faultbed_spec(request: pytest.FixtureRequest, faultbed_store: str, faultbed_system: str,
                  faultbed_backend: str, faultbed_nodes: int) -> "TestSpec":
    """The test's TestSpec: defaults < marker < parametrized fixtures < command-line overrides."""
    from faultbed.spec import TestSpec

    fields = marker_fields(request.node)
    fields.update(system=faultbed_system, backend=faultbed_backend, nodes=faultbed_nodes, store=faultbed_store)
    seed, time_limit = (request.config.getoption(o) for o in ("faultbed_seed", "faultbed_time_limit"))
    if seed is not None:
        fields["seed"] = seed
    if time_limit is not None:
        fields["time_limit"] = time_limit
    planted = request.config.getoption("faultbed_bug")
    if planted:
        fields["bugs"] = tuple(dict.fromkeys(tuple(fields.get("bugs", ())) + tuple(planted)))
    return TestSpec(**fields)


# -- one whole run -------------------------------------------------------------------------

def verdict_summary(outcome: "RunOutcome", expect: Any = None) -> str:
    """A few lines for a failed test: verdict per checker, ops, results, report, replay."""
    from faultbed.checkers.result import verdict_word

    spec = outcome.spec
    expected = "" if expect is None else f" (expected {verdict_word(expect)})"
    lines = [f"faultbed: {spec.system} {spec.workload}, nemesis {','.join(spec.nemesis) or 'none'}, "
             f"seed {spec.seed}: verdict {verdict_word(outcome.valid)}{expected}"]
    lines += [f"  {r.headline()}" for r in outcome.results]
    counts = outcome.counts
    lines.append(f"  ops: {counts.get('ok', 0)} ok, {counts.get('fail', 0)} fail, {counts.get('info', 0)} info")
    lines.append(f"results: {outcome.run_dir}")
    lines.append(f"report:  {os.path.join(outcome.run_dir, 'report.html')}")
    lines.append(f"replay:  {outcome.replay_command}")
    return "\n".join(lines)


def _fail(message: str) -> NoReturn:
    """Fail the test with `message` alone: no traceback, no chained exception."""
    raise pytest.fail.Exception(message, pytrace=False) from None


def _record_outcome(node: pytest.Item, outcome: "RunOutcome") -> None:
    from faultbed.checkers.result import verdict_word

    node.user_properties.append((RUN_DIR_PROPERTY, outcome.run_dir))
    node.user_properties.append((VERDICT_PROPERTY, verdict_word(outcome.valid)))


def _judge(node: pytest.Item, outcome: "RunOutcome", expect: Any) -> "RunOutcome":
    """Fail the test unless the verdict is what was expected (None: anything goes)."""
    _record_outcome(node, outcome)
    if expect is not None and outcome.valid != expect:
        pytest.fail(verdict_summary(outcome, expect), pytrace=False)
    return outcome


@pytest.fixture
def run_test(request: pytest.FixtureRequest, faultbed_spec: "TestSpec") -> Callable[..., "RunOutcome"]:
    """`run_test(spec=None, *, expect=True, schedule=None, **changes)`: run, check, store; fail unless expected.

    `spec` defaults to the test's faultbed_spec; `changes` are TestSpec fields. Results
    always go to the plugin's store. `expect=False` asserts that an anomaly is found
    (a planted bug); `expect=None` only returns the outcome.
    """
    def run_one(spec: "TestSpec | None" = None, *, expect: Any = True, schedule: Any = None,
                **changes: Any) -> "RunOutcome":
        from faultbed import runner
        from faultbed.errors import FaultbedError

        chosen = (spec or faultbed_spec).replace(store=faultbed_spec.store, **changes)
        try:
            outcome = runner.run(chosen, schedule=schedule)
        except runner.RunInterrupted as exc:
            raise KeyboardInterrupt(f"interrupted; history kept in {exc.run_dir}") from None
        except FaultbedError as exc:
            _fail(f"faultbed: {exc}")
        return _judge(request.node, outcome, expect)

    return run_one


# -- a cluster, a history, a nemesis, piece by piece -------------------------------------------

@pytest.fixture
def faultbed_run_dir(faultbed_spec: "TestSpec") -> Iterator[str]:
    """A fresh results directory with spec.json; at teardown, report.html unless a check wrote it already."""
    from faultbed import store

    run_dir = store.create_run_dir(faultbed_spec)
    store.write_json(run_dir, store.SPEC, faultbed_spec.to_json())
    yield run_dir
    history, report = os.path.join(run_dir, store.HISTORY), os.path.join(run_dir, store.REPORT_HTML)
    if os.path.exists(history) and not (os.path.exists(report)
                                        and os.path.getmtime(report) >= os.path.getmtime(history)):
        try:
            from faultbed.report import write_report
            write_report(run_dir)
        except Exception as exc:  # the test's own outcome matters more than its report
            log.warning("no report for %s: %s", run_dir, exc)


@contextlib.contextmanager
def running_cluster(spec: "TestSpec", run_dir: str) -> Iterator["RunningCluster"]:
    """Start `spec`'s cluster on its backend, wait until it has one leader, stop everything on exit
    (cluster/start.py's start_cluster, as the runner does)."""
    from faultbed.cluster.start import start_cluster
    from faultbed.errors import FaultbedError
    from faultbed.plan import resolve

    try:
        plan = resolve(spec)
    except FaultbedError as exc:
        _fail(f"faultbed: {exc}")
    with contextlib.ExitStack() as stack:
        backend = plan.backend(plan.system, spec, run_dir, uuid.uuid4().hex[:12])
        try:
            cluster = stack.enter_context(start_cluster(plan.system, backend, spec.bugs, plan.ready_timeout,
                                                        options=spec.options))
        except FaultbedError as exc:
            _fail(f"faultbed: {exc} (logs: {os.path.join(run_dir, 'nodes')})")
        yield cluster


@pytest.fixture
def faultbed_cluster(faultbed_spec: "TestSpec", faultbed_run_dir: str) -> Iterator["RunningCluster"]:
    """The spec's cluster, started on its backend and ready (one leader); everything stops at teardown."""
    with running_cluster(faultbed_spec, faultbed_run_dir) as cluster:
        yield cluster


@pytest.fixture
def faultbed_history(faultbed_run_dir: str) -> Iterator["HistoryWriter"]:
    """A HistoryWriter on <run dir>/history.jsonl (Jepsen's format), closed at teardown."""
    from faultbed import store
    from faultbed.history import HistoryWriter

    with HistoryWriter(os.path.join(faultbed_run_dir, store.HISTORY)) as history:
        yield history


@pytest.fixture
def faultbed_nemesis(faultbed_spec: "TestSpec", faultbed_cluster: "RunningCluster",
                     faultbed_history: "HistoryWriter", faultbed_run_dir: str) -> Iterator["ScheduleExecutor"]:
    """The spec's seeded fault schedule on the cluster (written to schedule.json); call `start()`.

    At teardown every fault is undone and the cluster waited for, before it stops.
    """
    from faultbed import store
    from faultbed.nemesis.executor import ScheduleExecutor
    from faultbed.nemesis.schedule import generate_schedule

    schedule = generate_schedule(faultbed_spec, faultbed_cluster.nodes)
    store.write_json(faultbed_run_dir, store.SCHEDULE, schedule.to_json())
    with ScheduleExecutor(schedule, faultbed_cluster, faultbed_history) as nemesis:
        yield nemesis


@pytest.fixture
def faultbed_check(request: pytest.FixtureRequest, faultbed_spec: "TestSpec", faultbed_run_dir: str,
                   faultbed_history: "HistoryWriter") -> Callable[..., "RunOutcome"]:
    """`faultbed_check(expect=True)`: close the history, check it with the spec's workload, fail unless expected."""
    def check(expect: Any = True) -> "RunOutcome":
        from faultbed.runner import check_run
        from faultbed.workloads import load_workload

        faultbed_history.close()
        outcome = check_run(faultbed_spec, load_workload(faultbed_spec.workload), faultbed_run_dir)
        return _judge(request.node, outcome, expect)

    return check


# -- the terminal summary -----------------------------------------------------------------------

class RunSummary:
    """Collects run directories from test reports (also from xdist workers) and lists them at the end."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, str, str]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        run_dirs = [str(v) for k, v in report.user_properties if k == RUN_DIR_PROPERTY]
        verdicts = [str(v) for k, v in report.user_properties if k == VERDICT_PROPERTY]
        self.runs += [(report.nodeid, run_dir, verdict) for run_dir, verdict in zip(run_dirs, verdicts)]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.runs:
            return
        terminalreporter.section("faultbed runs")
        for nodeid, run_dir, verdict in self.runs:
            terminalreporter.write_line(f"{verdict:>8}  {nodeid}  {run_dir}")
        stores = sorted({os.path.dirname(os.path.dirname(run_dir)) for _, run_dir, _ in self.runs})
        for store_root in stores:  # one per xdist worker unless --faultbed-store was given
            terminalreporter.write_line(f"browse: faultbed serve --store {store_root}")
        shard = terminalreporter.config.stash.get(SHARD_KEY, None)
        if shard is not None:  # the other shards' runs are elsewhere: one store gathers them all
            terminalreporter.write_line(f"shard {shard}: gather every shard's runs with `faultbed store merge "
                                        f"--into DIR STORE...` (or `faultbed store pull --hosts ...`)")
