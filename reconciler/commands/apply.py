"""``reconciler apply``: execute exactly a reviewed plan."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path

import typer

from reconciler import aio
from reconciler.apply import report
from reconciler.apply.receipt import write_note
from reconciler.apply.run import applied_already, apply_plan, journal_of
from reconciler.commands.show import read_plan
from reconciler.desired.loader import load_files
from reconciler.desired.models import Tenant
from reconciler.errors import UsageError
from reconciler.outfile import out_file, write_out_file
from reconciler.plan.render import render_text as render_plan
from reconciler.plan.render import use_color
from reconciler.plan.run import (
    ENV_URL,
    Guardrails,
    InvalidState,
    check_override,
    chosen_url,
    load_state,
    plan_directory,
    tenant_url,
)
from reconciler.progress import progress_bar
from reconciler.urls import has_credentials, has_query, same_tenant


class Format(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


def _shown(url: str) -> str:
    """A URL for a message: not one that carries a secret."""
    if has_credentials(url) or has_query(url):
        return "(a URL carrying credentials or a query string, not shown)"
    return url


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
    receipt_: str | None = typer.Option(None, "--receipt", help="Also write the receipt here."),
    allow: list[str] = typer.Option(
        [],
        "--allow",
        help="Without PLAN_FILE: allow a safety gate deliberately, as in `reconciler plan`.",
    ),
    policies: Path | None = typer.Option(
        None, "--policies", help="Without PLAN_FILE: the policy directory, as in `plan`."
    ),
) -> None:
    """Apply a plan: stale checks per object, no duplicate creates, failures grouped by cause.

    Without PLAN_FILE: plan now, show it, and ask on a terminal (--auto-approve in CI; with
    no terminal and no --auto-approve, nothing is applied). With PLAN_FILE, only tenant.yaml
    is read from --dir (for credentials and limits): the plan is the contract, and one made
    for another tenant than tenant.yaml's (or --tenant's; a local: path is compared by the file
    it opens) is refused, as is one that harms an account tenant.yaml protects now or exceeds
    its safety gates now (every problem named at once; a refused plan writes nothing, and its
    recorded allowances count). Every result is
    journaled as it happens (.reconciler/journal/); --resume continues an interrupted apply of
    PLAN_FILE, --retry-failed redoes what failed. One apply at a time per working copy. The
    receipt is attached to the applied commit as a git note (refs/notes/reconciler; see
    `reconciler receipts`). Exit 0 when every change succeeded, 1 otherwise.
    """
    if (resume or retry_failed) and plan_file is None:
        flag = "--resume" if resume else "--retry-failed"
        raise UsageError(
            f"{flag} continues the apply of a saved plan, and no PLAN_FILE was given",
            f"pass the plan that was applied: reconciler apply plan.json {flag}",
        )
    if plan_file is not None and (allow or policies is not None):
        flag = "--allow" if allow else "--policies"
        raise UsageError(
            f"{flag} shapes a new plan, and PLAN_FILE was made already: its allowances and "
            "policy checks are the ones it was reviewed with",
            f"make a new plan with it (reconciler plan {flag} … --out plan.json), review it, "
            "and apply that",
        )
    check_override(tenant)
    receipt_out = out_file(receipt_, "--receipt", "receipt.json")
    if plan_file is not None:
        settings = _tenant_settings(directory)
        plan = read_plan(plan_file)
        if tenant is not None and not same_tenant(tenant, plan.tenant_url):
            raise UsageError(
                f"this plan was made against {_shown(plan.tenant_url)}, not {_shown(tenant)}",
                "a plan applies only to the tenant it was made against: drop --tenant, or "
                f"make a plan for that tenant (reconciler plan --tenant {_shown(tenant)} --out …)",
            )
        # The credentials come from tenant.yaml: never send them to another tenant than the
        # one it (or --tenant, or the env var, as for the plan) names, whatever the file says.
        if tenant is None:
            expected = chosen_url(settings, None)
            source = ENV_URL if os.environ.get(ENV_URL) else f"{directory}/tenant.yaml"
            if not same_tenant(expected, plan.tenant_url):
                raise UsageError(
                    f"this plan was made against {_shown(plan.tenant_url)}, but {source} names "
                    f"{_shown(expected)}: its credentials are not sent to another tenant",
                    "apply the plan with the desired-state it was made from (--dir), or name "
                    "its tenant deliberately with --tenant",
                )
        url = None
    else:
        plan, state = plan_directory(
            directory,
            tenant=tenant,
            progress=progress_bar("Reading tenant"),
            guardrails=Guardrails(policies=policies, allow=tuple(allow)),
        )
        settings, url = state.tenant, tenant_url(state, tenant)
        # The plan goes to stdout only where it cannot spoil the receipt's format.
        shown_on = sys.stdout if fmt is Format.text else sys.stderr
        typer.echo(render_plan(plan, color=use_color(shown_on)), err=fmt is not Format.text)
        if plan.has_errors:
            raise typer.Exit(1)
        if not plan.changes:
            return
        if not auto_approve:
            if not sys.stdin.isatty():
                raise UsageError(
                    "refusing to apply without confirmation: no terminal to ask on",
                    "review the plan, then rerun with --auto-approve (or apply a saved plan file)",
                )
            if not typer.confirm("Apply these changes?", default=False, err=True):
                typer.echo("Nothing applied.", err=True)
                raise typer.Exit(1)
    journal = journal_of(plan)
    if plan_file is not None and applied_already(plan):
        # A re-run of the same job (CI retries, a second click, a --resume or --retry-failed
        # after all went well): nothing to do, and no second receipt claiming a fresh success.
        typer.echo(
            f"Plan {plan.plan_hash[:12]} was already applied completely from this working copy "
            f"(journal {journal}): nothing was sent. `reconciler plan` shows whether the tenant "
            "still matches."
        )
        raise typer.Exit(0)
    if (resume or retry_failed) and not journal.is_file():
        typer.echo(
            f"note: no journal of an earlier apply of plan {plan.plan_hash[:12]} here "
            f"({journal}): applying it from the start",
            err=True,
        )
    receipt = aio.run(
        apply_plan(
            plan,
            settings,
            url=url,
            resume=resume,
            retry_failed=retry_failed,
            concurrency=concurrency,
            progress=progress_bar("Applying"),
        )
    )
    noted = write_note(directory, receipt)
    if receipt.desired_commit and receipt.desired_uncommitted:
        typer.echo(
            f"warning: desired-state had uncommitted changes: the receipt on "
            f"{receipt.desired_commit[:12]} records an apply of a state that commit does not "
            "hold; commit first so the history shows what was applied",
            err=True,
        )
    if receipt.desired_commit and not noted:
        typer.echo(
            f"warning: could not attach the receipt to {receipt.desired_commit[:12]} as a git "
            "note (is git's user.name set?); keep it with --receipt FILE",
            err=True,
        )
    shown = str(plan_file) if plan_file is not None else None
    if fmt is Format.json:
        typer.echo(receipt.model_dump_json(indent=2))
    elif fmt is Format.markdown:
        typer.echo(report.render_markdown(receipt, shown), nl=False)
    else:
        typer.echo(report.render_text(receipt, shown))
        if noted:
            typer.echo(f"Receipt attached to {noted[:12]}: reconciler receipts {noted[:12]}")
    if receipt_out is not None:  # after the report: a write that fails must not hide it
        write_out_file(
            receipt_out, receipt.model_dump_json(indent=2) + "\n", "the receipt", "--receipt"
        )
    raise typer.Exit(0 if receipt.ok else 1)


def _tenant_settings(directory: Path) -> Tenant:
    """Only tenant.yaml: applying a saved plan needs the credentials and limits, not the
    rest of desired-state (which may have moved on since the plan was made)."""
    path = directory / "tenant.yaml"
    try:
        data = path.read_bytes()
    except OSError:
        return load_state(directory).state.tenant  # reports what is wrong, with the usual hints
    result = load_files(directory, {path: data})
    if not result.ok or result.state is None:
        raise InvalidState(result.diagnostics)
    return result.state.tenant
