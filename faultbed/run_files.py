"""The one validating reader of a results directory's spec.json, schedule.json and results.json.

Every command that reads them (replay, report, check, serve) comes through here, so a
file of the wrong shape is one clear line (exit 3), never a traceback deep inside a
command, and never a silently different test (`[]` as spec.json is not the default test).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import typing
from typing import TYPE_CHECKING, Any

from faultbed import store
from faultbed.errors import FaultbedError
from faultbed.spec import TestSpec, check_limits

if TYPE_CHECKING:
    from faultbed.nemesis.schedule import Schedule

def read_document(run_dir: str, name: str) -> Any:
    """A JSON file of the run; FaultbedError (one line) when it cannot be read or is not JSON."""
    path = os.path.join(run_dir, name)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh, parse_constant=_refuse_constant)
    except OSError as exc:
        raise FaultbedError(f"{path}: cannot read: {exc.strerror}") from exc
    except (ValueError, RecursionError) as exc:  # also bad UTF-8, 5,000-digit integers, NaN
        raise FaultbedError(f"{path}: not JSON: {str(exc)[:160]}") from exc


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


@functools.cache
def _spec_hints() -> dict[str, Any]:
    """TestSpec's field types, evaluated once (a millisecond each time: every re-check reads a spec twice)."""
    return typing.get_type_hints(TestSpec)


def read_spec(run_dir: str) -> TestSpec:
    """spec.json as a TestSpec: every field of the right type, every number in its documented range."""
    path = os.path.join(run_dir, store.SPEC)
    data = read_document(run_dir, store.SPEC)
    if not isinstance(data, dict):
        raise FaultbedError(f"{path}: not a faultbed spec (a JSON object), but {_kind(data)}")
    hints = _spec_hints()
    values: dict[str, Any] = {}
    for field in dataclasses.fields(TestSpec):
        if field.name in data:
            values[field.name] = _typed(data[field.name], hints[field.name], f"{path}: {field.name}")
    unknown = sorted(set(data) - set(hints))
    if unknown:
        raise FaultbedError(f"{path}: unknown field(s) {', '.join(map(str, unknown))[:120]}")
    spec = TestSpec(**values)
    try:
        check_limits(spec)
    except FaultbedError as exc:
        raise FaultbedError(f"{path}: {exc}") from exc
    return spec


def _typed(value: Any, hint: Any, where: str) -> Any:
    """`value` as the annotated type (str, int, float, bool, tuple[str, ...], dict[str, Any])."""
    origin = typing.get_origin(hint)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (str, int, float, bool):
        if type(value) is not hint:
            raise FaultbedError(f"{where} must be {_names[hint]}, not {_kind(value)}")
        return value
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise FaultbedError(f"{where} must be a list of strings, not {_kind(value)}")
        return tuple(value)
    if origin is dict:
        if not isinstance(value, dict):
            raise FaultbedError(f"{where} must be an object, not {_kind(value)}")
        return value
    return value  # a field of a type this reader does not know yet: TestSpec checks it


_names: dict[Any, str] = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _kind(value: Any) -> str:
    """What a JSON value is, for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    names = {dict: "an object", list: "a list", str: "a string", int: "an integer", float: "a number"}
    text = json.dumps(value, default=str)
    return f"{names.get(type(value), type(value).__name__)} {text[:40]}{'...' if len(text) > 40 else ''}"


def read_schedule(run_dir: str) -> "Schedule":
    """schedule.json as a Schedule (its own checks: known faults, every start stopped once)."""
    from faultbed.nemesis.schedule import Schedule

    path = os.path.join(run_dir, store.SCHEDULE)
    data = read_document(run_dir, store.SCHEDULE)
    if not isinstance(data, dict):
        raise FaultbedError(f"{path}: not a faultbed schedule (a JSON object), but {_kind(data)}")
    try:
        return Schedule.from_json(data)
    except FaultbedError as exc:
        raise FaultbedError(f"{path}: {exc}") from exc
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
        raise FaultbedError(f"{path}: not a faultbed schedule: {str(exc)[:120]}") from exc


def read_results(run_dir: str) -> dict[str, Any]:
    """results.json: `valid` a verdict, `counts` integers, `results` a list of checker results."""
    path = os.path.join(run_dir, store.RESULTS)
    data = read_document(run_dir, store.RESULTS)
    if not isinstance(data, dict):
        raise FaultbedError(f"{path}: not faultbed results (a JSON object), but {_kind(data)}")
    if not _is_verdict(data.get("valid")):
        raise FaultbedError(f"{path}: valid must be true, false or \"unknown\", not {_kind(data.get('valid'))}")
    counts = data.get("counts", {})
    if not isinstance(counts, dict) or not all(isinstance(n, int) and not isinstance(n, bool)
                                               for n in counts.values()):
        raise FaultbedError(f"{path}: counts must map outcomes to integers, not {_kind(counts)}")
    results = data.get("results", [])
    if not isinstance(results, list):
        raise FaultbedError(f"{path}: results must be a list, not {_kind(results)}")
    for number, result in enumerate(results, start=1):
        if not (isinstance(result, dict) and isinstance(result.get("checker"), str)
                and isinstance(result.get("details", {}), dict)
                and _is_verdict(result.get("valid"))):
            raise FaultbedError(f"{path}: result {number} must be an object with a checker name, a verdict "
                                f"and details, not {_kind(result)}")
    return data


def _is_verdict(value: Any) -> bool:
    return isinstance(value, bool) or (isinstance(value, str) and value == "unknown")


def stored_verdict(run_dir: str) -> Any:
    """The verdict stored in results.json, or None when the run has none (yet)."""
    if not os.path.exists(os.path.join(run_dir, store.RESULTS)):
        return None
    return read_results(run_dir)["valid"]
