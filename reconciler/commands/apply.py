"""``reconciler apply``: execute exactly a reviewed plan."""

from __future__ import annotations

import asyncio
import sys
from enum import StrEnum
from pathlib import Path

import typer

from reconciler.apply import report
from reconciler.apply.receipt import write_note
from reconciler.apply.run import apply_plan
from reconciler.commands.show import read_plan
from reconciler.errors import UsageError
from reconciler.plan.render import render_text as render_plan
from reconciler.plan.render import use_color
from reconciler.plan.run import load_state, plan_directory, tenant_url
from reconciler.progress import progress_bar


class Format(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


def run(
    plan_file: Path | None = typer.Argument(
        None, help="A plan from `reconciler plan --out`. Without it: plan now, then apply."
    ),
    directory: Path = typer.Option(
        Path("desired-state"), "--dir", help="The desired-state directory (for tenant settings)."
    ),
    tenant: str | None = typer.Option(None, "--tenant", help="Tenant URL override."),
    auto_approve: bool = typer.Option(
        False, "--auto-approve", help="Apply a fresh plan without asking (CI)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted apply."),
    retry_failed: bool = typer.Option(
        False, "--retry-failed", help="Redo only what failed or was skipped last time."
    ),
    concurrency: int | None = typer.Option(
        None, "--concurrency", min=1, help="Changes in flight at once (default: the profile's)."
    ),
    fmt: Format = typer.Option(Format.text, "--format", "-f", help="text, markdown or json."),
    receipt_out: Path | None = typer.Option(None, "--receipt", help="Also write the receipt here."),
) -> None:
    """Apply a plan: stale checks per object, no duplicate creates, failures grouped by cause.

    Every result is journaled as it happens (.reconciler/journal/); --resume continues after an
    interruption, --retry-failed redoes the failures. The receipt is attached to the applied
    commit as a git note (refs/notes/reconciler). Exit 0 when every change succeeded.
    """
    loaded = load_state(directory)
    if plan_file is not None:
        plan = read_plan(plan_file)
        url = tenant
    else:
        plan, _ = plan_directory(directory, tenant=tenant, progress=progress_bar("Reading tenant"))
        url = tenant_url(loaded.state, tenant)
        typer.echo(render_plan(plan, color=use_color(sys.stdout)))
        if not plan.changes:
            return
        if plan.has_errors:
            raise typer.Exit(1)
        if not auto_approve:
            if not sys.stdin.isatty():
                raise UsageError(
                    "refusing to apply without confirmation: no terminal to ask on",
                    "review the plan, then rerun with --auto-approve (or apply a saved plan file)",
                )
            if not typer.confirm("Apply these changes?", default=False):
                typer.echo("Nothing applied.")
                raise typer.Exit(1)
    receipt = asyncio.run(
        apply_plan(
            plan,
            loaded.state.tenant,
            url=url,
            resume=resume,
            retry_failed=retry_failed,
            concurrency=concurrency,
            progress=progress_bar("Applying"),
        )
    )
    noted = write_note(directory, receipt)
    if receipt_out is not None:
        receipt_out.write_text(receipt.model_dump_json(indent=2) + "\n", encoding="utf-8")
    if fmt is Format.json:
        typer.echo(receipt.model_dump_json(indent=2))
    elif fmt is Format.markdown:
        typer.echo(report.render_markdown(receipt), nl=False)
    else:
        typer.echo(report.render_text(receipt))
        if noted:
            typer.echo(f"Receipt attached to {noted[:12]} (git notes --ref reconciler show).")
    raise typer.Exit(0 if receipt.ok else 1)
