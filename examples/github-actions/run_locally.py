#!/usr/bin/env python3
"""Run a GitHub Actions workflow's `run:` steps here, in order, as the runner would.

    python3 examples/github-actions/run_locally.py examples/github-actions/chaos.yml
    python3 examples/github-actions/run_locally.py chaos.yml --env CHAOS_OUT=/tmp/chaos

`uses:` steps (checkout, setup-go, upload-artifact...) are skipped: the working
tree is the checkout. Each `run:` step runs with bash -e (GitHub's default) in the
repository root, with the workflow's and the job's `env:` (then --env overrides),
and honours `if: always()` / `failure()` / `success()`. Steps that use `${{ }}`
expressions cannot run as written and are reported as errors. Exit code 0 only
when every step that ran passed. Needs PyYAML (Debian: python3-yaml).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import yaml  # type: ignore[import]  # Debian: python3-yaml (no stubs)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHELLS = {None: ["bash", "-e"], "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail"], "sh": ["sh", "-e"]}


@dataclass(frozen=True)
class StepResult:
    number: int
    name: str
    status: str   # passed, failed, skipped
    seconds: float
    exit_code: int | None = None


def load_workflow(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        workflow = yaml.safe_load(fh)
    if not isinstance(workflow, dict) or not isinstance(workflow.get("jobs"), dict):
        raise SystemExit(f"{path}: not a workflow (no jobs)")
    return workflow


def should_run(condition: Any, failed: bool) -> bool:
    """GitHub's step conditions, the ones that need no expression engine."""
    text = str(condition).strip().removeprefix("${{").removesuffix("}}").strip() if condition else "success()"
    if text == "always()":
        return True
    if text == "failure()":
        return failed
    if text == "success()":
        return not failed
    raise SystemExit(f"unsupported step condition: if: {condition}")


def step_name(step: dict[str, Any], number: int) -> str:
    return str(step.get("name") or step.get("uses") or step.get("run", "").splitlines()[0])[:80] or f"step {number}"


def run_step(step: dict[str, Any], env: dict[str, str], workdir: str) -> int:
    script = str(step["run"])
    if "${{" in script:
        print(f"  cannot run as written: the step uses a ${{{{ }}}} expression", flush=True)
        return 127
    shell = SHELLS.get(step.get("shell"))
    if shell is None:
        raise SystemExit(f"unsupported shell: {step.get('shell')}")
    cwd = os.path.join(workdir, step.get("working-directory", "."))
    step_env = {**env, **{k: str(v) for k, v in (step.get("env") or {}).items()}}
    return subprocess.run([*shell, "-c", script], cwd=cwd, env=step_env).returncode


def run_job(job: dict[str, Any], env: dict[str, str], workdir: str) -> list[StepResult]:
    env = {**env, **{k: str(v) for k, v in (job.get("env") or {}).items()}}
    results: list[StepResult] = []
    failed = False
    for number, step in enumerate(job.get("steps") or [], start=1):
        name = step_name(step, number)
        if "run" not in step or not should_run(step.get("if"), failed):
            results.append(StepResult(number, name, "skipped", 0.0))
            print(f"step {number}: {name}: skipped", flush=True)
            continue
        print(f"step {number}: {name}: running", flush=True)
        started = time.monotonic()
        code = run_step(step, env, workdir)
        status = "passed" if code == 0 else "failed"
        failed = failed or code != 0
        results.append(StepResult(number, name, status, time.monotonic() - started, code))
        print(f"step {number}: {name}: {status} (exit {code}, {time.monotonic() - started:.1f} s)", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workflow")
    parser.add_argument("--job", help="only this job (default: every job, in order)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="override an environment variable of the workflow (repeatable)")
    parser.add_argument("--workdir", default=ROOT, help="the checkout to run in (default: this repository)")
    args = parser.parse_args(argv)
    workflow = load_workflow(args.workflow)
    overrides = dict(item.split("=", 1) for item in args.env)
    base_env = {**os.environ, "CI": "true", "GITHUB_WORKSPACE": args.workdir,
                **{k: str(v) for k, v in (workflow.get("env") or {}).items()}}
    all_passed = True
    for job_name, job in workflow["jobs"].items():
        if args.job and job_name != args.job:
            continue
        print(f"job {job_name}", flush=True)
        job = {**job, "env": {**(job.get("env") or {}), **overrides}}
        results = run_job(job, base_env, args.workdir)
        all_passed = all_passed and all(r.status != "failed" for r in results)
    print("workflow: passed" if all_passed else "workflow: FAILED", flush=True)
    return 0 if all_passed else 1


if __name__ == "__main__":
    sys.exit(main())
