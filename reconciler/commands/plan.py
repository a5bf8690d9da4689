"""``reconciler plan``: what would change in the tenant, and who gains and loses access."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path

import typer

from reconciler.errors import UsageError
from reconciler.outfile import out_file, write_out_file
from reconciler.plan.model import Plan
from reconciler.plan.render import (
    render_annotations,
    render_json,
    render_markdown,
    render_text,
    use_color,
)
from reconciler.plan.run import Guardrails, check_override, plan_directory
from reconciler.progress import progress_bar


class Format(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"
    github = "github"


def echo_plan(plan: Plan, fmt: Format, saved: Path | None = None) -> None:
    """Print a plan in the chosen format (shared by plan and show). ``saved``: the plan
    file, which a summarised markdown rendering points to."""
    if fmt is Format.github:
        # Workflow commands first (annotations on the run), then the plan for the log.
        for line in render_annotations(plan):
            typer.echo(line)
        typer.echo(render_text(plan))
    elif fmt is Format.json:
        typer.echo(render_json(plan))
    elif fmt is Format.markdown:
        artifact = f"the plan artifact (reconciler show {saved})" if saved else ""
        typer.echo(render_markdown(plan, artifact=artifact), nl=False)
    else:
        typer.echo(render_text(plan, color=use_color(sys.stdout)))


def _check_targets(targets: list[str]) -> None:
    """An empty --target (an unset variable in a script: ``--target "$USER_NAME"``) names
    nobody; it is a mistake, not a plan of nothing or of everything."""
    if any(not t.strip() for t in targets):
        raise UsageError(
            "--target needs a userName or group displayName, and was given an empty value",
            "write e.g. --target alice@acme.example or --target 'Sales EMEA'; leave --target "
            "out to plan everything",
        )


def run(
    directory: Path = typer.Argument(Path("desired-state"), help="The desired-state directory."),
    tenant: str | None = typer.Option(
        None, "--tenant", help="Tenant URL, overriding tenant.yaml and RECONCILER_TENANT_URL."
    ),
    out_: str | None = typer.Option(None, "--out", "-o", help="Write the plan artifact (JSON)."),
    fmt: Format = typer.Option(
        Format.text,
        "--format",
        "-f",
        help="text; markdown (a PR comment); json (the artifact); github (::error annotations).",
    ),
    detailed_exitcode: bool = typer.Option(
        False, "--detailed-exitcode", help="Exit 0 with no changes, 2 with changes, 1 on error."
    ),
    target: list[str] = typer.Option(
        [],
        "--target",
        help="Plan only this user (a userName) or group (a displayName) and its memberships; "
        "repeatable.",
    ),
    allow: list[str] = typer.Option(
        [],
        "--allow",
        help="Allow a safety gate deliberately: GATE=N or GATE=all (also RECONCILER_ALLOW); "
        "recorded in the plan, also when the gate is not exceeded, and honoured by apply.",
    ),
    policies: Path | None = typer.Option(
        None, "--policies", help="Policy directory (default: policies/ beside DIRECTORY)."
    ),
    base: str | None = typer.Option(
        None,
        "--base",
        help="Git revision that rule changes are counted against (e.g. origin/main).",
    ),
) -> None:
    """Compare desired-state with the live tenant and show the plan.

    The plan leads with who gains and who loses access, then each change with its reason.
    Nothing is written to the tenant. An invalid desired state stops here, before any request.
    Exit 1 when the plan has errors (ambiguous matches, blocked gates, policy errors).
    """
    _check_targets(target)
    check_override(tenant)
    out = out_file(out_, "--out", "plan.json")
    plan, _ = plan_directory(
        directory,
        tenant=tenant,
        targets=tuple(target),
        progress=progress_bar("Reading tenant"),
        guardrails=Guardrails(policies=policies, allow=tuple(allow), base=base),
    )
    if out is not None:
        write_out_file(out, render_json(plan) + "\n", "the plan", "--out")
    echo_plan(plan, fmt, out)
    if plan.has_errors:
        raise typer.Exit(1)
    if detailed_exitcode and plan.changes:
        raise typer.Exit(2)
