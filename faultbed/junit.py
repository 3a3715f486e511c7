"""The verdict of a run as JUnit XML, for CI systems that read test reports.

One <testsuite> per run, one <testcase> per checker: invalid is a <failure>,
unknown an <error>, valid passes. A run that could not even start (bad spec,
cluster never ready) is one <error> testcase, so a CI gate still has a report.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

from faultbed.checkers.result import UNKNOWN, Result
from faultbed.errors import FaultbedError

if TYPE_CHECKING:
    from faultbed.runner import RunOutcome
    from faultbed.spec import TestSpec

MAX_DETAIL_CHARS = 20000
# Characters XML 1.0 cannot carry at all (ElementTree would write them and break the file).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def write_junit(outcome: "RunOutcome", path: str) -> None:
    """Write the outcome's verdicts to `path` as JUnit XML."""
    spec = outcome.spec
    suite = _suite(spec, outcome.run_dir)
    failures = errors = 0
    for result in outcome.results:
        case = ET.SubElement(suite, "testcase", classname=suite.get("name", ""), name=result.checker,
                             time="0")
        detail = _clean(json.dumps(result.details, default=str, indent=1)[:MAX_DETAIL_CHARS])
        where = f"results: {outcome.run_dir}\nreplay: {outcome.replay_command}"
        if result.valid is False:
            failures += 1
            node = ET.SubElement(case, "failure", type="invalid",
                                 message=_clean(f"{result.checker}: anomaly found{_said(result)}"))
            node.text = f"{detail}\n{where}"
        elif result.valid == UNKNOWN:
            errors += 1
            node = ET.SubElement(case, "error", type="unknown",
                                 message=_clean(f"{result.checker}: inconclusive{_said(result)}"))
            node.text = f"{detail}\n{where}"
    _finish(suite, tests=len(outcome.results), failures=failures, errors=errors,
            duration=_history_seconds(outcome.run_dir))
    out = ET.SubElement(suite, "system-out")
    out.text = (f"verdict: {_word(outcome.valid)}\nops: {outcome.counts}\n"
                f"report: {os.path.join(outcome.run_dir, 'report.html')}\n"
                f"results: {outcome.run_dir}\nreplay: {outcome.replay_command}\n")
    _write(suite, path)


def write_junit_error(spec: "TestSpec", message: str, path: str, run_dir: str | None = None) -> None:
    """A run that failed before it had a verdict (exit code 3), as one JUnit error."""
    suite = _suite(spec, run_dir)
    case = ET.SubElement(suite, "testcase", classname=suite.get("name", ""), name="run", time="0")
    node = ET.SubElement(case, "error", type="setup", message=_clean(message[:500]))
    node.text = _clean(message)
    _finish(suite, tests=1, failures=0, errors=1, duration=0.0)
    _write(suite, path)


def _suite(spec: "TestSpec", run_dir: str | None) -> ET.Element:
    name = f"faultbed.{spec.system}.{spec.workload}"
    suite = ET.Element("testsuite", name=name, timestamp=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
                       hostname=socket.gethostname())
    props = ET.SubElement(suite, "properties")  # JUnit's schema wants properties first
    values: list[tuple[str, Any]] = [
        ("system", spec.system), ("workload", spec.workload), ("backend", spec.backend), ("nodes", spec.nodes),
        ("nemesis", ",".join(spec.nemesis) or "none"), ("time_limit", spec.time_limit), ("seed", spec.seed),
        ("bugs", ",".join(spec.bugs))]
    if run_dir:
        values += [("run_dir", run_dir), ("replay", f"faultbed replay {run_dir}")]
    for key, value in values:
        ET.SubElement(props, "property", name=key, value=_clean(str(value)))
    return suite


def _finish(suite: ET.Element, tests: int, failures: int, errors: int, duration: float) -> None:
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", "0")
    suite.set("time", f"{duration:.3f}")


def _write(suite: ET.Element, path: str) -> None:
    root = ET.Element("testsuites", name="faultbed", tests=suite.get("tests", "0"),
                      failures=suite.get("failures", "0"), errors=suite.get("errors", "0"))
    root.append(suite)
    ET.indent(root)
    tmp = f"{path}.{os.getpid()}.tmp"
    ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, path)


def check_writable(path: str) -> None:
    """FaultbedError unless `path` can be written: its directory exists (it is never created
    silently: a typo would hide the report) and is writable, and `path` is not a directory."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FaultbedError(f"--junit {path}: no such directory {directory}")
    if os.path.isdir(path):
        raise FaultbedError(f"--junit {path}: is a directory")
    if not os.access(directory, os.W_OK):
        raise FaultbedError(f"--junit {path}: directory {directory} is not writable")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _word(valid: Any) -> str:
    return {True: "valid", False: "INVALID"}.get(valid, "unknown") if isinstance(valid, bool) else "unknown"


def _history_seconds(run_dir: str) -> float:
    """Seconds from the first to the last event of the history (0 when there is none)."""
    path = os.path.join(run_dir, "history.jsonl")
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 8192))
            lines = fh.read().decode(errors="replace").strip().splitlines()
        return float(json.loads(lines[-1]).get("time", 0)) / 1e9 if lines else 0.0
    except (OSError, ValueError, AttributeError):
        return 0.0


def _said(result: Result) -> str:
    """The checker's own summary, in parentheses: ' (illegal keys: ["k3"])'."""
    return f" ({result.summary})" if result.summary else ""
