"""The receipt of an apply: what was applied, by whom, when, with which results.

Kept where auditors find it from the commit: a git note on the applied commit under
``refs/notes/reconciler`` (the workflow pushes it). No secrets; sensitive values never enter
results in the first place (results carry causes and details, not attribute values).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import git
from pydantic import BaseModel, ConfigDict

from reconciler.apply.executor import Result
from reconciler.errors import ReconcilerError

NOTES_REF = "reconciler"


class ChangeResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    index: int
    action: str
    resource_type: str
    key: str
    status: str
    cause: str = ""
    detail: str = ""


class Receipt(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: str = "reconciler-apply-receipt"
    plan_hash: str
    tenant_url: str
    desired_commit: str | None
    actor: str
    run_url: str | None
    started_at: str
    finished_at: str
    counts: dict[str, int]
    requests_sent: int = 0
    results: tuple[ChangeResult, ...]

    @property
    def ok(self) -> bool:
        return all(r.status == "ok" for r in self.results)


def actor(repo_dir: Path) -> str:
    if os.environ.get("GITHUB_ACTOR"):
        return os.environ["GITHUB_ACTOR"]
    try:
        reader = git.Repo(repo_dir, search_parent_directories=True).config_reader()
        name = reader.get_value("user", "name", "")
        email = reader.get_value("user", "email", "")
        return f"{name} <{email}>".strip() if name or email else os.environ.get("USER", "unknown")
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError):
        return os.environ.get("USER", "unknown")


def run_url() -> str | None:
    server, repo, run = (
        os.environ.get("GITHUB_SERVER_URL"),
        os.environ.get("GITHUB_REPOSITORY"),
        os.environ.get("GITHUB_RUN_ID"),
    )
    return f"{server}/{repo}/actions/runs/{run}" if server and repo and run else None


def from_results(results: list[Result]) -> tuple[tuple[ChangeResult, ...], dict[str, int]]:
    counts: dict[str, int] = {}
    out = []
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
        out.append(
            ChangeResult(
                index=r.index,
                action=r.action,
                resource_type=r.resource_type,
                key=r.key,
                status=r.status,
                cause=r.cause,
                detail=r.detail,
            )
        )
    return tuple(out), counts


def write_note(repo_dir: Path, receipt: Receipt) -> str | None:
    """Attach the receipt to its commit; returns the commit, or None outside git."""
    if not receipt.desired_commit:
        return None
    try:
        repo = git.Repo(repo_dir, search_parent_directories=True)
        repo.git.notes(
            "--ref",
            NOTES_REF,
            "add",
            "-f",
            "-m",
            receipt.model_dump_json(indent=2),
            receipt.desired_commit,
        )
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError):
        return None
    return receipt.desired_commit


def read_note(repo_dir: Path, rev: str) -> Receipt | None:
    try:
        repo = git.Repo(repo_dir, search_parent_directories=True)
        text = repo.git.notes("--ref", NOTES_REF, "show", repo.commit(rev).hexsha)
    except git.GitCommandError:
        return None
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.BadName, ValueError) as exc:
        raise ReconcilerError(
            f"cannot read receipts at {rev}: {exc}", "run it in the repository"
        ) from exc
    try:
        return Receipt.model_validate(json.loads(text))
    except ValueError:
        return None
