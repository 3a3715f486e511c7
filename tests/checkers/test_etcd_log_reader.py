"""Go's reader of porcupine's Jepsen etcd logs agrees with Python's, and leaves what it is unsure of to Python."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from faultbed.checkers.formats import import_porcupine_etcd, load_history
from faultbed.checkers.linearizable import check_file, check_imported, check_operations
from faultbed.errors import HistoryError

CORPUS = Path(os.environ.get("FAULTBED_CORPUS") or Path(__file__).resolve().parents[3] / "shared" / "corpus")
JEPSEN = CORPUS / "porcupine" / "jepsen"


def python_answer(path: Path) -> tuple[object, int]:
    history = import_porcupine_etcd(path.read_text(), str(path))
    result = check_operations(history.ops, "cas-register", where=history.where)
    return result.valid, result.details["ops"]


def go_answer(path: Path) -> tuple[object, int] | None:
    result = check_file(str(path), "cas-register", format="porcupine-etcd")
    return None if result is None else (result.valid, result.details["ops"])


def test_every_jepsen_log_gets_the_same_verdict_and_ops_from_go_as_from_python() -> None:
    logs = sorted(JEPSEN.glob("*.log"))
    assert len(logs) == 103, f"porcupine's Jepsen logs not found at {JEPSEN}"
    for log in logs:
        assert go_answer(log) == python_answer(log), log.name


LINE = "INFO  jepsen.util - {}\t:{}\t:{}\t{}"


def log_of(*entries: tuple[object, str, str, str]) -> str:
    return "\n".join(LINE.format(*entry) for entry in entries) + "\n"


@pytest.mark.parametrize("text", [
    # a failed cas ran; a timed-out read constrains nothing; open at the end: a write stays pending
    log_of((0, "invoke", "write", "3"), (0, "ok", "write", "3"), (1, "invoke", "cas", "[3 4]"),
           (1, "fail", "cas", "[3 4]"), (2, "invoke", "read", "nil"), (2, "fail", "read", ":timed-out"),
           (3, "invoke", "write", "9"), (4, "invoke", "read", "nil"), (4, "ok", "read", "3")),
    # illegal: the failed cas found 3 although 3 was there
    log_of((0, "invoke", "write", "3"), (0, "ok", "write", "3"), (1, "invoke", "cas", "[3 4]"),
           (1, "fail", "cas", "[3 4]"), (2, "invoke", "read", "nil"), (2, "ok", "read", "3")),
    # leading zeros, spaces inside the pair, CRLF, blank lines, an info write pending to the end
    "INFO jepsen.util - 007 :invoke :write 05\r\n\r\nINFO jepsen.util - 7 :ok :write 5\r\n"
    "INFO jepsen.util - 2 :invoke :cas [ 5   -0 ]\nINFO jepsen.util - 2 :ok :cas [5 0]\n"
    "INFO jepsen.util - 3 :invoke :write 1\nINFO jepsen.util - 3 :info :write :timed-out\n"
    "INFO jepsen.util - 4 :invoke :read nil\nINFO jepsen.util - 4 :ok :read 1   \n",
    # an info read constrains nothing, and the process invokes again (no retirement in this format)
    log_of((0, "invoke", "read", "nil"), (0, "info", "read", ":timed-out"), (0, "invoke", "read", "nil"),
           (0, "ok", "read", "nil")),
], ids=["mixed", "illegal", "odd-spacing", "info-read"])
def test_go_reads_a_log_as_python_reads_it(tmp_path: Path, text: str) -> None:
    path = tmp_path / "etcd.log"
    path.write_bytes(text.encode())
    assert go_answer(path) == python_answer(path)


@pytest.mark.parametrize("text", [
    "INFO jepsen.util - 1 :invoke :read nil\nINFO jepsen.util - 1 :invoke :read nil\n",   # invokes twice
    "INFO jepsen.util - 1 :ok :read 3\n",                                                  # nothing open
    "INFO jepsen.util - 1 :invoke :write 1\nINFO jepsen.util - 1 :done :write 1\n",       # unknown type
    "INFO jepsen.util - 1 :invoke :write [1,2]\n",                                        # not a pair
    "INFO jepsen.util - 1 :invoke :write\n",                                              # no value
    "  INFO jepsen.util - 1 :invoke :write 1\n",                                          # indented
    "INFO jepsen.util - 1 :invoke :write +1\n",                                           # a sign Python refuses
    "INFO jepsen.util - 1 :invoke :write " + "9" * 30 + "\n",                             # big integer
    "INFO jepsen.util - ١ :invoke :write 1\n",                                            # a non-ASCII digit
    "INFO jepsen.util - 1 :invoke :write 1\x0bINFO jepsen.util - 1 :ok :write 1\n",      # \v splits lines in Python
    "INFO jepsen.util - 1 :invoke :frob 1\nINFO jepsen.util - 1 :ok :frob 1\n",          # the model refuses it
])
def test_go_leaves_what_it_is_unsure_of_to_python_which_decides(tmp_path: Path, text: str) -> None:
    path = tmp_path / "etcd.log"
    path.write_bytes(text.encode())
    assert check_file(str(path), "cas-register", format="porcupine-etcd") is None
    try:
        expected: object = python_answer(path)
    except HistoryError as exc:
        expected = str(exc)
    try:
        history = load_history(str(path), "porcupine-etcd", streamed=True)
        result = check_imported(history)
        got: object = (result.valid, result.details["ops"])
    except HistoryError as exc:
        got = str(exc)
    assert got == expected
