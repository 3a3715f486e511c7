"""The verdict of a run as JUnit XML, for CI systems that read test reports."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from checkers.result import UNKNOWN

if TYPE_CHECKING:
    from faultbed.runner import RunOutcome


def write_junit(outcome: "RunOutcome", path: str) -> None:
    """One testsuite per run, one testcase per checker: invalid is a failure, unknown an error."""
    spec = outcome.spec
    suite_name = f"faultbed.{spec.system}.{spec.workload}"
    suite = ET.Element("testsuite", name=suite_name, tests=str(len(outcome.results)))
    failures = errors = 0
    for result in outcome.results:
        case = ET.SubElement(suite, "testcase", classname=suite_name, name=result.checker)
        detail = json.dumps(result.details, default=str, indent=1)[:20000]
        if result.valid is False:
            failures += 1
            node = ET.SubElement(case, "failure", message=f"{result.checker}: anomaly found", type="invalid")
            node.text = f"{detail}\nresults: {outcome.run_dir}\nreplay: {outcome.replay_command}"
        elif result.valid == UNKNOWN:
            errors += 1
            node = ET.SubElement(case, "error", message=f"{result.checker}: inconclusive", type="unknown")
            node.text = detail
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    props = ET.SubElement(suite, "properties")
    for name, value in (("seed", spec.seed), ("nemesis", ",".join(spec.nemesis)), ("run_dir", outcome.run_dir),
                        ("replay", outcome.replay_command)):
        ET.SubElement(props, "property", name=name, value=str(value))
    root = ET.Element("testsuites")
    root.append(suite)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
