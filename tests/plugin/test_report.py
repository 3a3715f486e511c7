"""report.html: verdicts, plots, faults, links and log tails, from what a run stored."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys

import pytest

from faultbed.errors import FaultbedError
from faultbed.history import read_history
from faultbed.nemesis.network import PARTITION
from faultbed.nemesis.process import KILL
from faultbed.history import pair_operations
from faultbed.report import (FaultInterval, OpPoint, Points, fault_intervals, op_points, render_report, sampled, scan,
                             throughput, write_report)
from tests.e2e.synthetic_runs import make_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def nemesis(f: str, t: float, **extra):
    return {"type": "info", "process": "nemesis", "f": f, "time": int(t * 1e9), "value": f"{f} at {t}", **extra}


def test_faults_pair_by_id_even_when_they_overlap():
    events = [nemesis("start-partition", 1, fault="partition", id="partition#1"),
              nemesis("start-kill", 2, fault="kill", id="kill#1"),
              nemesis("stop-partition", 3, fault="partition", id="partition#1"),
              nemesis("stop-kill", 5, fault="kill", id="kill#1")]
    assert fault_intervals(events) == [FaultInterval("partition", 1.0, 3.0, "start-partition at 1", PARTITION.color),
                                       FaultInterval("kill", 2.0, 5.0, "start-kill at 2", KILL.color)]


def test_heal_closes_every_open_fault_and_unhealed_faults_last_to_the_end():
    events = [nemesis("start-pause", 1, fault="pause", id="pause#1"),
              nemesis("start-latency", 2, fault="latency", id="latency#1"),
              nemesis("heal", 4),
              nemesis("start-kill", 6, fault="kill", id="kill#1")]
    intervals = fault_intervals(events)
    assert [(i.name, i.start, i.stop) for i in intervals] == [("pause", 1, 4), ("latency", 2, 4), ("kill", 6, None)]


def test_a_fault_that_failed_to_start_is_not_shaded():
    events = [nemesis("start-kill", 1, fault="kill", id="kill#1", error="no such node"),
              nemesis("start-partition", 2, fault="partition", id="partition#1"),
              nemesis("stop-partition", 3, fault="partition", id="partition#1")]
    assert [i.name for i in fault_intervals(events)] == ["partition"]


def test_op_points_measure_latency_and_skip_operations_that_never_completed():
    events = [{"type": "invoke", "process": 0, "f": "write", "value": 1, "time": 1_000_000_000},
              {"type": "ok", "process": 0, "f": "write", "value": 1, "time": 1_250_000_000},
              {"type": "invoke", "process": 1, "f": "read", "value": None, "time": 2_000_000_000}]
    points = op_points(events)
    assert len(points) == 1
    assert points[0].time == pytest.approx(1.0) and points[0].latency_ms == pytest.approx(250.0)


def test_throughput_is_completions_per_second_and_the_partial_last_second_is_not_a_drop():
    points = [OpPoint(0.4, 100.0, "ok", "read"), OpPoint(0.5, 100.0, "ok", "read"),
              OpPoint(1.1, 100.0, "ok", "write"), OpPoint(1.4, 100.0, "fail", "cas")]
    series = throughput(points)
    assert series["ok"] == ([0.0, 1.0], [2.0, 2.0])    # the second bucket covers 0.5 s only
    assert series["fail"] == ([0.0, 1.0], [0.0, 2.0])
    assert "info" not in series


@pytest.fixture
def invalid_run(tmp_path):
    return make_run(str(tmp_path), "20250102T030405Z", valid=False, linearizability_html=True)


def test_report_shows_verdicts_plots_faults_spec_and_links(invalid_run):
    page = render_report(invalid_run)
    assert 'id="verdict" data-valid="invalid"' in page
    assert re.search(r'<tr class="checker invalid"><td>linearizable</td>', page)
    assert re.search(r'<tr class="checker valid"><td>stats</td>', page)
    assert "illegal_keys" in page
    images = re.findall(r'id="(\w+)-plot" alt="[^"]*" src="data:image/png;base64,([^"]+)"', page)
    assert [name for name, _ in images] == ["latency", "throughput"]
    assert all(base64.b64decode(data).startswith(PNG_MAGIC) for _, data in images)
    assert f'<span class="swatch" style="background:{PARTITION.color}"></span>partition</td><td>3.00</td><td>6.00</td>' \
        in page
    assert 'href="linearizability.html"' in page
    assert f"faultbed replay {invalid_run}" in page
    assert '<td>seed</td><td><code>7</code></td>' in page


def test_first_anomaly_is_named_in_the_header_at_its_time_in_the_run(tmp_path):
    run_dir = make_run(str(tmp_path), "20250102T030405Z", valid=False, linearizability_html=True)
    results_path = os.path.join(run_dir, "results.json")
    with open(results_path, encoding="utf-8") as fh:
        results = json.load(fh)
    results["results"][0]["details"]["first_anomaly"] = {"time_ms": 4000.0, "f": "read", "key": "k1",
                                                         "value": None, "output": 3, "prefix_ops": 17}
    with open(results_path, "w", encoding="utf-8") as fh:
        json.dump(results, fh)
    first_invoke = min(e["time"] for e in read_history(os.path.join(run_dir, "history.jsonl"))
                       if e["type"] == "invoke") / 1e9
    page = render_report(run_dir)
    assert (f'first anomaly at {first_invoke + 4.0:.2f} s: <code>linearizable: read &quot;k1&quot; -&gt; 3</code>'
            in page)
    results["results"][0]["details"]["first_anomaly"]["proven_first"] = False  # its search ran out of time
    with open(results_path, "w", encoding="utf-8") as fh:
        json.dump(results, fh)
    assert ('<code>linearizable: read &quot;k1&quot; -&gt; 3 (an anomaly; an earlier one not ruled out in time)'
            '</code>' in render_report(run_dir))


def test_report_links_node_logs_and_shows_only_their_last_lines(invalid_run):
    page = render_report(invalid_run)
    for node in ("n1", "n2", "n3"):
        assert f'href="nodes/{node}.log"' in page
    assert "n2 line 59: raft term 5" in page
    assert "n2 line 39:" not in page  # only the last 20 of 60 lines


def test_report_without_porcupine_page_has_no_link_to_it(tmp_path):
    run_dir = make_run(str(tmp_path), "20250102T030405Z", valid=True)
    page = render_report(run_dir)
    assert "linearizability.html" not in page
    assert 'data-valid="valid"' in page


def test_report_of_a_run_without_verdict_or_logs_still_renders(tmp_path):
    run_dir = make_run(str(tmp_path), "20250102T030405Z", valid=None, node_logs=False)
    page = render_report(run_dir)
    assert "no verdict (results.json missing)" in page
    assert 'data-valid="unknown"' in page
    assert "No node logs." in page


def test_report_of_a_malformed_history_says_so_and_keeps_the_verdict(tmp_path):
    run_dir = make_run(str(tmp_path), "20250102T030405Z", valid=True)
    with open(os.path.join(run_dir, "history.jsonl"), "a", encoding="utf-8") as fh:
        fh.write('{"type": "ok", "process": 99, "f": "read", "time": 5}\n')  # completion without invoke
    page = render_report(run_dir)
    assert "with no open invocation" in page
    assert 'data-valid="valid"' in page


def test_report_escapes_what_the_history_and_logs_say(tmp_path):
    run_dir = make_run(str(tmp_path), "20250102T030405Z", valid=True)
    with open(os.path.join(run_dir, "nodes", "n1.log"), "a", encoding="utf-8") as fh:
        fh.write("<script>alert(1)</script>\n")
    page = render_report(run_dir)
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)" in page


def test_write_report_needs_a_results_directory(tmp_path):
    with pytest.raises(FaultbedError, match="not a results directory"):
        write_report(str(tmp_path))


def test_report_command_writes_report_html_and_exits_3_for_a_non_run(tmp_path):
    run_dir = make_run(str(tmp_path), "20250102T030405Z", valid=True)
    done = subprocess.run([sys.executable, "-m", "faultbed", "report", run_dir], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert os.path.isfile(os.path.join(run_dir, "report.html"))
    bad = subprocess.run([sys.executable, "-m", "faultbed", "report", str(tmp_path)], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 3
    assert "not a results directory" in bad.stderr and "Traceback" not in bad.stderr



def test_one_pass_reading_gives_the_points_pairing_gives(tmp_path):
    """The report reads a history once, pairing on the fly (a long run's events are never all held):
    the same points, in invocation order, as pairing the whole list, timeouts and retired processes included."""
    from bench.histories import Shape, generate

    path = generate(Shape(3000, seed=4, keys=3, processes=6, info_rate=0.05, spec=False), str(tmp_path / "h.jsonl"))
    events = read_history(path)
    expected = []
    for op in pair_operations(events):
        if op.completion is not None:
            start = op.invoke["time"] / 1e9
            expected.append(OpPoint(start, max(0.0, (op.completion["time"] / 1e9 - start) * 1000), op.type, op.f))
    found = scan(iter(events))
    assert found.points == expected and any(p.type == "info" for p in expected)
    assert found.origin == events[0]["time"] / 1e9 and found.error is None


def test_points_are_columns_that_read_as_the_list_of_op_points_they_replace(tmp_path):
    """Points keep a long run's completed operations in arrays (21 bytes each, not ~300 as OpPoints in a
    list); reading, slicing, selecting by outcome or by time and counting agree with the list."""
    from bench.histories import Shape, generate

    path = generate(Shape(2000, seed=7, keys=2, processes=5, info_rate=0.05, spec=False), str(tmp_path / "h.jsonl"))
    points = scan(read_history(path)).points
    listed = list(points)
    assert isinstance(points, Points) and points == listed and len(points) == len(listed) > 1000
    assert points[7] == listed[7] and points[-1] == listed[-1] and points[3:50:4] == listed[3:50:4]
    for type_ in ("ok", "fail", "info", "never"):
        assert points.of_type(type_) == [p for p in listed if p.type == type_]
        assert points.count_of(type_) == sum(1 for p in listed if p.type == type_)
    middle = listed[len(listed) // 2].time
    assert points.invoked_before(middle) == [p for p in listed if p.time < middle]
    assert list(points.ends()) == [p.time + p.latency_ms / 1000 for p in listed]
    assert throughput(points) == throughput(listed)
    assert sampled(points.of_type("ok"), "ok", most=100)[0] == sampled([p for p in listed if p.type == "ok"], "ok",
                                                                          most=100)[0]


def test_a_pairing_error_ends_the_points_but_not_the_faults():
    events = [nemesis("start-partition", 1.0, id="p1"),
              {"type": "invoke", "process": 0, "f": "read", "time": 2_000_000_000},
              {"type": "invoke", "process": 0, "f": "read", "time": 3_000_000_000},
              nemesis("stop-partition", 4.0, id="p1")]
    found = scan(events)
    assert found.points == [] and "invoked while its previous operation is open" in found.error
    assert [e["f"] for e in found.nemesis] == ["start-partition", "stop-partition"]


def test_a_long_run_draws_every_nth_operation_and_says_so():
    points = [OpPoint(i / 1000, 1.0, "ok", "read") for i in range(45_001)]
    shown, label = sampled(points, "ok", most=20_000)
    assert len(shown) == 15_001 and shown[1] == points[3] and label == "ok (45001, 1 in 3 shown)"
    assert sampled(points[:10], "fail") == (points[:10], "fail (10)")


def test_a_report_drawn_from_a_history_files_columns_is_the_report_drawn_from_its_events(tmp_path, monkeypatch):
    """check_run hands the report its HistoryFile (the columns its scan kept), `faultbed report` of a run
    that is over opens one; a run still going is read event by event: the same page, byte for byte."""
    import faultbed.report as report
    from faultbed.history import HistoryFile

    run_dir = make_run(str(tmp_path), "20250102T030405Z", valid=False, faults=(("partition", 1.0, 4.0),
                                                                                ("kill", 2.0, 7.0)))
    with HistoryFile(os.path.join(run_dir, "history.jsonl")) as history:
        assert history.columns() is not None
        from_columns = render_report(run_dir, history)
    opened = render_report(run_dir)
    monkeypatch.setattr(report, "_over", lambda run_dir: False)
    assert from_columns == opened == render_report(run_dir) and "<img" in from_columns


def test_faultbed_report_of_a_run_that_is_over_reads_its_history_as_a_history_file(tmp_path, monkeypatch):
    """Not event by event (iter_history) but as the run's own check read it: its columns."""
    import faultbed.report as report

    run_dir = make_run(str(tmp_path), "20250102T030405Z", valid=True)
    streamed = []
    monkeypatch.setattr(report, "iter_history", lambda path: streamed.append(path) or iter(()))
    assert 'id="verdict"' in render_report(run_dir) and not streamed
    os.remove(os.path.join(run_dir, "results.json"))  # a run still going: read as it is written
    render_report(run_dir)
    assert streamed == [os.path.join(run_dir, "history.jsonl")]


def test_without_numpy_a_report_still_reads_a_history_files_points_and_says_the_plots_failed(tmp_path, monkeypatch):
    """A host without matplotlib (numpy comes with it) gets every section but the plots, as before."""
    import faultbed.report as report
    from faultbed.history import HistoryFile

    run_dir = make_run(str(tmp_path), "20250102T030405Z", valid=True)
    with_numpy = report._read_events(run_dir)[0]

    def no_numpy() -> None:
        raise ImportError("No module named 'numpy'")

    monkeypatch.setattr(report, "_numpy", no_numpy)
    with HistoryFile(os.path.join(run_dir, "history.jsonl")) as history:
        read, error = report._read_events(run_dir, history)
        page = render_report(run_dir, history)
    assert error is None and list(read.points) == list(with_numpy.points) and len(read.points) > 10
    assert "plots failed" in page and 'id="faults"' in page
