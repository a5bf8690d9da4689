"""``reconciler demo``: the main job against the sample desired-state's embedded tenant."""

from __future__ import annotations

from pathlib import Path

import typer

from reconciler.desired.loader import load
from reconciler.diagnostics import render_text


def run(
    directory: Path = typer.Argument(Path("desired-state"), help="The desired-state directory."),
) -> None:
    """Run the main job on the sample state: validate it and say what was done."""
    result = load(directory)
    if result.diagnostics:
        typer.echo(render_text(result.diagnostics))
    if not result.ok or result.state is None:
        typer.echo("demo: the desired state does not validate; fix the problems above")
        raise typer.Exit(1)
    st = result.state
    typer.echo(f"validated {directory}/: {st.summary()}")
    typer.echo(f"tenant: {st.tenant.url} (profile {st.tenant.profile})")
