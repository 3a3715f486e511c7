"""The command line starts fast: it imports only the command it runs."""

from __future__ import annotations

import subprocess
import sys

import pytest

import faultbed
from faultbed.cli import main


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"faultbed {faultbed.__version__}"


@pytest.mark.parametrize("argv, absent", [
    (["--version"], ["faultbed.runner", "faultbed.commands.check", "rich", "requests", "logging", "tomllib"]),
    # check --help: its arguments only; the checking (formats, porcupine's bindings, threads) when it runs
    (["check", "--help"], ["faultbed.runner", "faultbed.commands.run", "rich", "requests", "faultbed.check_paths",
                           "faultbed.checkers.formats", "faultbed.checkers.linearizable", "ctypes", "logging",
                           "concurrent.futures", "faultbed.crash"]),
])
def test_a_command_imports_nothing_it_does_not_run(argv: list[str], absent: list[str]) -> None:
    probe = (f"import sys; from faultbed.cli import main\n"
             f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
             f"print(sorted(m for m in {absent!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_top_level_help_still_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in ("run", "check", "replay", "report", "gc"))


def test_the_cli_exit_code_for_bad_input_is_the_checkers(capsys: pytest.CaptureFixture[str]) -> None:
    from faultbed.checkers.result import EXIT_ERROR
    from faultbed.cli import EXIT_ERROR as CLI_EXIT_ERROR

    assert CLI_EXIT_ERROR == EXIT_ERROR
    assert main(["check", "--model", "no-such-model", "x"]) == EXIT_ERROR
