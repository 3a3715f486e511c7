"""`faultbed check`: verdict lines, JSON, directories, exit codes, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from faultbed.cli import main
from faultbed.history import HistoryWriter


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["check", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def results_dir(path: Path, read_value: int) -> Path:
    """A faultbed results directory: spec.json, history.jsonl and node logs."""
    path.mkdir(parents=True)
    (path / "spec.json").write_text(json.dumps({"workload": "register"}))
    (path / "nodes").mkdir()
    (path / "nodes" / "n1.log").write_text("not a history\n")
    with HistoryWriter(str(path / "history.jsonl")) as history:
        history.complete(history.invoke(0, "write", "k1", 1), "ok", 1)
        history.nemesis("start-partition", {"n1": ["n2"]})
        history.complete(history.invoke(1, "read", "k1"), "ok", read_value)
    return path


def test_valid_history_exits_0_with_one_line(capsys: pytest.CaptureFixture[str], corpus: Path) -> None:
    code, out, _ = run(capsys, str(corpus / "porcupine/jepsen/etcd_002.log"))
    assert code == 0
    assert out.startswith("valid ") and "cas-register" in out
    assert len(out.splitlines()) == 1


def test_invalid_history_exits_1(capsys: pytest.CaptureFixture[str], corpus: Path) -> None:
    code, out, _ = run(capsys, str(corpus / "porcupine/kv/c10-bad.txt"))
    assert code == 1
    assert out.startswith("INVALID") and "illegal keys" in out


def test_timeout_exits_2_unknown(capsys: pytest.CaptureFixture[str], corpus: Path) -> None:
    code, out, _ = run(capsys, str(corpus / "porcupine/kv/c50-ok.txt"), "--timeout", "0.001")
    assert code == 2
    assert out.startswith("unknown") and "timed out" in out


def test_bad_line_exits_3_naming_file_and_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "broken.log"
    path.write_text("INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0 garbage\n")
    code, out, err = run(capsys, str(path))
    assert code == 3
    assert err.strip() == f"faultbed: {path}:2: not a Jepsen etcd log line: 'INFO  jepsen.util - 0 garbage'"
    assert out.split() == ["error", str(path)]


def test_op_the_model_does_not_know_exits_3_naming_the_line(capsys: pytest.CaptureFixture[str],
                                                            corpus: Path) -> None:
    code, _, err = run(capsys, str(corpus / "porcupine/jepsen/etcd_000.log"), "--model", "register")
    assert code == 3
    assert err.startswith(f"faultbed: {corpus / 'porcupine/jepsen/etcd_000.log'}:")
    assert 'model register does not know operation "cas"' in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("argv, message", [
    (["--model", "nope"], "unknown model 'nope'"),
    (["--format", "xml"], "unknown format 'xml'"),
    (["--initial", "{x"], "--initial must be a JSON value"),
])
def test_bad_options_exit_3_with_one_line(capsys: pytest.CaptureFixture[str], corpus: Path,
                                          argv: list[str], message: str) -> None:
    code, _, err = run(capsys, str(corpus / "porcupine/jepsen/etcd_002.log"), *argv)
    assert code == 3
    assert message in err and len(err.splitlines()) == 1


def test_missing_path_exits_3(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, str(tmp_path / "nothing.jsonl"))
    assert code == 3
    assert "nothing.jsonl: cannot read history" in err


def test_json_has_one_object_per_history(capsys: pytest.CaptureFixture[str], corpus: Path) -> None:
    code, out, _ = run(capsys, "--json", str(corpus / "porcupine/kv/c01-ok.txt"),
                       str(corpus / "knossos/mutex/bad/etcd.edn"))
    assert code == 1
    first, second = (json.loads(line) for line in out.splitlines())
    assert {"path", "model", "valid", "ops", "elapsed_ms", "porcupine_ms", "format"} <= set(first)
    assert (first["model"], first["valid"], first["format"]) == ("kv", True, "porcupine-kv")
    assert (second["model"], second["valid"], second["format"]) == ("mutex", False, "edn")
    assert first["ops"] > 0 and first["elapsed_ms"] > 0


def test_json_says_where_the_time_beside_the_search_went(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from bench.histories import Shape, generate

    path = generate(Shape(4000, seed=3, spec=False), str(tmp_path / "h.jsonl"))
    code, out, _ = run(capsys, "--json", path)
    answer = json.loads(out)
    assert code == 0 and answer["valid"] is True
    times = answer["times"]
    assert set(times) == {"python_ms", "before_search_ms", "between_searches_ms", "after_search_ms"}
    assert all(t >= -0.005 for t in times.values()) and times["python_ms"] > 0 and times["before_search_ms"] > 0
    # with the search's own time they are the whole check (each rounded, or cut, to the microsecond)
    assert sum(times.values()) + answer["porcupine_ms"] == pytest.approx(answer["elapsed_ms"], abs=0.01)


def test_directory_checks_every_history_once_and_exits_with_the_worst(
        capsys: pytest.CaptureFixture[str], corpus: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    results_dir(store / "raftkv-register" / "20260101T000000Z", read_value=1)
    results_dir(store / "raftkv-register" / "20260102T000000Z", read_value=2)
    shutil.copy(corpus / "porcupine/jepsen/etcd_002.log", store / "etcd_002.log")
    (store / "README.md").write_text("# not a history\n")
    code, out, _ = run(capsys, str(store), "--visualize", str(tmp_path / "pictures"))
    lines = out.splitlines()
    assert code == 1
    assert len(lines) == 4
    assert lines[-1].startswith("3 histories: 2 valid, 1 invalid, 0 unknown, 0 errors")
    assert all("nodes" not in line for line in lines)
    invalid = [line for line in lines if line.startswith("INVALID")]
    assert len(invalid) == 1 and "20260102T000000Z" in invalid[0] and "kv" in invalid[0]
    pictures = sorted(p.name for p in (tmp_path / "pictures").iterdir())
    assert pictures == ["raftkv-register_20260102T000000Z.html"]


def test_results_directory_checks_its_history(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run_dir = results_dir(tmp_path / "run", read_value=1)
    code, out, _ = run(capsys, "--json", str(run_dir))
    assert code == 0
    (line,) = out.splitlines()
    assert json.loads(line)["path"] == str(run_dir / "history.jsonl")


def test_an_error_outweighs_an_invalid_history(capsys: pytest.CaptureFixture[str], corpus: Path,
                                               tmp_path: Path) -> None:
    broken = tmp_path / "broken.edn"
    broken.write_text("[{:process 0, :type :invoke}]")
    code, out, err = run(capsys, str(corpus / "porcupine/kv/c01-bad.txt"), str(broken))
    assert code == 3
    assert "broken.edn:1: entry has no :f" in err
    assert "1 invalid" in out and "1 errors" in out


def test_forced_format_and_initial_value(capsys: pytest.CaptureFixture[str], corpus: Path) -> None:
    path = str(corpus / "knossos/multi-register/good/multi-register.edn")
    assert run(capsys, path, "--format", "edn", "--initial", '{"x": 0, "y": 0}')[0] == 0
    code, _, err = run(capsys, path, "--format", "porcupine-etcd")
    assert code == 3 and "not a Jepsen etcd log line" in err


def test_bad_initial_value_for_the_model_names_the_file(capsys: pytest.CaptureFixture[str], corpus: Path) -> None:
    path = corpus / "knossos/multi-register/good/multi-register.edn"
    code, _, err = run(capsys, str(path), "--initial", "[1]")
    assert code == 3
    assert err.strip() == (f"faultbed: {path}: multi-register initial value must be a JSON object of keys, "
                           f"not [1]")


# -- a faultbed run is re-checked by every checker of its workload --------------------------------

def run_of(path: Path, events: list[dict[str, object]], **spec: object) -> Path:
    from faultbed.spec import TestSpec

    path.mkdir(parents=True)
    (path / "spec.json").write_text(json.dumps(TestSpec(**spec).to_json()))  # type: ignore[arg-type]
    (path / "history.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def test_an_idempotency_run_is_rechecked_by_its_workloads_checker(capsys: pytest.CaptureFixture[str],
                                                                  tmp_path: Path) -> None:
    from tests.checkers.test_compose import idempotent_history

    lost = run_of(tmp_path / "lost", idempotent_history(lost=True), system="raftkv", workload="idempotency")
    fine = run_of(tmp_path / "fine", idempotent_history(lost=False), system="raftkv", workload="idempotency")
    code, out, _ = run(capsys, str(lost))
    assert code == 1
    assert out.startswith(f"INVALID  {lost}/history.jsonl  idempotency: INVALID (lost 1; first anomaly at "), out
    assert "); stats: valid" in out
    code, out, _ = run(capsys, str(fine), "--json")
    assert code == 0
    line = json.loads(out)
    assert (line["workload"], line["valid"]) == ("idempotency", True)
    assert [r["checker"] for r in line["results"]] == ["idempotency", "stats"]  # as the run itself had them


def test_a_queue_run_is_judged_by_its_systems_delivery_guarantee(capsys: pytest.CaptureFixture[str],
                                                                tmp_path: Path) -> None:
    from tests.checkers.test_queue import History as QueueHistory

    history = QueueHistory()
    history.publish(0, "0-0")
    history.deliver(5, "0-0")
    history.deliver(6, "0-0")  # delivered twice
    history.consume(5, None)
    history.drained()
    exactly_once = run_of(tmp_path / "broker", history.events, system="broker", workload="queue")
    at_least_once = run_of(tmp_path / "rabbitmq", history.events, system="rabbitmq", workload="queue")
    code, out, _ = run(capsys, str(exactly_once))
    assert code == 1 and "queue: INVALID (duplicated 1; first anomaly at " in out
    code, out, _ = run(capsys, str(at_least_once))
    assert code == 0 and "queue: valid (duplicated 1 (duplicates allowed: at-least-once))" in out


def test_a_run_whose_checker_cannot_judge_is_unknown_and_the_reason_is_shown(capsys: pytest.CaptureFixture[str],
                                                                            tmp_path: Path) -> None:
    from tests.checkers.test_queue import History as QueueHistory

    history = QueueHistory()
    history.publish(0, "0-0")
    gone = run_of(tmp_path / "gone", history.events, system="./no-such-system.toml", workload="queue")
    code, out, _ = run(capsys, str(gone))
    assert code == 2
    assert out.startswith("unknown ") and "queue: unknown (error: " in out and "no such system file" in out


def test_a_directory_of_etcd_logs_is_checked_in_go_alone_with_the_corpus_verdicts(
        capsys: pytest.CaptureFixture[str], corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """porcupine's 103 logs are queued in Go (checked in parallel there); none is left to Python's reader."""
    import faultbed.check_paths
    from tests.checkers.test_corpus import ETCD_LINEARIZABLE

    def python_path(path: str, *args: object) -> object:
        raise AssertionError(f"{path} was checked by Python, not queued in Go")

    monkeypatch.setattr(faultbed.check_paths, "check_path", python_path)
    code, out, _ = run(capsys, "--json", str(corpus / "porcupine/jepsen"))
    assert code == 1
    answers = {Path(a["path"]).name: a for a in map(json.loads, out.splitlines())}
    assert len(answers) == 103
    assert answers.pop("etcd_095.log")["skipped"]  # empty: a .log whose first line is no history
    for name, answer in answers.items():
        expected = int(name[5:8]) in ETCD_LINEARIZABLE
        assert (answer["valid"], answer["format"], answer["model"]) == (expected, "porcupine-etcd", "cas-register"), name


def test_a_jsonl_history_go_cannot_read_is_left_to_python_which_names_the_problem(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "torn.jsonl"
    path.write_text('{"type": "invoke", "process": 0, "f": "write", "key": "a", "value": 1, "time": 1}\n'
                    '{"type": "ok", "process": 0, "f": "write", "key": "a", "value": 1, "time": 2}\n'
                    '{"type": "invoke", "process": 0, "f": "read", "key": "a", "time": [3]}\n'
                    '{"type": "ok", "process": 0, "f": "read", "key": "a", "value": 1, "time": 4}\n')
    code, out, err = run(capsys, str(tmp_path))
    assert code == 3
    assert err.startswith(f"faultbed: {path}:3") and len(err.splitlines()) == 1, err


def test_a_bad_memory_limit_in_the_environment_is_one_line_exit_3(
        capsys: pytest.CaptureFixture[str], corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAULTBED_CHECK_MEMORY_MB", "lots")
    code, out, err = run(capsys, str(corpus / "porcupine/jepsen"))
    assert code == 3 and out == ""
    assert err.strip() == "faultbed: $FAULTBED_CHECK_MEMORY_MB must be a number of megabytes, not 'lots'"


def test_an_impossible_read_is_named_on_the_line_and_in_the_json(capsys: pytest.CaptureFixture[str],
                                                                  tmp_path: Path) -> None:
    from bench.histories import Shape, generate

    path = generate(Shape(3000, seed=2, keys=1, processes=20, broken=True, spec=False), str(tmp_path / "h.jsonl"))
    code, out, _ = run(capsys, path)
    assert code == 1
    assert out.startswith("INVALID") and 'illegal keys: "k0" (read("k0") saw -1, which nothing called before it ' \
                                           'returned wrote)' in out
    code, out, _ = run(capsys, "--json", path)
    assert code == 1 and [(r["key"], r["value"]) for r in json.loads(out)["impossible_reads"]] == [("k0", -1)]
