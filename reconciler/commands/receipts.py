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
    """Show when and how the desired state of a commit reached the tenant (from git notes)."""
    receipt = read_note(Path(), rev)
    if receipt is None:
        typer.echo(f"no receipt for {rev}: it has not been applied from this repository")
        raise typer.Exit(1)
    typer.echo(receipt.model_dump_json(indent=2) if json_ else report.render_text(receipt))
    typer.echo(f"applied by {receipt.actor} from {receipt.started_at} to {receipt.finished_at}")
