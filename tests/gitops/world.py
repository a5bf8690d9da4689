"""The world the workflows run in, for tests: an origin repository (GitHub's copy), a
developer's clone, the embedded tenant served over HTTP with a bearer token (the secret the
environments hold), and the GitHub API stand-in. Each workflow run gets a fresh checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.gitops.github_standin import State, github_standin
from tests.gitops.runner import Event, JobRun, run_job
from tests.servers import serve_embedded

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
SLUG = "acme/identity"
SCIM_TOKEN = "scim-test-token-5f1c"
GIT_ID = ["-c", "user.name=Dev", "-c", "user.email=dev@acme.example"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *GIT_ID, *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@dataclass
class World:
    tmp: Path
    origin: Path
    dev: Path
    api: str
    gh: State
    tenant: str
    runs: list[JobRun] = field(default_factory=list)

    # -- the developer -------------------------------------------------------------------

    def edit(self, rel: str, old: str, new: str) -> None:
        path = self.dev / rel
        text = path.read_text()
        assert old in text, f"{old!r} not in {rel}"
        path.write_text(text.replace(old, new, 1))

    def remove_user(self, rel: str, user: str, next_user: str) -> None:
        path = self.dev / rel
        text = path.read_text()
        start, end = text.index(f"  - userName: {user}"), text.index(f"  - userName: {next_user}")
        path.write_text(text[:start] + text[end:])

    def commit(self, message: str) -> str:
        git(self.dev, "commit", "-qam", message)
        return git(self.dev, "rev-parse", "HEAD")

    def branch(self, name: str) -> None:
        git(self.dev, "checkout", "-q", "-B", name, "origin/main")

    def push_pr(self, number: int, branch: str) -> Event:
        """Push the branch and let "GitHub" compute the PR's merge ref; the pull_request event."""
        git(self.dev, "push", "-q", "--force", "origin", branch)
        head = git(self.dev, "rev-parse", branch)
        scratch = self.tmp / f"merge-ref-{number}"
        shutil.rmtree(scratch, ignore_errors=True)
        git(self.tmp, "clone", "-q", str(self.origin), str(scratch))
        git(scratch, "merge", "-q", "--no-ff", "-m", f"Merge {head} into main", f"origin/{branch}")
        merge = git(scratch, "rev-parse", "HEAD")
        git(scratch, "push", "-q", "--force", "origin", f"HEAD:refs/pull/{number}/merge")
        shutil.rmtree(scratch)
        self.gh.pull(number).commits.update(
            git(self.dev, "rev-list", f"origin/main..{branch}").split()
        )
        return Event.pull_request(number, merge, repository=SLUG)

    def merge(self, number: int, branch: str, how: str = "squash") -> Event:
        """Merge the pull request on "GitHub" (squash or merge commit); the push event."""
        git(self.dev, "checkout", "-q", "main")
        git(self.dev, "pull", "-q", "--ff-only", "origin", "main")
        if how == "squash":
            git(self.dev, "merge", "-q", "--squash", branch)
            git(self.dev, "commit", "-qm", f"{branch} (#{number})")
        else:
            git(self.dev, "merge", "-q", "--no-ff", "-m", f"Merge pull request #{number}", branch)
        git(self.dev, "push", "-q", "origin", "main")
        sha = git(self.dev, "rev-parse", "HEAD")
        self.gh.merged(number, sha)
        return Event.push(sha)

    def push_main(self, message: str) -> Event:
        """A commit pushed straight to main, past any pull request."""
        git(self.dev, "checkout", "-q", "main")
        sha = self.commit(message)
        git(self.dev, "push", "-q", "origin", "main")
        return Event.push(sha)

    def main(self) -> str:
        return git(self.dev, "ls-remote", "origin", "refs/heads/main").split()[0]

    # -- GitHub Actions --------------------------------------------------------------------

    def run(self, workflow: str, event: Event) -> JobRun:
        result = run_job(
            WORKFLOWS / workflow,
            origin=self.origin,
            workspace=self.tmp / f"run-{len(self.runs) + 1}-{workflow.removesuffix('.yml')}",
            event=event,
            repository=SLUG,
            environments={
                "plan": {"SCIM_TOKEN": SCIM_TOKEN},
                "production": {"SCIM_TOKEN": SCIM_TOKEN},
            },
            grant=self.gh.grant,
            machine_env={"GITHUB_API_URL": self.api},
        )
        self.runs.append(result)
        for step in result.steps:
            assert SCIM_TOKEN not in step.output and result.token not in step.output, step.name
        return result

    def notes(self, sha: str) -> str:
        """The receipt note of ``sha`` as the origin has it ("" when none)."""
        out = subprocess.run(
            ["git", "notes", "--ref", "reconciler", "show", sha],
            cwd=self.origin,
            capture_output=True,
            text=True,
        )
        return out.stdout if out.returncode == 0 else ""

    # -- the tenant's admin console --------------------------------------------------------

    def user(self, user_name: str) -> dict[str, Any]:
        with httpx.Client(headers={"Authorization": f"Bearer {SCIM_TOKEN}"}) as c:
            r = c.get(f"{self.tenant}/Users", params={"filter": f'userName eq "{user_name}"'})
            [found] = r.json()["Resources"]
            return dict(found)

    def set_title(self, user_name: str, title: str) -> None:
        u = self.user(user_name)
        patch = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "title", "value": title}],
        }
        with httpx.Client(headers={"Authorization": f"Bearer {SCIM_TOKEN}"}) as c:
            c.patch(f"{self.tenant}/Users/{u['id']}", json=patch).raise_for_status()


@contextmanager
def world(tmp: Path, *, licences: tuple[str, ...] = ()) -> Iterator[World]:
    """A team's repository cloned from this one, its tenant served, and GitHub standing by."""
    origin, dev, db = tmp / "origin.git", tmp / "dev", tmp / "tenant.db"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    dev.mkdir()
    for part in ("desired-state", "policies", ".github", ".ci"):
        shutil.copytree(REPO / part, dev / part)
    # What the workflows install from (pip's install is only recorded: see runner.py).
    for part in ("README.md", "pyproject.toml"):
        shutil.copy(REPO / part, dev / part)
    (dev / ".gitignore").write_text(".reconciler/\n")
    init = [sys.executable, "-m", "reconciler", "tenant", "init", "--db", str(db)]
    init += ["--profile", "goto", "--verified-domain", "acme.example"]
    init += ["--schema-from", str(dev / "desired-state")]
    subprocess.run(init, check=True, capture_output=True)
    # Bootstrap (step 6 of the adoption guide): the tenant starts out as the desired state.
    boot = subprocess.run(
        [sys.executable, "-m", "reconciler", "apply", "--auto-approve", "--tenant", f"local:{db}"],
        cwd=dev,
        capture_output=True,
        text=True,
    )
    assert boot.returncode == 0, boot.stdout + boot.stderr
    if licences:  # capacity as it is once everyone has their seat
        licensed = [*init, *(x for licence in licences for x in ("--licence", licence))]
        subprocess.run(licensed, check=True, capture_output=True)
    with serve_embedded(db, token=SCIM_TOKEN) as tenant:
        # Step 2 of the adoption guide: point at the tenant, the secret by name.
        tenant_yaml = dev / "desired-state" / "tenant.yaml"
        text = tenant_yaml.read_text()
        text = text.replace("url: local:.reconciler/tenant.db", f"url: {tenant}")
        text = text.replace("auth:\n  type: none", "auth:\n  type: bearer\n  token_env: SCIM_TOKEN")
        tenant_yaml.write_text(text)
        git(dev, "init", "-q", "-b", "main")
        git(dev, "add", ".")
        git(dev, "commit", "-qm", "Initial desired state")
        git(dev, "remote", "add", "origin", str(origin))
        git(dev, "push", "-q", "-u", "origin", "main")
        with github_standin() as (api, gh):
            yield World(tmp, origin, dev, api, gh, tenant)
