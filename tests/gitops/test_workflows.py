"""The GitOps loop end to end: real git repositories, the embedded tenant, a GitHub stand-in on
loopback, and the workflows' own `run:` steps executed as written."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.main import get_command

from reconciler.cli import app
from reconciler.scim import open_client
from tests.gitops.github_standin import State, github_standin
from tests.gitops.runner import load_job, run_job

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
GIT_ID = ["-c", "user.name=Dev", "-c", "user.email=dev@acme.example"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *GIT_ID, *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def title_in_tenant(repo: Path, user: str) -> str:
    async def main() -> str:
        async with open_client(f"local:{repo}/.reconciler/tenant.db") as c:
            [u] = await c.find("User", "userName", user)
            return str(u.get("title"))

    return asyncio.run(main())


def set_title_in_tenant(repo: Path, user: str, title: str) -> None:
    async def main() -> None:
        async with open_client(f"local:{repo}/.reconciler/tenant.db") as c:
            [u] = await c.find("User", "userName", user)
            await c.patch("User", u["id"], [{"op": "replace", "path": "title", "value": title}])

    asyncio.run(main())


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Path, str, State]]:
    origin = tmp_path / "origin.git"
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    repo.mkdir()
    for part in ("desired-state", "policies", ".github"):
        shutil.copytree(REPO / part, repo / part)
    (repo / ".gitignore").write_text(
        ".reconciler/\n.github_output\n.github_summary\n*.json\n*.md\n"
    )
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "Initial desired state")
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "-q", "origin", "main")
    # Bootstrap: the tenant starts out as the desired state.
    boot = subprocess.run(
        [sys.executable, "-m", "reconciler", "apply", "--auto-approve"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert boot.returncode == 0, boot.stdout + boot.stderr
    with github_standin() as (api, state):
        yield repo, api, state


def env_for(api: str, **extra: str) -> dict[str, str]:
    return {
        "GITHUB_API_URL": api,
        "GITHUB_REPOSITORY": "acme/identity",
        "GITHUB_TOKEN": "gh-test-token",
        **extra,
    }


def pr_context(pr: int) -> dict[str, str]:
    return {
        "secrets.GITHUB_TOKEN": "gh-test-token",
        "secrets.SCIM_TOKEN": "",
        "secrets.GOTO_CLIENT_ID": "",
        "secrets.GOTO_CLIENT_SECRET": "",
        "github.event.pull_request.number": str(pr),
        "github.event.pull_request.head.repo.full_name": "acme/identity",
        "github.base_ref": "main",
    }


def edit(repo: Path, old: str, new: str) -> None:
    path = repo / "desired-state" / "users" / "sales.yaml"
    path.write_text(path.read_text().replace(old, new, 1))


def test_plan_on_pr_apply_on_merge_drift_on_schedule(world: tuple[Path, str, State]) -> None:
    repo, api, gh = world
    env = env_for(api, GITHUB_REPOSITORY="acme/identity")
    # A branch changes the YAML; the plan job posts one sticky comment.
    git(repo, "checkout", "-q", "-b", "promote-olivia")
    edit(repo, "title: VP Sales", "title: Chief Revenue Officer")
    git(repo, "commit", "-qam", "Promote Olivia")
    run = run_job(WORKFLOWS / "plan.yml", repo, pr_context(12), env)
    assert not run.failed, run.steps
    [comment] = gh.comments[12]
    assert comment["body"].startswith("<!-- reconciler:plan -->\n<!-- reconciler:plan-hash=")
    assert '~   title: "VP Sales" → "Chief Revenue Officer"' in comment["body"]
    assert "Reconciler plan" in (repo / ".github_summary").read_text()
    # A second push edits the same comment in place.
    edit(repo, "title: Account Executive", "title: Senior Account Executive")
    git(repo, "commit", "-qam", "Promote Lukas too")
    assert not run_job(WORKFLOWS / "plan.yml", repo, pr_context(12), env).failed
    [comment] = gh.comments[12]
    assert "Senior Account Executive" in comment["body"]
    # Merge (squash) → the apply job verifies the reviewed hash and applies.
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--squash", "promote-olivia")
    git(repo, "commit", "-qm", "Promote Olivia and Lukas (#12)")
    sha = git(repo, "rev-parse", "HEAD")
    gh.commit_prs[sha] = 12
    applied = run_job(WORKFLOWS / "apply.yml", repo, pr_context(12), {**env, "GITHUB_SHA": sha})
    assert not applied.failed, applied.steps
    assert "verified: plan" in applied.step("Verify it is the reviewed plan")[2]
    assert title_in_tenant(repo, "olivia.bennett@acme.example") == "Chief Revenue Officer"
    assert any(c["body"].startswith("<!-- reconciler:apply -->") for c in gh.comments[12])
    assert "reconciler-apply-receipt" in git(repo, "notes", "--ref", "reconciler", "show", sha)
    assert git(repo, "ls-remote", "origin", "refs/notes/reconciler")
    # The scheduled drift run finds nothing.
    drift_ctx = pr_context(0)
    assert not run_job(WORKFLOWS / "drift.yml", repo, drift_ctx, env).failed
    assert gh.issues == []
    # Someone edits the tenant in the admin console: one drift issue, updated, then closed.
    set_title_in_tenant(repo, "olivia.bennett@acme.example", "Edited in the console")
    assert not run_job(WORKFLOWS / "drift.yml", repo, drift_ctx, env).failed
    assert not run_job(WORKFLOWS / "drift.yml", repo, drift_ctx, env).failed
    [issue] = gh.issues
    assert issue["state"] == "open" and "reconciler:drift" in issue["labels"]
    assert "Edited in the console" in issue["body"]
    set_title_in_tenant(repo, "olivia.bennett@acme.example", "Chief Revenue Officer")
    assert not run_job(WORKFLOWS / "drift.yml", repo, drift_ctx, env).failed
    assert gh.issues[0]["state"] == "closed"


def test_apply_refuses_a_plan_that_changed_after_review(world: tuple[Path, str, State]) -> None:
    repo, api, gh = world
    env = env_for(api)
    git(repo, "checkout", "-q", "-b", "retitle")
    edit(repo, "title: VP Sales", "title: Head of Sales")
    git(repo, "commit", "-qam", "Retitle")
    assert not run_job(WORKFLOWS / "plan.yml", repo, pr_context(13), env).failed
    # Between review and merge, the tenant changes.
    set_title_in_tenant(repo, "tom.okafor@acme.example", "Changed meanwhile")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge pull request #13 from acme/retitle", "retitle")
    sha = git(repo, "rev-parse", "HEAD")
    gh.commit_prs[sha] = 13
    run = run_job(WORKFLOWS / "apply.yml", repo, pr_context(13), {**env, "GITHUB_SHA": sha})
    assert run.failed
    assert run.step("Verify it is the reviewed plan")[1] == 1
    assert "Apply" not in [s[0] for s in run.steps]
    assert any(
        c["body"].startswith("### ⛔ Not applied: the plan changed after review")
        for c in gh.comments[13]
    )
    assert title_in_tenant(repo, "olivia.bennett@acme.example") == "VP Sales", "nothing applied"


def test_fork_pull_requests_get_a_clear_notice(world: tuple[Path, str, State]) -> None:
    repo, api, gh = world
    ctx = {**pr_context(14), "github.event.pull_request.head.repo.full_name": "stranger/identity"}
    run = run_job(WORKFLOWS / "plan.yml", repo, ctx, env_for(api))
    assert not run.failed
    assert (
        "comes from a fork, which gets no tenant credentials"
        in run.step("Fork pull requests get no secrets")[2]
    )
    assert [s[0] for s in run.steps] == ["Fork pull requests get no secrets", "Validate"]
    assert 14 not in gh.comments


def test_workflows_call_only_commands_that_exist() -> None:
    root = get_command(app)
    calls = 0
    for workflow in WORKFLOWS.glob("*.yml"):
        for step in load_job(workflow)["steps"]:
            for line in str(step.get("run", "")).splitlines():
                for segment in re.split(r"\$\(|;|&&|\|\||\||\bthen\b", line):
                    words = segment.replace('"', " ").replace(")", " ").split()
                    if not words or words[0] != "reconciler":
                        continue
                    words = words[1:]
                    command = root
                    while words and hasattr(command, "commands") and words[0] in command.commands:
                        command = command.commands[words.pop(0)]
                    assert not hasattr(command, "commands"), f"{workflow.name}: {line}"
                    options = {o for p in command.params for o in getattr(p, "opts", [])}
                    for word in words:
                        if word.startswith("--"):
                            assert word.split("=")[0] in options, (
                                f"{workflow.name}: {word} in {line}"
                            )
                    calls += 1
    assert calls >= 10, "the workflows are made of reconciler commands"


def test_rate_limit_is_waited_out_and_the_token_never_printed(tmp_path: Path) -> None:
    body = tmp_path / "b.md"
    body.write_text("hello")
    with github_standin() as (api, gh):
        gh.rate_limit_once = True
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "reconciler",
                "github",
                "comment",
                "--marker",
                "plan",
                "--body-file",
                str(body),
                "--pr",
                "5",
            ],
            capture_output=True,
            text=True,
            env={**env_for(api), "PATH": "/usr/bin:/bin"},
        )
        assert r.returncode == 0, r.stderr
        assert (
            len(gh.comments[5]) == 1
            and ("POST", "/repos/acme/identity/issues/5/comments") in gh.requests
        )
        gh.tokens = {"another-token"}
        bad = subprocess.run(
            [
                sys.executable,
                "-m",
                "reconciler",
                "github",
                "comment",
                "--body-file",
                str(body),
                "--pr",
                "5",
            ],
            capture_output=True,
            text=True,
            env={**env_for(api), "PATH": "/usr/bin:/bin"},
        )
        assert bad.returncode == 1 and "HTTP 401" in bad.stderr
        assert "gh-test-token" not in bad.stdout + bad.stderr


def test_sticky_comment_found_across_pages_and_not_spoofed(tmp_path: Path) -> None:
    from reconciler.gitops.github import GitHub

    with github_standin() as (api, gh):
        gh.comments[7] = [
            {"id": i, "body": f"chatter {i}", "user": {"login": "someone"}} for i in range(150)
        ]
        gh.comments[7].insert(
            3, {"id": 999, "body": "<!-- reconciler:plan -->\nspoof", "user": {"login": "mallory"}}
        )
        client = GitHub("gh-test-token", "acme/identity", api_url=api)
        assert client.upsert_comment(7, "plan", "first") == "created"
        assert client.upsert_comment(7, "plan", "second") == "updated"
        ours = [c for c in gh.comments[7] if c["user"]["login"] == "github-actions[bot]"]
        assert len(ours) == 1 and ours[0]["body"].endswith("second")
        assert gh.comments[7][3]["body"].endswith("spoof"), "someone else's comment is never edited"
        assert sum(1 for m, p in gh.requests if m == "GET") >= 2 * 2, "pages were followed"
