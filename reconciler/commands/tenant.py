"""``reconciler tenant …``: the embedded tenant and live-tenant inspection."""

from __future__ import annotations

import typer

from reconciler.commands import tenant_init, tenant_seed, tenant_serve, tenant_status

app = typer.Typer(
    help="Serve, seed and inspect SCIM tenants (the embedded one and real ones).",
    no_args_is_help=True,
)
app.command("serve")(tenant_serve.run)
app.command("seed")(tenant_seed.run)
app.command("init")(tenant_init.run)
app.command("status")(tenant_status.run)
