"""``reconciler demo``: the main job against the sample desired-state's embedded tenant."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from reconciler.demo import run_demo
from reconciler.plan.render import use_color


def run(
    directory: Path = typer.Argument(Path("desired-state"), help="The desired-state directory."),
) -> None:
    """Provision a fresh embedded tenant, drift it, then plan, apply and plan again.

    Uses (and resets) the embedded tenant named in tenant.yaml; idempotent, runs any number
    of times. Exit 0 when the final plan is empty.
    """
    raise typer.Exit(run_demo(directory, typer.echo, color=use_color(sys.stdout)))
