"""Run a workflow job locally the way GitHub Actions runs it, from the YAML as written.

What is faithful (and fails the test when a workflow uses something it does not know):
- a fresh workspace per job, checked out from the origin repository the way
  ``actions/checkout`` does (all branches as ``origin/*`` with ``fetch-depth: 0``, the merge
  ref of a pull request, detached at ``GITHUB_SHA``, no credentials kept);
- a ``GITHUB_TOKEN`` minted per job with the job's ``permissions:`` (read-only for a pull
  request from a fork), which the GitHub stand-in enforces; the secrets of the job's
  ``environment:``, none for a fork;
- ``${{ }}`` expressions parsed and evaluated over the ``github``, ``secrets``, ``steps``,
  ``env`` and ``vars`` contexts, with GitHub's loose equality, case-insensitive strings and
  status functions (a step ``if:`` without one gets an implicit ``success() &&``);
- the shell GitHub picks (``bash -e {0}`` by default, ``bash --noprofile --norc -eo pipefail
  {0}`` for ``shell: bash``), the script in a file, GitHub's default environment variables
  and a fresh ``GITHUB_OUTPUT``/``GITHUB_ENV``/``GITHUB_STEP_SUMMARY`` file per step
  (``name=value`` and ``name<<DELIMITER`` forms);
- ``upload-artifact`` keeps the file; ``setup-python`` and ``python -m pip install`` are the
  only things not run, because the test's own environment already has the package: the rest
  of an install step runs, and the install itself is recorded (where it ran, what it would
  install, with which constraints) and fails as pip would when the project or the
  constraints file is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

EXPR = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")
STEP_KEYS = {"name", "id", "if", "run", "env", "uses", "with", "shell"}
JOB_KEYS = {
    "name",
    "runs-on",
    "timeout-minutes",
    "environment",
    "permissions",
    "env",
    "steps",
    "defaults",
}
SHELLS = {
    None: ["bash", "-e"],
    "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail"],
    "sh": ["sh", "-e"],
}


@dataclass
class Step:
    name: str
    exit: int
    output: str


@dataclass
class Install:
    """One ``python -m pip install`` a step ran: the directory it ran in, the project it
    installed and the constraints it used (absolute paths), and what they held then."""

    cwd: Path
    args: list[str]
    target: Path
    constraints: Path | None
    files: list[str] = field(repr=False)
    constraints_text: str = field(repr=False)


# Stands in for `python` on the job's PATH: `python -m pip install ...` is checked and recorded
# (the test's environment has the package already); anything else runs the real interpreter.
PIP_SHIM = """#!{python}
import json, os, sys
from pathlib import Path

LOG = {log!r}
if sys.argv[1:4] != ["-m", "pip", "install"]:
    os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
args, cwd = sys.argv[4:], Path.cwd()
targets, constraints, i = [], None, 0
while i < len(args):
    a = args[i]
    if a in ("-c", "--constraint", "-e", "--editable", "-r", "--requirement"):
        i += 1
        if a in ("-c", "--constraint"):
            constraints = cwd / args[i]
        elif a in ("-e", "--editable"):
            targets.append(args[i])
    elif not a.startswith("-"):
        targets.append(a)
    i += 1
if constraints is not None and not constraints.is_file():
    sys.exit(f"ERROR: Could not open requirements file: {{constraints}}")
[target] = [cwd / t for t in targets]
if not (target / "pyproject.toml").is_file():
    sys.exit(f"ERROR: {{target}} does not appear to be a Python project")
files = sorted(
    str(f.relative_to(target)) for f in target.rglob("*") if f.is_file() and ".git" not in f.parts
)
record = {{
    "cwd": str(cwd),
    "args": args,
    "target": str(target.resolve()),
    "constraints": str(constraints.resolve()) if constraints else None,
    "files": files,
    "constraints_text": constraints.read_text() if constraints else "",
}}
with open(LOG, "a") as f:
    f.write(json.dumps(record) + "\\n")
"""


@dataclass
class JobRun:
    workspace: Path
    steps: list[Step] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: bool = False
    summary: str = ""
    artifacts: dict[str, Path] = field(default_factory=dict)
    token: str = ""
    installs: list[Install] = field(default_factory=list)

    def step(self, name: str) -> Step:
        found = [s for s in self.steps if s.name == name]
        assert found, f"step {name!r} did not run: ran {[s.name for s in self.steps]}"
        return found[0]

    @property
    def ran(self) -> list[str]:
        return [s.name for s in self.steps]

    def log(self) -> str:
        return "\n".join(f"--- {s.name} (exit {s.exit})\n{s.output}" for s in self.steps)


@dataclass
class Event:
    """What started the workflow: its name, payload and the commit and ref it runs on."""

    name: str
    payload: dict[str, Any]
    sha: str
    ref: str
    fork: bool = False

    @staticmethod
    def pull_request(
        number: int, merge_sha: str, *, repository: str, head_repo: str = "", base: str = "main"
    ) -> Event:
        head_repo = head_repo or repository
        payload = {
            "action": "synchronize",
            "number": number,
            "pull_request": {
                "number": number,
                "base": {"ref": base},
                "head": {"ref": f"pr-{number}", "repo": {"full_name": head_repo}},
            },
        }
        ref = f"refs/pull/{number}/merge"
        return Event("pull_request", payload, merge_sha, ref, fork=head_repo != repository)

    @staticmethod
    def push(sha: str, branch: str = "main") -> Event:
        return Event(
            "push", {"after": sha, "ref": f"refs/heads/{branch}"}, sha, f"refs/heads/{branch}"
        )

    @staticmethod
    def schedule(sha: str, branch: str = "main") -> Event:
        return Event("schedule", {"schedule": "17 6 * * *"}, sha, f"refs/heads/{branch}")


# -- expressions ------------------------------------------------------------------------------

TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>==|!=|<=|>=|&&|\|\||[!<>().,\[\]])"
    r"|(?P<name>[A-Za-z_][\w-]*))"
)
STATUS = {"success", "failure", "always", "cancelled"}


class Expression:
    """A GitHub Actions expression: parsed once, evaluated against contexts."""

    def __init__(self, text: str) -> None:
        self.text = text.strip()
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(self.text):
            m = TOKEN.match(self.text, pos)
            assert m and m.end() > pos, f"cannot parse ${{{{ {self.text} }}}} at {pos}"
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        self.uses_status = any(k == "name" and v in STATUS for k, v in self.tokens)

    def evaluate(self, ctx: Callable[[str], Any], status: Callable[[str], bool]) -> Any:
        self._i = 0
        self._ctx, self._status = ctx, status
        value = self._or()
        assert self._i == len(self.tokens), f"trailing input in ${{{{ {self.text} }}}}"
        return value

    def _peek(self) -> str | None:
        return self.tokens[self._i][1] if self._i < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> tuple[str, str]:
        tok = self.tokens[self._i]
        assert expected is None or tok[1] == expected, f"expected {expected} in {self.text}"
        self._i += 1
        return tok

    def _or(self) -> Any:
        left = self._and()
        while self._peek() == "||":
            self._take()
            right = self._and()
            left = left if truthy(left) else right
        return left

    def _and(self) -> Any:
        left = self._cmp()
        while self._peek() == "&&":
            self._take()
            right = self._cmp()
            left = right if truthy(left) else left
        return left

    def _cmp(self) -> Any:
        left = self._unary()
        while self._peek() in ("==", "!="):
            op = self._take()[1]
            right = self._unary()
            left = loose_equal(left, right) == (op == "==")
        return left

    def _unary(self) -> Any:
        if self._peek() == "!":
            self._take()
            return not truthy(self._unary())
        return self._primary()

    def _primary(self) -> Any:
        kind, text = self._take()
        if text == "(":
            value = self._or()
            self._take(")")
            return value
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(text)
        assert kind == "name", f"unexpected {text!r} in {self.text}"
        if text in ("true", "false"):
            return text == "true"
        if text == "null":
            return None
        if self._peek() == "(":
            return self._call(text)
        value = self._ctx(text)
        while self._peek() in (".", "["):
            if self._take()[1] == ".":
                key = self._take()[1]
            else:
                key = str(self._or())
                self._take("]")
            value = value.get(key) if isinstance(value, dict) else None
        return value

    def _call(self, fn: str) -> Any:
        self._take("(")
        args = []
        while self._peek() != ")":
            args.append(self._or())
            if self._peek() == ",":
                self._take()
        self._take(")")
        if fn in STATUS:
            return self._status(fn)
        text = [to_string(a).lower() for a in args]
        if fn == "startsWith":
            return text[0].startswith(text[1])
        if fn == "endsWith":
            return text[0].endswith(text[1])
        if fn == "contains":
            return text[1] in text[0]
        raise AssertionError(f"the runner does not know the function {fn}() in {self.text}")


def truthy(v: Any) -> bool:
    return v not in (None, False, 0, 0.0, "")


def to_string(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else str(v)
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


def _number(v: Any) -> float:
    if v is None:
        return 0.0
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return float(str(v).strip() or 0)
    except ValueError:
        return float("nan")


def loose_equal(a: Any, b: Any) -> bool:
    """GitHub's ``==``: strings case-insensitively; different types compared as numbers."""
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    if type(a) is type(b):
        return bool(a == b)
    return _number(a) == _number(b)


# -- the job ----------------------------------------------------------------------------------


def load(workflow: Path) -> dict[str, Any]:
    return dict(YAML(typ="safe").load(workflow.read_text()))


def load_job(workflow: Path) -> dict[str, Any]:
    [job] = load(workflow)["jobs"].values()
    return dict(job)


def _read_commands_file(path: Path) -> dict[str, str]:
    """``name=value`` lines and ``name<<DELIMITER`` … ``DELIMITER`` blocks."""
    out: dict[str, str] = {}
    lines = path.read_text().splitlines() if path.exists() else []
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            end = lines.index(delim, i + 1)
            out[name] = "\n".join(lines[i + 1 : end])
            i = end + 1
            continue
        if "=" in line:
            name, value = line.split("=", 1)
            out[name] = value
        i += 1
    return out


def checkout(origin: Path, workspace: Path, event: Event, with_: dict[str, Any]) -> None:
    """What actions/checkout does for this event, with file:// standing in for GitHub."""
    assert set(with_) <= {"persist-credentials", "fetch-depth"}, with_
    assert with_.get("persist-credentials") is False, "checkouts must not keep credentials"
    depth = int(with_.get("fetch-depth", 1))

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=workspace, check=True, capture_output=True)

    workspace.mkdir(parents=True)
    git("init", "-q")
    git("remote", "add", "origin", origin.as_uri())
    refspecs = (
        ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"] if depth == 0 else []
    )
    if event.ref.startswith("refs/pull/"):
        refspecs.append(f"+{event.ref}:refs/remotes/pull/{event.ref.split('/')[2]}/merge")
    elif depth:
        refspecs.append(f"+{event.sha}:{event.ref.replace('refs/heads/', 'refs/remotes/origin/')}")
    git("fetch", "-q", *(["--depth", str(depth)] if depth else []), "origin", *refspecs)
    if event.ref.startswith("refs/heads/"):
        branch = event.ref.removeprefix("refs/heads/")
        git("checkout", "-q", "--force", "-B", branch, event.sha)
    else:
        git("checkout", "-q", "--force", "--detach", event.sha)


def run_job(
    workflow: Path,
    *,
    origin: Path,
    workspace: Path,
    event: Event,
    repository: str,
    environments: dict[str, dict[str, str]],
    grant: Callable[[str, dict[str, str]], None],
    machine_env: dict[str, str],
) -> JobRun:
    """Run the workflow's one job for ``event``. ``grant(token, permissions)`` tells the GitHub
    stand-in what the job's token may do; ``machine_env`` is the runner machine's environment
    (here: where the stand-in is, GITHUB_API_URL)."""
    doc = load(workflow)
    [job] = doc["jobs"].values()
    assert set(job) <= JOB_KEYS, f"{workflow.name}: the runner does not know {set(job) - JOB_KEYS}"
    triggers = doc.get("on") or doc.get(True)  # YAML 1.1 reads a bare `on` as true
    assert event.name in triggers, f"{workflow.name} does not run on {event.name}"

    result = JobRun(workspace=workspace)
    temp = workspace.parent / f"{workspace.name}-runner-temp"
    temp.mkdir(parents=True)
    # The shim lives beside the runner's temp (not in it: a step may clean RUNNER_TEMP).
    shims = workspace.parent / f"{workspace.name}-runner-shims"
    shims.mkdir(parents=True)
    pip_log = shims / "pip-installs.jsonl"
    shim = shims / "python"
    shim.write_text(PIP_SHIM.format(python=sys.executable, log=str(pip_log)))
    shim.chmod(0o755)
    token = f"ghs_{uuid.uuid4().hex}"
    result.token = token
    permissions = dict(job.get("permissions", doc.get("permissions")) or {})
    if event.fork:
        permissions = dict.fromkeys(permissions, "read")
    grant(token, permissions)
    secrets = {} if event.fork else dict(environments.get(str(job.get("environment", "")), {}))
    secrets["GITHUB_TOKEN"] = token
    event_path = temp / "event.json"
    event_path.write_text(json.dumps(event.payload))
    pr = event.payload.get("pull_request") or {}
    api = machine_env["GITHUB_API_URL"]
    github = {
        "event": event.payload,
        "event_name": event.name,
        "event_path": str(event_path),
        "sha": event.sha,
        "ref": event.ref,
        "repository": repository,
        "repository_owner": repository.split("/")[0],
        "base_ref": pr.get("base", {}).get("ref", ""),
        "head_ref": pr.get("head", {}).get("ref", ""),
        "server_url": "https://github.example",
        "api_url": api,
        "run_id": "4242",
        "run_attempt": "1",
        "actor": "octocat",
        "workflow": doc.get("name", workflow.stem),
        "workspace": str(workspace),
        "token": token,
    }
    defaults = {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_ACTOR": "octocat",
        "GITHUB_API_URL": api,
        "GITHUB_BASE_REF": github["base_ref"],
        "GITHUB_EVENT_NAME": event.name,
        "GITHUB_EVENT_PATH": str(event_path),
        "GITHUB_HEAD_REF": github["head_ref"],
        "GITHUB_REF": event.ref,
        "GITHUB_REPOSITORY": repository,
        "GITHUB_RUN_ID": "4242",
        "GITHUB_SERVER_URL": github["server_url"],
        "GITHUB_SHA": event.sha,
        "GITHUB_WORKFLOW": github["workflow"],
        "GITHUB_WORKSPACE": str(workspace),
        "RUNNER_TEMP": str(temp),
        "HOME": str(temp),
        "LANG": "C.UTF-8",
        # The test's interpreter stands in for setup-python; the project is installed in it.
        "PATH": os.pathsep.join(
            [str(shims), str(Path(sys.executable).parent), "/usr/local/bin:/usr/bin:/bin"]
        ),
    }
    steps_ctx: dict[str, dict[str, Any]] = {}
    env_ctx: dict[str, str] = {}

    def context(name: str) -> Any:
        contexts: dict[str, Any] = {
            "github": github,
            "secrets": secrets,
            "steps": steps_ctx,
            "env": env_ctx,
            "vars": {},
        }
        assert name in contexts, f"{workflow.name}: the runner does not know the context {name}"
        return contexts[name]

    def status(fn: str) -> bool:
        return {"success": not result.failed, "failure": result.failed, "always": True}.get(
            fn, False
        )

    def interpolate(text: str) -> str:
        return EXPR.sub(lambda m: to_string(Expression(m.group(1)).evaluate(context, status)), text)

    def condition(text: str) -> bool:
        expr = Expression(EXPR.sub(lambda m: m.group(1), text))
        value = expr.evaluate(context, status)
        return truthy(value) and (expr.uses_status or not result.failed)

    job_env = {k: interpolate(str(v)) for k, v in (job.get("env") or {}).items()}
    env_ctx.update(job_env)
    shell_default = (job.get("defaults") or doc.get("defaults") or {}).get("run", {}).get("shell")
    added_env: dict[str, str] = {}
    checked_out = False

    for number, step in enumerate(job["steps"]):
        assert set(step) <= STEP_KEYS, f"{workflow.name}: unknown step keys {set(step) - STEP_KEYS}"
        sid = step.get("id") or f"__{number}"
        name = step.get("name") or step.get("uses", "").split("@")[0]
        record = {"outputs": {}, "outcome": "skipped", "conclusion": "skipped"}
        steps_ctx[sid] = record
        run_it = condition(str(step["if"])) if "if" in step else not result.failed
        if not run_it:
            result.skipped.append(name)
            continue
        if "uses" in step:
            uses = str(step["uses"])
            assert PINNED.match(uses), f"{workflow.name}: {uses} is not pinned to a commit SHA"
            action = uses.split("@")[0]
            with_ = {
                k: (interpolate(v) if isinstance(v, str) else v)
                for k, v in (step.get("with") or {}).items()
            }
            if action == "actions/checkout":
                checkout(origin, workspace, event, with_)
                checked_out = True
            elif action == "actions/upload-artifact":
                path = workspace / str(with_["path"])
                if path.exists():
                    result.artifacts[str(with_["name"])] = path
                else:
                    assert with_.get("if-no-files-found") == "ignore", f"no {path} to upload"
            else:
                assert action == "actions/setup-python", f"the runner does not know {action}"
            record.update(outcome="success", conclusion="success")
            continue
        assert checked_out, f"{workflow.name}: step {name!r} runs before the checkout"
        script = str(step["run"])
        shell = step.get("shell", shell_default)
        assert shell in SHELLS, f"{workflow.name}: the runner does not know shell {shell!r}"
        step_env = {k: interpolate(str(v)) for k, v in (step.get("env") or {}).items()}
        files = {
            k: temp / f"{k.lower()}-{number}"
            for k in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_STEP_SUMMARY")
        }
        for f in files.values():
            f.write_text("")
        script_file = temp / f"step-{number}.sh"
        script_file.write_text(interpolate(script))
        env = {
            **defaults,
            **machine_env,
            **job_env,
            **added_env,
            **step_env,
            **{k: str(v) for k, v in files.items()},
        }
        proc = subprocess.run(
            [*SHELLS[shell], str(script_file)],
            cwd=workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        record["outputs"] = _read_commands_file(files["GITHUB_OUTPUT"])
        added_env.update(_read_commands_file(files["GITHUB_ENV"]))
        result.summary += files["GITHUB_STEP_SUMMARY"].read_text()
        outcome = "success" if proc.returncode == 0 else "failure"
        record.update(outcome=outcome, conclusion=outcome)
        result.steps.append(Step(name, proc.returncode, proc.stdout + proc.stderr))
        if proc.returncode != 0:
            result.failed = True
    if pip_log.exists():
        for line in pip_log.read_text().splitlines():
            i = json.loads(line)
            result.installs.append(
                Install(
                    cwd=Path(i["cwd"]),
                    args=i["args"],
                    target=Path(i["target"]),
                    constraints=Path(i["constraints"]) if i["constraints"] else None,
                    files=i["files"],
                    constraints_text=i["constraints_text"],
                )
            )
    shutil.rmtree(temp)
    shutil.rmtree(shims)
    return result
