"""``reconciler github …``: the GitHub steps of the workflows, as tested Python, not YAML."""

from __future__ import annotations

from pathlib import Path

import typer

from reconciler.commands.show import read_plan
from reconciler.errors import UsageError
from reconciler.gitops.github import (
    COMMENT_LIMIT,
    DEFAULT_BOT,
    GitHub,
    GitHubError,
    event_pr,
    marker,
    run_url,
)
from reconciler.gitops.review import reviewed_hash, what_changed
from reconciler.plan.gates import GATES
from reconciler.plan.model import Plan
from reconciler.plan.render import render_markdown

app = typer.Typer(
    help="GitHub steps of the workflows: sticky plan comment, reviewed-plan check, issues. "
    "Uses GITHUB_TOKEN, GITHUB_API_URL, GITHUB_REPOSITORY and GITHUB_EVENT_PATH.",
    no_args_is_help=True,
)
PR = typer.Option(
    None, "--pr", metavar="N", help="Pull request number (default: from GITHUB_EVENT_PATH)."
)
AUTHOR = typer.Option(
    DEFAULT_BOT,
    "--author",
    envvar="RECONCILER_GITHUB_BOT",
    help="Login our comments are written by.",
)
# Room for the sticky marker and a heading around a rendered plan.
ROOM = 512
ARTIFACT = "the run's plan-json artifact (`reconciler show plan.json`)"


def _pr(pr: str | None) -> int:
    """``--pr`` as the workflows pass it ("" when a step output is empty), else the event's."""
    if pr is not None and pr.strip():
        if not pr.strip().isdigit():
            raise UsageError(f"--pr {pr!r} is not a pull request number", "pass --pr 42")
        return int(pr)
    n = event_pr()
    if not n:
        raise UsageError("no pull request number", "pass --pr N (or run in a pull_request event)")
    return n


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc


def _with_run_link(body: str) -> str:
    link = run_url()
    return body.rstrip("\n") + (f"\n\n[Workflow run]({link})\n" if link else "\n")


@app.command("comment")
def comment(
    plan_file: Path | None = typer.Option(
        None,
        "--plan",
        help="A plan from `reconciler plan --out`: rendered as markdown, summarised to fit one "
        "comment. When this file does not exist (planning failed), --body-file is posted.",
    ),
    body_file: Path | None = typer.Option(None, "--body-file", help="Markdown to post."),
    marker_: str = typer.Option("plan", "--marker", help="Which sticky comment (plan, apply, …)."),
    pr: str | None = PR,
    author: str = AUTHOR,
) -> None:
    """Create or edit in place the one sticky comment named MARKER on the pull request.

    The comment is found by its hidden marker (<!-- reconciler:MARKER -->) among all the pull
    request's comments written by --author, and edited; only the first run creates it.
    """
    n = _pr(pr)
    if plan_file is not None and plan_file.exists():
        limit = COMMENT_LIMIT - len(marker(marker_)) - ROOM
        body = render_markdown(read_plan(plan_file), limit=limit, artifact=ARTIFACT)
    elif body_file is not None:
        body = _read(body_file)
    else:
        raise UsageError(
            "nothing to post" + (f": {plan_file} does not exist" if plan_file else ""),
            "pass --plan plan.json and/or --body-file FILE.md",
        )
    done = GitHub.from_env().upsert_comment(n, marker_, body, author)
    typer.echo(f"{done} the {marker_} comment on #{n}")


@app.command("reviewed-hash")
def reviewed(pr: str | None = PR, author: str = AUTHOR) -> None:
    """Print the plan hash recorded in the pull request's sticky plan comment."""
    n = _pr(pr)
    found = GitHub.from_env().sticky(n, "plan", author)
    h = reviewed_hash(found.text) if found else None
    if not h:
        typer.echo(f"error: #{n} has no reviewed plan comment", err=True)
        raise typer.Exit(1)
    typer.echo(h)


def _refusal(plan: Plan, n: int, reviewed: str | None, body: str) -> tuple[str, str]:
    """(one line for the log, the comment for the pull request) saying why nothing applies."""
    now = render_markdown(plan, limit=COMMENT_LIMIT // 2)
    if plan.has_errors:
        line = f"the plan of the merged commit has errors ({plan.plan_hash[:12]})"
        why = (
            "The plan of the merged commit is blocked by errors (a safety gate, a policy, an "
            "ambiguous match). Nothing was applied. Fix them, or allow the gate deliberately, "
            "in a new pull request."
        )
        return line, f"{why}\n\n{now}"
    if reviewed is None:
        line = f"#{n} has no reviewed plan: its plan comment is missing or carries no hash"
        why = (
            f"#{n} has no reviewed plan (the plan check did not run, ran on a fork without "
            "secrets, or failed), so there is nothing to compare the merged commit's plan "
            "with. Nothing was applied. Open a pull request from a branch of this repository "
            "to get this plan reviewed."
        )
        return line, f"{why}\n\n{now}"
    line = (
        f"the plan of the merged commit ({plan.plan_hash[:12]}) differs from the plan "
        f"reviewed on #{n} ({reviewed[:12]})"
    )
    diff = what_changed(body, now)
    if diff:
        what = (
            "What changed between the reviewed plan (`-`) and the plan of the merged commit "
            "(`+`):\n\n```diff\n" + "\n".join(diff) + "\n```"
        )
    else:
        what = (
            "Both plans list the same changes, but an object they touch was modified in the "
            "tenant since the review (its version no longer matches the one reviewed), so the "
            "reviewed plan was made against a tenant that no longer exists."
        )
    why = (
        f"The plan of the merged commit ({plan.plan_hash[:12]}) is not the plan reviewed here "
        f"({reviewed[:12]}): the tenant changed after the review, or the merged commit is not the "
        "commit that was planned. Nothing was applied. To go ahead, open a new pull request "
        "(any change under desired-state/) and review the plan it gets.\n\n" + what
    )
    return (
        line,
        f"{why}\n\n<details><summary>The plan of the merged commit</summary>\n\n{now}\n</details>",
    )


@app.command("verify")
def verify(
    plan_file: Path = typer.Option(..., "--plan", help="The plan made on the merged commit."),
    pr: str | None = PR,
    reviewed_hash_: str | None = typer.Option(None, "--reviewed-hash", help="Compare with this."),
    comment_: bool = typer.Option(False, "--comment", help="Explain a refusal on the PR."),
    author: str = AUTHOR,
) -> None:
    """Exit 0 when the plan is the one reviewed on the pull request, 1 (and say why) if not.

    A plan that changed after review (the tenant moved, or a later commit changed the desired
    state) must not be applied silently: with --comment, the pull request is told what
    changed between the two plans. A plan with errors is refused as well.
    """
    plan = read_plan(plan_file)
    gh = GitHub.from_env() if (reviewed_hash_ is None or comment_) else None
    n = _pr(pr) if gh else 0
    body = ""
    if reviewed_hash_ is None and gh is not None:
        found = gh.sticky(n, "plan", author)
        body = found.text if found else ""
        reviewed_hash_ = reviewed_hash(body)
    if reviewed_hash_ == plan.plan_hash and not plan.has_errors:
        typer.echo(f"verified: plan {plan.plan_hash[:12]} is the reviewed plan")
        return
    line, text = _refusal(plan, n, reviewed_hash_, body)
    if comment_ and gh is not None:
        gh.comment(n, _with_run_link("### ⛔ Not applied: " + line + "\n\n" + text))
    typer.echo(f"error: not applied: {line}", err=True)
    raise typer.Exit(1)


@app.command("merged-pr")
def merged_pr(sha: str = typer.Option(..., "--sha", help="The merge (or squash) commit.")) -> None:
    """Print the number of the merged pull request that SHA came from; exit 1 if none.

    A commit pushed to main without a pull request has no reviewed plan, so it is not
    applied.
    """
    n = GitHub.from_env().pr_for_commit(sha)
    if not n:
        raise GitHubError(
            f"commit {sha[:12]} did not come from a merged pull request: there is no reviewed "
            "plan, so nothing is applied",
            "change desired-state through pull requests (protect main so that pushes need one)",
        )
    typer.echo(n)


@app.command("allow-from-labels")
def allow_from_labels(pr: str | None = PR) -> None:
    """Print the safety allowance the pull request's labels grant (for RECONCILER_ALLOW).

    A label reconciler:allow-GATE (reconciler:allow-deletions, -suspensions,
    -membership-removals, -lost-grants, -rule-changes) allows that gate without limit for
    this pull request. Prints nothing when there is no pull request.
    """
    n = _pr(pr) if (pr or "").strip() else event_pr()
    if not n:
        return
    allowed = []
    for label in GitHub.from_env().labels(n):
        if not label.startswith("reconciler:allow-"):
            continue
        gate = label.removeprefix("reconciler:allow-").replace("-", "_")
        gate = "deletions" if gate == "deletes" else gate
        if gate in GATES:
            allowed.append(f"{gate}=all")
        else:
            names = ", ".join(f"reconciler:allow-{g.replace('_', '-')}" for g in GATES)
            typer.echo(f"warning: label {label} names no safety gate ({names})", err=True)
    typer.echo(",".join(allowed))


@app.command("issue")
def issue(
    label: str = typer.Option(..., "--label", help="The one issue with this label is updated."),
    title: str = typer.Option(..., "--title", help="Its title (replaces the open one's)."),
    body_file: Path | None = typer.Option(
        None, "--body-file", help="Its body; when missing or empty, --fallback is used."
    ),
    fallback: str = typer.Option(
        "The workflow failed before it had anything to report.",
        "--fallback",
        help="Body when --body-file is missing or empty.",
    ),
) -> None:
    """Open the issue with LABEL, or update it when one is open already (with the run's link)."""
    body = _read(body_file) if body_file is not None and body_file.exists() else ""
    done, n = GitHub.from_env().upsert_issue(label, title, _with_run_link(body.strip() or fallback))
    typer.echo(f"{done} issue #{n}")


@app.command("close-issue")
def close_issue(
    label: str = typer.Option(..., "--label", help="The open issue with this label is closed."),
    reason: str = typer.Option(..., "--comment", help="Said on the issue before closing it."),
) -> None:
    """Close the open issue with LABEL, if there is one, saying why."""
    closed = GitHub.from_env().close_issue(label, _with_run_link(reason))
    typer.echo(f"closed issue #{closed}" if closed else f"no open {label} issue")


@app.command("drift")
def drift(
    plan_file: Path = typer.Option(..., "--plan", help="A plan of main against the tenant."),
    label: str = typer.Option("reconciler:drift", "--label"),
) -> None:
    """Open or update one drift issue when the tenant differs from main; close it when not."""
    plan = read_plan(plan_file)
    gh = GitHub.from_env()
    if plan.changes or plan.has_errors:
        body = render_markdown(plan, limit=COMMENT_LIMIT - ROOM)
        title = (
            f"reconciler: the tenant drifted from main ({len(plan.changes)} changes)"
            if plan.changes
            else "reconciler: the drift check of main has errors"
        )
        done, n = gh.upsert_issue(label, title, _with_run_link(body))
        typer.echo(f"drift: {len(plan.changes)} changes; {done} issue #{n}")
        return
    closed = gh.close_issue(
        label, _with_run_link("The tenant matches desired-state on main again. Closing.")
    )
    typer.echo(f"no drift{f'; closed issue #{closed}' if closed else ''}")
