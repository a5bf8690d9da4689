"""``reconciler github …``: the GitHub steps of the workflows, as tested Python, not YAML."""

from __future__ import annotations

from pathlib import Path

import typer

from reconciler.commands.show import read_plan
from reconciler.errors import UsageError
from reconciler.gitops.github import DEFAULT_BOT, GitHub, event_pr, reviewed_hash
from reconciler.plan.gates import GATES
from reconciler.plan.render import render_markdown

app = typer.Typer(
    help="GitHub steps of the workflows: sticky plan comment, reviewed-plan check, issues. "
    "Uses GITHUB_TOKEN, GITHUB_API_URL, GITHUB_REPOSITORY and GITHUB_EVENT_PATH.",
    no_args_is_help=True,
)
PR = typer.Option(None, "--pr", help="Pull request number (default: from GITHUB_EVENT_PATH).")
AUTHOR = typer.Option(
    DEFAULT_BOT,
    "--author",
    envvar="RECONCILER_GITHUB_BOT",
    help="Login our comments are written by.",
)


def _pr(pr: int | None) -> int:
    n = pr or event_pr()
    if not n:
        raise UsageError("no pull request number", "pass --pr N (or run in a pull_request event)")
    return n


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc


@app.command("comment")
def comment(
    body_file: Path = typer.Option(..., "--body-file", help="Markdown to post."),
    marker: str = typer.Option("plan", "--marker", help="Which sticky comment (plan, apply, …)."),
    pr: int | None = PR,
    author: str = AUTHOR,
) -> None:
    """Create or edit in place the one sticky comment named MARKER on the pull request."""
    n = _pr(pr)
    done = GitHub.from_env().upsert_comment(n, marker, _read(body_file), author)
    typer.echo(f"{done} the {marker} comment on #{n}")


@app.command("reviewed-hash")
def reviewed(pr: int | None = PR, author: str = AUTHOR) -> None:
    """Print the plan hash recorded in the pull request's sticky plan comment."""
    n = _pr(pr)
    found = GitHub.from_env().sticky(n, "plan", author)
    h = reviewed_hash(found["body"]) if found else None
    if not h:
        typer.echo(f"error: #{n} has no reviewed plan comment", err=True)
        raise typer.Exit(1)
    typer.echo(h)


@app.command("verify")
def verify(
    plan_file: Path = typer.Option(..., "--plan", help="The plan made on the merged commit."),
    pr: int | None = PR,
    reviewed_hash_: str | None = typer.Option(None, "--reviewed-hash", help="Compare with this."),
    comment_: bool = typer.Option(False, "--comment", help="Explain a mismatch on the PR."),
    author: str = AUTHOR,
) -> None:
    """Exit 0 when the plan is the one reviewed on the pull request, 1 (and say why) if not.

    A plan that changed after review (the tenant moved, or a later commit changed the desired
    state) must not be applied silently: plan again on a new pull request.
    """
    plan = read_plan(plan_file)
    gh = GitHub.from_env() if (reviewed_hash_ is None or comment_) else None
    n = _pr(pr) if gh else 0
    body = ""
    if reviewed_hash_ is None and gh is not None:
        found = gh.sticky(n, "plan", author)
        body = found["body"] if found else ""
        reviewed_hash_ = reviewed_hash(body)
    if reviewed_hash_ == plan.plan_hash:
        typer.echo(f"verified: plan {plan.plan_hash[:12]} is the reviewed plan")
        return
    why = (
        f"The plan for the merged commit ({plan.plan_hash[:12]}) differs from the plan reviewed "
        f"on this pull request ({(reviewed_hash_ or 'none')[:12]}): the tenant changed since the "
        "review, or the merged commit is not what was planned. Nothing was applied.\n\n"
        "The plan as it would be now:\n\n" + render_markdown(plan, limit=50_000)
    )
    if comment_ and gh is not None:
        gh.comment(n, "### ⛔ Not applied: the plan changed after review\n\n" + why)
    typer.echo(f"error: {why.splitlines()[0]}", err=True)
    raise typer.Exit(1)


@app.command("merged-pr")
def merged_pr(sha: str = typer.Option(..., "--sha", help="The merge (or squash) commit.")) -> None:
    """Print the number of the pull request that SHA came from (nothing if none)."""
    n = GitHub.from_env().pr_for_commit(sha)
    if n:
        typer.echo(n)


@app.command("allow-from-labels")
def allow_from_labels(pr: int | None = PR) -> None:
    """Print the safety allowance the pull request's labels grant (for RECONCILER_ALLOW).

    A label reconciler:allow-GATE (e.g. reconciler:allow-deletions,
    reconciler:allow-suspensions) allows that gate without limit for this pull request.
    """
    n = pr or event_pr()
    if not n:
        return
    allowed = []
    for label in GitHub.from_env().labels(n):
        gate = label.removeprefix("reconciler:allow-").replace("-", "_")
        gate = "deletions" if gate == "deletes" else gate
        if label.startswith("reconciler:allow-") and gate in GATES:
            allowed.append(f"{gate}=all")
    typer.echo(",".join(allowed))


@app.command("issue")
def issue(
    label: str = typer.Option(..., "--label", help="The one issue with this label is updated."),
    title: str = typer.Option(..., "--title"),
    body_file: Path = typer.Option(..., "--body-file"),
) -> None:
    """Open the issue with LABEL, or update it when one is open already."""
    done, n = GitHub.from_env().upsert_issue(label, title, _read(body_file))
    typer.echo(f"{done} issue #{n}")


@app.command("drift")
def drift(
    plan_file: Path = typer.Option(..., "--plan", help="A plan of main against the tenant."),
    body_file: Path | None = typer.Option(None, "--body-file", help="Its markdown rendering."),
    label: str = typer.Option("reconciler:drift", "--label"),
) -> None:
    """Open or update one drift issue when the tenant differs from main; close it when not."""
    plan = read_plan(plan_file)
    gh = GitHub.from_env()
    if plan.changes:
        body = _read(body_file) if body_file else render_markdown(plan)
        done, n = gh.upsert_issue(
            label, f"reconciler: the tenant drifted from main ({len(plan.changes)} changes)", body
        )
        typer.echo(f"drift: {len(plan.changes)} changes; {done} issue #{n}")
        return
    closed = gh.close_issue(label, "The tenant matches desired-state again. Closing.")
    typer.echo(f"no drift{f'; closed issue #{closed}' if closed else ''}")
