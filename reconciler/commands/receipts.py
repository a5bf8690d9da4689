"""``reconciler receipts``: the apply receipt attached to a commit."""

from __future__ import annotations

from pathlib import Path

import typer

from reconciler.apply import report
from reconciler.apply.receipt import read_note


def run(
    rev: str = typer.Argument("HEAD", help="The commit whose receipt to show."),
    json_: bool = typer.Option(False, "--json", help="Print the receipt as JSON."),
) -> None:
    """Show when and how the desired state of a commit reached the tenant (from git notes).

    Receipts are git notes under refs/notes/reconciler, written by `reconciler apply` and
    pushed by the apply workflow; fetch them with
    `git fetch origin refs/notes/reconciler:refs/notes/reconciler`. Exit 1 when the commit
    has no receipt.
    """
    receipt = read_note(Path(), rev)
    if receipt is None:
        typer.echo(
            f"no receipt for {rev}: it was not applied from this repository (or its notes are "
            "not fetched: git fetch origin refs/notes/reconciler:refs/notes/reconciler)"
        )
        raise typer.Exit(1)
    if json_:
        typer.echo(receipt.model_dump_json(indent=2))
        return
    typer.echo(report.render_text(receipt, hints=False))
    where = f" ({receipt.run_url})" if receipt.run_url else ""
    typer.echo(
        f"applied by {receipt.actor} from {receipt.started_at} to {receipt.finished_at}{where}"
    )
    if receipt.desired_uncommitted:
        typer.echo(
            "note: applied with uncommitted changes in desired-state: this commit does not hold "
            "all of what was applied"
        )
    for a in receipt.earlier:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(a.counts.items()))
        typer.echo(f"earlier: {a.started_at} by {a.actor}: {counts} (plan {a.plan_hash[:12]})")
