"""Inputs validated where they enter (issue 17): flags, spec.json, schedule.json, results.json, --junit,
--store. Each is one line and exit 3, before a results directory is created or `latest` points at it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from faultbed.cli import main
from faultbed.nemesis.schedule import generate_schedule
from faultbed.spec import TestSpec


def faultbed(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse exits itself, with 3 for bad flags
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


BAD_RUN_FLAGS = [
    ["--rate", "nan"], ["--rate", "inf"], ["--rate", "-1"], ["--rate", "1e9"],
    ["--time-limit", "nan"], ["--time-limit", "inf"], ["--time-limit", "0"], ["--time-limit", "-5"],
    ["--nemesis-interval", "nan"], ["--nemesis-interval", "1e-9"], ["--nemesis-interval", "inf"],
    ["--op-timeout", "nan"], ["--op-timeout", "0"], ["--op-timeout", "1e300"],
    ["--nodes", "0"], ["--nodes", "1000"], ["--concurrency", "0"], ["--concurrency", "100000"],
    ["--keys", "0"], ["--keys", "1000000"], ["--seed", str(2**64)], ["--nodes", "1" + "0" * 5000],
    ["--rate", "10000", "--time-limit", "86400"], ["--disk-writeback", "nan"], ["--disk-writeback", "-1"],
    ["--disk-writeback", "inf"],
    # system options: NAME=VALUE, a name the system declares, a value it offers
    ["--option", "queue-type"], ["--option", "=quorum"], ["--option", "queue-type="], ["--option", "colour=red"],
    ["--system", "rabbitmq", "--backend", "docker", "--workload", "queue", "--option", "queue-type=mirrored"],
    ["--system", "rabbitmq", "--backend", "docker", "--workload", "queue", "--option", "ha-mode=all"],
]


@pytest.mark.parametrize("flags", BAD_RUN_FLAGS, ids=[" ".join(f)[:40] for f in BAD_RUN_FLAGS])
def test_a_bad_number_is_one_line_before_anything_is_created(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                             flags: list[str]) -> None:
    store = tmp_path / "store"
    code, out, err = faultbed(capsys, "run", "--store", str(store), "--quiet", *flags)
    assert code == 3, err
    assert len(err.splitlines()) == 1 and err.startswith("faultbed: ") and len(err) < 400, err
    assert "internal error" not in err
    assert not store.exists()  # no results directory, no `latest` pointing at nothing


def test_the_limits_are_documented_in_run_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    for name in ("--nodes", "--concurrency", "--keys", "--rate", "--time-limit", "--nemesis-interval",
                 "--op-timeout", "--seed"):
        assert any(line.strip().startswith(name) and "<=" in line for line in out.splitlines()), name


def test_a_store_that_is_a_file_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.write_text("not a directory")
    code, _, err = faultbed(capsys, "run", "--store", str(store), "--quiet", "--time-limit", "1")
    assert code == 3 and len(err.strip().splitlines()) == 2, err  # the announcement, then the one error line
    assert err.strip().splitlines()[-1].startswith(f"faultbed: --store {store}: cannot create a results directory")


def test_a_store_where_nothing_can_be_created_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    # root ignores permission bits, so the unwritable place is sysfs, where mkdir is refused to everyone
    code, _, err = faultbed(capsys, "run", "--store", "/sys/faultbed-store", "--quiet", "--time-limit", "1")
    assert code == 3 and "cannot create a results directory" in err.strip().splitlines()[-1], err


def test_junit_into_a_missing_directory_is_refused_before_the_run(capsys: pytest.CaptureFixture[str],
                                                                 tmp_path: Path) -> None:
    store = tmp_path / "store"
    code, _, err = faultbed(capsys, "run", "--store", str(store), "--quiet", "--time-limit", "1",
                            "--junit", str(tmp_path / "missing" / "report.xml"))
    assert code == 3 and "no such directory" in err and len(err.splitlines()) == 1, err
    assert not store.exists() and not (tmp_path / "missing").exists()


@pytest.mark.parametrize("port", ["99999", "-1", "65536"])
def test_serve_refuses_a_port_out_of_range(capsys: pytest.CaptureFixture[str], tmp_path: Path, port: str) -> None:
    code, _, err = faultbed(capsys, "serve", "--store", str(tmp_path), "--port", port)
    assert code == 3 and err.strip() == f"faultbed: --port must be 0-65535, not {port}"


def stored_run(tmp_path: Path, spec_text: str | None = None, schedule_text: str | None = None,
               results_text: str | None = None) -> Path:
    """A results directory with the given files (a valid spec and schedule unless given)."""
    run_dir = tmp_path / "store" / "raftkv-register" / "20260101T000000Z"
    run_dir.mkdir(parents=True)
    spec = TestSpec(store=str(tmp_path / "store"), time_limit=1, seed=3)
    (run_dir / "spec.json").write_text(spec.dumps() if spec_text is None else spec_text)
    schedule = generate_schedule(spec, ["n1", "n2", "n3", "n4", "n5"]).dumps()
    (run_dir / "schedule.json").write_text(schedule if schedule_text is None else schedule_text)
    if results_text is not None:
        (run_dir / "results.json").write_text(results_text)
    return run_dir


BAD_SPECS: dict[str, str | None] = {
    "a list": "[]", "not JSON": "{", "binary": None, "NaN rate": '{"rate": NaN}',
    "a string for nodes": '{"nodes": "5"}', "a bool for keys": '{"keys": true}', "a float for nodes": '{"nodes": 5.0}',
    "a string for nemesis": '{"nemesis": "partition"}', "numbers in bugs": '{"bugs": [1]}',
    "null system": '{"system": null}', "options a list": '{"options": []}', "unknown field": '{"colour": 1}',
    "huge integer": '{"seed": ' + "9" * 5000 + "}", "deep": '{"options": ' + "[" * 5000 + "]" * 5000 + "}",
    "check_timeout NaN-ish": '{"options": {"check_timeout": "soon"}}', "rate too high": '{"rate": 1e9}',
    "system options a list": '{"options": {"system": []}}',
    "an option raftkv lacks": '{"options": {"system": {"queue-type": "quorum"}}}',
}


@pytest.mark.parametrize("name", sorted(BAD_SPECS))
def test_replay_refuses_a_malformed_spec_in_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                     name: str) -> None:
    run_dir = stored_run(tmp_path, spec_text=BAD_SPECS[name] or "")
    if BAD_SPECS[name] is None:
        (run_dir / "spec.json").write_bytes(b"\xff\xfe\x00garbage")
    before = sorted(os.listdir(run_dir.parent))
    code, _, err = faultbed(capsys, "replay", str(run_dir))
    assert code == 3, err
    assert len(err.splitlines()) == 1 and err.startswith(f"faultbed: {run_dir}/spec.json"), err
    assert sorted(os.listdir(run_dir.parent)) == before  # nothing ran, nothing was stored


BAD_SCHEDULES = {"a list": "[]", "not JSON": "{", "events a string": None, "version 2": None, "empty": ""}


@pytest.mark.parametrize("name", sorted(BAD_SCHEDULES))
def test_replay_refuses_a_malformed_schedule_in_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                         name: str) -> None:
    good = json.loads(generate_schedule(TestSpec(time_limit=1, seed=3), ["n1", "n2", "n3", "n4", "n5"]).dumps())
    text = BAD_SCHEDULES[name]
    if name == "events a string":
        text = json.dumps({**good, "events": "soon"})
    elif name == "version 2":
        text = json.dumps({**good, "version": 2})
    run_dir = stored_run(tmp_path, schedule_text=text)
    code, _, err = faultbed(capsys, "replay", str(run_dir))
    assert code == 3, err
    assert len(err.splitlines()) == 1 and err.startswith(f"faultbed: {run_dir}/schedule.json"), err


BAD_RESULTS = {"a list": "[1]", "valid a string": '{"valid": "yes"}', "results not a list": '{"valid": true, '
               '"results": 3}', "a result not an object": '{"valid": true, "results": [1]}',
               "counts strings": '{"valid": true, "counts": {"ok": "many"}}', "not JSON": "{"}


@pytest.mark.parametrize("name", sorted(BAD_RESULTS))
def test_report_refuses_malformed_results_in_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                      name: str) -> None:
    run_dir = stored_run(tmp_path, results_text=BAD_RESULTS[name])
    code, _, err = faultbed(capsys, "report", str(run_dir))
    assert code == 3, err
    assert len(err.splitlines()) == 1 and err.startswith(f"faultbed: {run_dir}/results.json"), err


def test_report_of_a_binary_history_is_written_and_says_why_it_has_no_plots(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run_dir = stored_run(tmp_path, results_text='{"valid": true, "results": [], "counts": {}}')
    (run_dir / "history.jsonl").write_bytes(bytes(range(256)))
    code, out, err = faultbed(capsys, "report", str(run_dir))
    assert code == 0, err
    assert "not UTF-8" in (run_dir / "report.html").read_text()


@pytest.mark.parametrize("system", ["json:dumps", "os:system", "faultbed.cli:main"])
def test_a_module_attribute_that_is_not_a_system_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                             system: str) -> None:
    """Found by the fuzz tests: an AttributeError deep in the runner (exit 255) for a user's typo."""
    store = tmp_path / "store"
    code, _, err = faultbed(capsys, "run", "--system", system, "--store", str(store), "--quiet", "--time-limit", "1")
    assert code == 3 and err.strip() == f"faultbed: {system!r} is not a system: it has no name, ports, peer_ports, " \
                                        f"client_port, bugs, workloads, traits, command, open_client", err
    assert not store.exists()


def test_report_never_opens_a_fifo_history(tmp_path: Path) -> None:
    """Reading a FIFO blocks until someone writes: report must refuse it, not hang."""
    import subprocess
    import sys

    run_dir = stored_run(tmp_path, results_text='{"valid": true, "results": [], "counts": {}}')
    os.mkfifo(run_dir / "history.jsonl")
    proc = subprocess.run([sys.executable, "-m", "faultbed", "report", str(run_dir)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "not a regular file (a FIFO)" in (run_dir / "report.html").read_text()
