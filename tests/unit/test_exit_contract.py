"""The exit-code contract at the edge: a bug in faultbed is 255 with one line, never 1, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import faultbed.check_paths
import faultbed.commands.check
import faultbed.runner
from faultbed.cli import EXIT_CODES, main
from faultbed.crash import EXIT_INTERNAL, TRACEBACK_FILE


def _planted_bug(*args: object, **kwargs: object) -> int:
    # Every crash the fuzzing found is fixed, so a bug is planted here: there is no real one left to use.
    raise ZeroDivisionError("planted bug")


def test_an_unexpected_exception_exits_255_with_one_line_and_a_traceback_file(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FAULTBED_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(faultbed.commands.check, "execute", _planted_bug)
    code = main(["check", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == EXIT_INTERNAL
    assert len(err.splitlines()) == 1, err
    assert "internal error" in err and "ZeroDivisionError: planted bug" in err and "Traceback" not in err
    saved = Path(err.rsplit("traceback: ", 1)[1].strip())
    assert saved.parent == tmp_path / "state" / "tracebacks"
    assert "Traceback (most recent call last)" in saved.read_text()


def test_a_crash_during_a_run_writes_its_traceback_into_the_run_directory(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(faultbed.runner, "write_plan", _planted_bug)  # before any node starts
    code = main(["run", "--store", str(tmp_path / "store"), "--quiet", "--time-limit", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_INTERNAL
    assert err[-1].startswith("faultbed: internal error") and "Traceback" not in "\n".join(err)
    saved = Path(err[-1].rsplit("traceback: ", 1)[1])
    assert saved.name == TRACEBACK_FILE
    assert saved.parent == (tmp_path / "store" / "latest").resolve()


def test_help_documents_every_exit_code() -> None:
    out = subprocess.run([sys.executable, "-m", "faultbed", "--help"], capture_output=True, text=True,
                         timeout=60).stdout
    assert EXIT_CODES.splitlines()[0] in out
    for code in ("0", "1", "2", "3", "130", "255"):
        assert f"\n  {code} " in out, code


def test_readme_documents_every_exit_code() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for code in ("0", "1", "2", "3", "130", "255"):
        assert f"| {code} |" in readme, code


def test_a_report_that_cannot_be_written_costs_neither_the_verdict_nor_a_clean_stderr(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from faultbed.history import HistoryWriter
    from faultbed.runner import check_run
    from faultbed.spec import TestSpec
    from faultbed.workloads import load_workload

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "report.html").mkdir()  # in the way: the report cannot be written
    spec = TestSpec(store=str(tmp_path))
    (run_dir / "spec.json").write_text(spec.dumps())
    with HistoryWriter(str(run_dir / "history.jsonl")) as history:
        history.complete(history.invoke(0, "write", "k1", 1), "ok", 1)
        history.complete(history.invoke(1, "read", "k1"), "ok", 1)
    outcome = check_run(spec, load_workload("register"), str(run_dir))
    assert outcome.valid is True and (run_dir / "results.json").exists()
    warnings = [r for r in caplog.records if "could not write report.html" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].exc_info is None  # one line, no traceback


def test_a_bug_on_one_history_is_255_and_the_others_are_still_checked(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = faultbed.check_paths.submit_file

    def buggy_on_first(path: str, *args: Any, **kwargs: Any) -> Any:
        if path.endswith("a-first.jsonl"):
            raise ZeroDivisionError("planted bug")  # no real bug is left to use
        return real(path, *args, **kwargs)

    monkeypatch.setenv("FAULTBED_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(faultbed.check_paths, "submit_file", buggy_on_first)
    good = ('{"type": "invoke", "process": 0, "f": "write", "key": "a", "value": 1, "time": 1}\n'
            '{"type": "ok", "process": 0, "f": "write", "key": "a", "value": 1, "time": 2}\n')
    (tmp_path / "a-first.jsonl").write_text(good)
    (tmp_path / "b-second.jsonl").write_text(good)
    code = main(["check", str(tmp_path / "a-first.jsonl"), str(tmp_path / "b-second.jsonl")])
    captured = capsys.readouterr()
    assert code == EXIT_INTERNAL
    assert f"valid    {tmp_path}/b-second.jsonl" in captured.out
    assert len(captured.err.splitlines()) == 1 and "internal error" in captured.err
    assert "Traceback" not in captured.err


def test_a_logged_exception_is_one_line_naming_its_traceback_file(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import logging

    from faultbed.crash import OneLineFormatter, run_dir_on_error

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(OneLineFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("faultbed.test-one-line")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with run_dir_on_error(str(tmp_path)):
            try:
                {}["missing"]
            except KeyError:
                logger.exception("client raised on %s", "n1")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR client raised on n1 (KeyError: 'missing'; traceback: ")
    assert "Traceback (most recent call last)" in (tmp_path / TRACEBACK_FILE).read_text()
