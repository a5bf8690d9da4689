"""``reconciler tenant …``: the embedded tenant and live-tenant inspection."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Serve, seed and inspect SCIM tenants (the embedded one and real ones).",
    no_args_is_help=True,
)
