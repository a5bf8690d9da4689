"""``reconciler import``: write desired-state YAML from a live tenant."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from reconciler.desired.loader import load
from reconciler.desired.models import Auth, Profile
from reconciler.diagnostics import render_text
from reconciler.importer import import_tenant
from reconciler.scim import open_client, read_live


def run(
    out: Path = typer.Option(..., "--out", help="Directory to write (existing files are merged)."),
    tenant: str = typer.Option(..., "--tenant", help="The tenant URL (https://… or local:…)."),
    profile: Profile = typer.Option(Profile.generic, "--profile", help="generic, goto, genesys."),
    token_env: str | None = typer.Option(
        None, "--token-env", help="Bearer token from this environment variable."
    ),
    split_by: str = typer.Option(
        "department", "--split-by", help="Split users into files by this attribute, or none."
    ),
) -> None:
    """Import users, groups, memberships and custom attributes from a live tenant.

    Server-owned fields and secrets are never written. On an existing directory, entries are
    updated in place and new ones appended, keeping comments and order. A plan right after an
    import shows no changes.
    """
    auth = Auth(type="bearer", token_env=token_env) if token_env else Auth()

    async def read() -> object:
        async with open_client(tenant, auth=auth, profile=profile) as client:
            return await read_live(client)

    live = asyncio.run(read())
    result = import_tenant(live, out, url=tenant, profile=str(profile), split_by=split_by)  # type: ignore[arg-type]
    typer.echo(
        f"imported {result.users} users, {result.groups} groups, {result.attributes} custom "
        f"attributes into {out}/ ({len(result.files)} files)"
    )
    check = load(out)
    if not check.ok:
        typer.echo(render_text(check.diagnostics))
        typer.echo("warning: the imported state does not validate as is; fix the problems above")
        raise typer.Exit(1)
