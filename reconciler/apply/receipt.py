"""The receipt of an apply: what was applied, by whom, when, with which results.

Kept where auditors find it from the commit: a git note on the applied commit under
``refs/notes/reconciler`` (the workflow pushes it). No secrets; sensitive values never enter
results in the first place (results carry causes and details, not attribute values).
"""

from __future__ import annotations

import json
import os
import tempfile
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


class Attempt(BaseModel):
    """An earlier apply attached to the same commit (kept when a retry replaces the note)."""

    model_config = ConfigDict(frozen=True)

    plan_hash: str
    actor: str
    run_url: str | None = None
    started_at: str
    finished_at: str
    counts: dict[str, int]


class Receipt(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: str = "reconciler-apply-receipt"
    plan_hash: str
    tenant_url: str
    desired_commit: str | None
    # The applied state held changes that desired_commit does not (applied before committing).
    desired_uncommitted: bool = False
    actor: str
    run_url: str | None
    started_at: str
    finished_at: str
    counts: dict[str, int]
    requests_sent: int = 0
    retries: int = 0  # of requests_sent, those sent again (429, 5xx, connection errors)
    results: tuple[ChangeResult, ...]
    # Earlier applies of this commit, oldest first (a failed apply, then --retry-failed).
    earlier: tuple[Attempt, ...] = ()

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
    """Attach the receipt to its commit, keeping earlier attempts on that commit as
    summaries; returns the commit, or None outside git (or without a commit to attach to)."""
    if not receipt.desired_commit:
        return None
    try:
        repo = git.Repo(repo_dir, search_parent_directories=True)
        previous = _note(repo, receipt.desired_commit)
        if previous is not None:
            attempt = Attempt(
                plan_hash=previous.plan_hash,
                actor=previous.actor,
                run_url=previous.run_url,
                started_at=previous.started_at,
                finished_at=previous.finished_at,
                counts=previous.counts,
            )
            receipt = receipt.model_copy(update={"earlier": (*previous.earlier, attempt)})
        # Through a file, not the command line: a receipt of 100,000 changes is megabytes.
        with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as fh:
            fh.write(receipt.model_dump_json(indent=2) + "\n")
            fh.flush()
            repo.git.notes("--ref", NOTES_REF, "add", "-f", "-F", fh.name, receipt.desired_commit)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError):
        return None
    return receipt.desired_commit


def _note(repo: git.Repo, sha: str) -> Receipt | None:
    try:
        text = repo.git.notes("--ref", NOTES_REF, "show", sha)
    except git.GitCommandError:
        return None
    try:
        return Receipt.model_validate(json.loads(text))
    except ValueError:
        return None


def read_note(repo_dir: Path, rev: str) -> Receipt | None:
    try:
        repo = git.Repo(repo_dir, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise ReconcilerError(
            f"{repo_dir.resolve()} is not in a git repository",
            "run it in the repository whose commits were applied",
        ) from exc
    try:
        sha = repo.commit(rev).hexsha
    except (git.BadName, ValueError) as exc:
        raise ReconcilerError(
            f"unknown revision {rev!r}",
            "give a commit: a SHA, a branch, a tag or HEAD~1 (see `git log`)",
        ) from exc
    return _note(repo, sha)
