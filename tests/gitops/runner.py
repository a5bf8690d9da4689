"""Run a workflow job's `run:` steps as written, the way GitHub Actions would, locally.

`uses:` steps (checkout, setup-python, upload-artifact) and steps named "Install" are skipped:
the test runs in a checked-out repository with the project's environment on PATH. `${{ }}`
expressions and `if:` conditions are evaluated for the small set our workflows use; an
expression the runner does not know fails the test, so the workflows cannot drift silently.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@dataclass
class JobRun:
    steps: list[tuple[str, int, str]] = field(default_factory=list)  # (name, exit, output)
    failed: bool = False

    def step(self, name: str) -> tuple[str, int, str]:
        return next(s for s in self.steps if s[0] == name)


def load_job(workflow: Path) -> dict[str, Any]:
    doc = YAML(typ="safe").load(workflow.read_text())
    [job] = doc["jobs"].values()
    return dict(job)


def run_job(workflow: Path, cwd: Path, context: dict[str, str], env: dict[str, str]) -> JobRun:
    job = load_job(workflow)
    result = JobRun()
    outputs: dict[str, dict[str, str]] = {}
    outcomes: dict[str, str] = {}
    out_file = cwd / ".github_output"

    def value(expr: str) -> str:
        if expr in context:
            return context[expr]
        m = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expr)
        if m:
            return outputs.get(m.group(1), {}).get(m.group(2), "")
        raise AssertionError(f"{workflow.name}: the test runner does not know ${{{{ {expr} }}}}")

    def condition(expr: str) -> bool:
        py = expr.replace("&&", " and ").replace("||", " or ")
        py = py.replace("always()", "True").replace("failure()", repr(result.failed))
        py = re.sub(
            r"steps\.([\w-]+)\.outcome", lambda m: repr(outcomes.get(m.group(1), "skipped")), py
        )
        py = re.sub(r"steps\.([\w-]+)\.outputs\.([\w-]+)", lambda m: repr(value(m.group(0))), py)
        py = py.replace("!=", " != ").replace("'", '"')
        if "failure" not in expr and "always" not in expr and result.failed:
            return False
        return bool(eval(py, {"__builtins__": {}}, {"True": True, "False": False}))  # noqa: S307

    base_env = {
        **os.environ,
        **env,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_OUTPUT": str(out_file),
        "GITHUB_STEP_SUMMARY": str(cwd / ".github_summary"),
        "NO_COLOR": "1",
    }
    base_env.update(
        {
            k: EXPR.sub(lambda m: value(m.group(1)), str(v))
            for k, v in (job.get("env") or {}).items()
        }
    )
    for step in job["steps"]:
        name = step.get("name") or step.get("uses", "")
        if "uses" in step or name == "Install":
            continue
        sid = step.get("id", "")
        if "if" in step and not condition(str(step["if"])):
            outcomes[sid] = "skipped"
            continue
        if result.failed and "if" not in step:
            outcomes[sid] = "skipped"
            continue
        step_env = dict(base_env)
        step_env.update(
            {
                k: EXPR.sub(lambda m: value(m.group(1)), str(v))
                for k, v in (step.get("env") or {}).items()
            }
        )
        script = EXPR.sub(lambda m: value(m.group(1)), step["run"])
        out_file.write_text("")
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=cwd,
            env=step_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        outputs[sid] = dict(
            line.split("=", 1) for line in out_file.read_text().splitlines() if "=" in line
        )
        outcomes[sid] = "success" if proc.returncode == 0 else "failure"
        result.steps.append((name, proc.returncode, proc.stdout + proc.stderr))
        if proc.returncode != 0:
            result.failed = True
    return result
