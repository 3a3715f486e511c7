"""`faultbed check` at the edges (issue 17): malformed histories are clean errors, empty ones unknown,
and a directory is checked file by file, whatever is in it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from faultbed.cli import main

OK_WRITE = ('{"type": "invoke", "process": 0, "f": "write", "key": "a", "value": 1, "time": 1}\n'
            '{"type": "ok", "process": 0, "f": "write", "key": "a", "value": 1, "time": 2}\n')
BAD_READ = ('{"type": "invoke", "process": 1, "f": "read", "key": "a", "time": 3}\n'
            '{"type": "ok", "process": 1, "f": "read", "key": "a", "value": 7, "time": 4}\n')

# Each crashed with a Python traceback and exit 1 ("anomaly found") before issue 17.
MALFORMED = {
    "deep.jsonl": '{"type": "invoke", "process": 1, "f": "write", "time": 1, "value": '
                  + "[" * 5000 + "]" * 5000 + "}\n",
    "list-process.jsonl": '{"type": "invoke", "process": [1], "f": "write", "time": 1, "value": 1}\n',
    "ratio.edn": "[{:type :invoke, :process 0, :f :write, :value 1/0}]\n",
    "huge-ratio.edn": "[{:type :invoke, :process 0, :f :write, :value " + "9" * 400 + "/1}]\n",
    "escape.edn": '[{:type :invoke, :process 0, :f :write, :value "\\uzz"}]\n',
    "big-int.edn": "[{:type :invoke, :process 0, :f :write, :value " + "9" * 5000 + "}]\n",
    "big-process.log": "INFO  jepsen.util - " + "9" * 5000 + "\t:invoke\t:read\tnil\n",
    "big-value.log": "INFO  jepsen.util - 1\t:invoke\t:write\t" + "9" * 5000 + "\n",
    "big-process.txt": '{:process ' + "9" * 5000 + ', :type :invoke, :f :get, :key "a", :value nil}\n',
    "vector-process.txt": '{:process [1], :type :invoke, :f :get, :key "a", :value nil}\n',
    "list-f.edn": "[{:type :invoke, :process 0, :f [:write], :value 1}]\n",
    "deep.edn": "[{:type :invoke, :process 0, :f :write, :value " + "[" * 5000 + "]" * 5000 + "}]\n",
    "nan.jsonl": OK_WRITE + '{"type": "invoke", "process": 2, "f": "write", "key": "a", "value": NaN, "time": 5}\n'
                 '{"type": "ok", "process": 2, "f": "write", "key": "a", "value": NaN, "time": 6}\n',
    "map-keys.edn": "[{:type :invoke, :process 0, :f :write, :value {1 2, :a 3}}\n"
                    " {:type :ok, :process 0, :f :write, :value {1 2, :a 3}}]\n",
}


def check(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["check", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_a_malformed_history_is_one_clean_error_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                     name: str) -> None:
    path = tmp_path / name
    path.write_text(MALFORMED[name])
    code, out, err = check(capsys, str(path))
    assert code == 3, (out, err)
    assert len(err.splitlines()) == 1 and err.startswith(f"faultbed: {path}"), err
    assert "internal error" not in err and "Traceback" not in err
    assert out.split() == ["error", str(path)]


def test_binary_garbage_is_one_clean_error_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "garbage.jsonl"
    path.write_bytes(bytes(range(256)) * 4)
    code, _, err = check(capsys, str(path))
    assert code == 3 and err.strip() == f"faultbed: {path}: not a history: not UTF-8 text"


@pytest.mark.parametrize("content", ["", "\n\n", '{"type": "invo', '{"type": "invoke", "process": 1, "f": "write", '
                                     '"key": "a", "value": 1, "time": 9223372036854775807}\n'])
def test_a_history_where_nothing_completed_is_unknown_with_a_reason(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text(content)
    code, out, _ = check(capsys, str(path))
    assert code == 2, out
    assert out.startswith("unknown") and "no operation completed" in out


def test_the_null_device_is_an_empty_history(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = check(capsys, os.devnull)
    assert code == 2 and out.startswith(f"unknown  {os.devnull}")


def test_a_bad_file_never_stops_the_valid_ones_after_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "a-bad.edn").write_text(MALFORMED["ratio.edn"])
    (tmp_path / "b-crash.jsonl").write_text(MALFORMED["list-process.jsonl"])
    (tmp_path / "c-good.jsonl").write_text(OK_WRITE)
    (tmp_path / "d-invalid.jsonl").write_text(OK_WRITE + BAD_READ)
    code, out, err = check(capsys, str(tmp_path))
    verdicts = {line.split()[1]: line.split()[0] for line in out.splitlines()[:-1]}
    assert verdicts == {f"{tmp_path}/a-bad.edn": "error", f"{tmp_path}/b-crash.jsonl": "error",
                        f"{tmp_path}/c-good.jsonl": "valid", f"{tmp_path}/d-invalid.jsonl": "INVALID"}
    assert code == 3  # the worst: error > invalid > unknown > valid
    assert len(err.splitlines()) == 2 and "Traceback" not in err


def test_worst_wins_without_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "good.jsonl").write_text(OK_WRITE)
    (tmp_path / "empty.jsonl").write_text("")
    assert check(capsys, str(tmp_path))[0] == 2
    (tmp_path / "invalid.jsonl").write_text(OK_WRITE + BAD_READ)
    assert check(capsys, str(tmp_path))[0] == 1


def test_notes_and_node_logs_are_skipped_not_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("what I tried today\n")
    (tmp_path / "server.log").write_text("2026-12-01 started\n")
    (tmp_path / "README").write_text("not looked at\n")
    (tmp_path / "spec.json").write_text("{}")
    (tmp_path / "good.jsonl").write_text(OK_WRITE)
    (tmp_path / "kv.txt").write_text('{:process 0, :type :invoke, :f :put, :key "a", :value "x"}\n'
                                     '{:process 0, :type :ok, :f :put, :key "a", :value nil}\n')
    code, out, err = check(capsys, str(tmp_path))
    lines = out.splitlines()
    assert code == 0, out + err
    assert [line.split()[0] for line in lines[:-1]] == ["valid", "valid", "skipped", "skipped"]
    assert "notes.txt: not a history" in lines[2] and "server.log: not a history" in lines[3]
    assert err == ""


def test_a_directory_of_notes_only_has_no_histories(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing here\n")
    code, _, err = check(capsys, str(tmp_path))
    assert code == 3 and "no histories found" in err


def test_fifos_are_never_opened(tmp_path: Path) -> None:
    """A FIFO in the directory is skipped, one named on the command line an error: neither hangs."""
    (tmp_path / "good.jsonl").write_text(OK_WRITE)
    os.mkfifo(tmp_path / "pipe.jsonl")
    command = [sys.executable, "-m", "faultbed", "check"]
    in_directory = subprocess.run(command + [str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert in_directory.returncode == 0, in_directory.stderr
    assert f"skipped  {tmp_path}/pipe.jsonl: a FIFO" in in_directory.stdout
    named = subprocess.run(command + [str(tmp_path / "pipe.jsonl"), str(tmp_path / "good.jsonl")],
                           capture_output=True, text=True, timeout=60)
    assert named.returncode == 3
    assert named.stderr.strip() == f"faultbed: {tmp_path}/pipe.jsonl: not a regular file (a FIFO): not read"
    assert f"valid    {tmp_path}/good.jsonl" in named.stdout


def test_json_output_names_the_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "bad.edn").write_text(MALFORMED["ratio.edn"])
    code, out, _ = check(capsys, "--json", str(tmp_path / "bad.edn"))
    assert code == 3 and "1/0" in json.loads(out)["error"]


@pytest.mark.parametrize("flags", [["--timeout", "nan"], ["--timeout", "inf"], ["--timeout", "-1"],
                                   ["--initial", "NaN"], ["--initial", "Infinity"], ["--initial", "[" * 5000],
                                   ["--memory-limit", "nan"], ["--memory-limit", "inf"], ["--memory-limit", "0"]])
def test_bad_check_flags_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path, flags: list[str]) -> None:
    (tmp_path / "good.jsonl").write_text(OK_WRITE)
    code, out, err = check(capsys, *flags, str(tmp_path / "good.jsonl"))
    assert code == 3 and out == "" and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("system, workload", [("broker", "queue"), ("raftkv", "idempotency"), ("raftkv", "register")])
def test_a_run_where_nothing_happened_is_unknown_for_every_workload(capsys: pytest.CaptureFixture[str],
                                                                    tmp_path: Path, system: str, workload: str) -> None:
    """Re-checked by its workload's checkers, an empty run must not pass as valid (the queue's did)."""
    from faultbed.spec import TestSpec

    (tmp_path / "spec.json").write_text(TestSpec(system=system, workload=workload).dumps())
    (tmp_path / "history.jsonl").write_text("")
    code, out, _ = check(capsys, str(tmp_path))
    assert code == 2 and out.startswith("unknown"), out
