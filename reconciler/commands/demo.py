"""``reconciler demo``: the main job against the sample desired-state's embedded tenant."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from reconciler.demo import run_demo
from reconciler.diagnostics import render_text
from reconciler.plan.render import use_color
from reconciler.plan.run import InvalidState


def run(
    directory: Path = typer.Argument(Path("desired-state"), help="The desired-state directory."),
) -> None:
    """Provision a fresh embedded tenant, drift it, then plan, apply and plan again.

    Uses (and resets) the embedded tenant named in tenant.yaml; idempotent, runs any number
    of times. Exit 0 when the final plan is empty.
    """
    try:
        code = run_demo(directory, typer.echo, color=use_color(sys.stdout))
    except InvalidState as exc:
        typer.echo(render_text(exc.diagnostics))
        typer.echo("demo: the desired state does not validate; fix the problems above")
        raise typer.Exit(1) from None
    raise typer.Exit(code)
