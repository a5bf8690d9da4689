"""``reconciler import``: write desired-state YAML from a live tenant."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import typer

from reconciler import aio
from reconciler.desired.loader import load
from reconciler.desired.models import Auth, Profile
from reconciler.desired.yamlsource import YamlProblem, decode, parse
from reconciler.diagnostics import Diagnostic, display_path, render_text
from reconciler.errors import InputError, TenantError, UsageError
from reconciler.importer import declared, import_tenant
from reconciler.importer.directory import ensure_directory
from reconciler.live import LiveState
from reconciler.scim import existing_local_tenant, open_client, read_live
from reconciler.urls import same_tenant


def _check_url(tenant: str) -> None:
    if tenant.startswith("local:"):
        existing_local_tenant(tenant)  # a mistyped path is not an empty tenant to import
        return
    parts = urlsplit(tenant)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"{tenant!r} is not a tenant URL", "write https://…/scim/v2 or local:PATH")
    if parts.username or parts.password:
        raise UsageError(
            "the tenant URL carries credentials, which would be written to tenant.yaml",
            "remove them from the URL; pass a token by variable name with --token-env",
        )


def _onto(out: Path, tenant: str, profile: Profile | None) -> Profile:
    """The profile to import with. An existing directory's tenant.yaml says which tenant its
    plans go to, and with which profile: importing another tenant's users into it would make
    the next plan create them in the tenant it names, so a --tenant or --profile that
    contradicts it is refused before anything is read."""
    path = out / "tenant.yaml"
    if not path.is_file():
        return profile or Profile.generic
    try:
        data = parse(decode(path.read_bytes()))
    except OSError as exc:
        raise InputError(f"cannot read {display_path(path)}: {exc.strerror}") from exc
    except YamlProblem as p:
        where = Diagnostic(display_path(path), p.line, p.col, p.message).where
        raise InputError(f"{where}: {p.message}", p.hint) from p
    data = data if isinstance(data, dict) else {}
    url, written = data.get("url"), data.get("profile", Profile.generic.value)
    if isinstance(url, str) and not same_tenant(url, tenant):
        raise UsageError(
            f"{display_path(path)} names the tenant {url!r}, not {tenant!r}: its plans go to "
            f"{url!r}, which would then create the users imported from {tenant!r}",
            f"import into a directory of its own (--out NEW-DIR), or write url: {tenant} in "
            f"{display_path(path)} first",
        )
    if profile is not None and written != profile.value:
        raise UsageError(
            f"{display_path(path)} says profile: {written}, not {profile.value}",
            f"leave out --profile to import with {written}, or change tenant.yaml first",
        )
    if profile is not None:
        return profile
    known = {p.value for p in Profile}
    return Profile(written) if written in known else Profile.generic  # validate says why


def run(
    out: Path = typer.Option(
        ..., "--out", help="Directory to write (an existing desired-state is updated in place)."
    ),
    tenant: str = typer.Option(..., "--tenant", help="The tenant URL (https://… or local:…)."),
    profile: Profile | None = typer.Option(
        None,
        "--profile",
        help="generic, goto, genesys. Default: an existing tenant.yaml's, else generic.",
    ),
    token_env: str | None = typer.Option(
        None,
        "--token-env",
        help="Bearer token from this environment variable (its name goes to tenant.yaml).",
    ),
    split_by: str = typer.Option(
        "department",
        "--split-by",
        help="Write new users to users/<value>.yaml by this attribute, or 'none'.",
    ),
) -> None:
    """Import users, groups, memberships and custom attributes from a live tenant.

    Custom attributes are the ones the tenant's /Schemas declare, with their types.
    Server-owned fields (ids, meta, read-only attributes) and secrets (passwords, write-only
    attributes) are never written. On an existing directory, entries are updated in place
    in whatever file holds them, only where the tenant differs, and new ones appended,
    keeping comments, order and keys the import does not own. A plan right after an import
    shows no changes.
    """
    _check_url(tenant)
    ensure_directory(out)  # before the tenant is read
    chosen = _onto(out, tenant, profile)
    auth = Auth(type="bearer", token_env=token_env) if token_env else Auth()

    async def read() -> tuple[LiveState, Any]:
        async with open_client(tenant, auth=auth, profile=chosen) as client:
            live = await read_live(client)
            try:
                schemas = (await client.request("GET", "Schemas")).json()
            except (TenantError, ValueError):
                schemas = None
            return live, schemas

    live, schemas = aio.run(read())
    for warning in live.warnings:  # e.g. a record that failed validation: not imported
        typer.echo(f"warning: {warning}", err=True)
    result = import_tenant(
        live,
        out,
        url=tenant,
        profile=chosen.value,
        split_by=split_by,
        schemas=declared(schemas) if schemas is not None else None,
        token_env=token_env,
    )
    changed = len(result.files) - len(result.created)
    typer.echo(
        f"imported {result.users} users, {result.groups} groups, {result.attributes} custom "
        f"attributes into {out}/: {len(result.created)} files created, {changed} updated, "
        f"{result.unchanged} entries already as the tenant has them"
    )
    if schemas is None:
        typer.echo("note: the tenant does not list /Schemas; attribute types were inferred")
    if result.unsplit:
        typer.echo(
            f"{result.unsplit} new users have no {split_by}: written to {out}/users/other.yaml"
        )
    for why in result.skipped[:20]:
        typer.echo(f"not written: {why}")
    if len(result.skipped) > 20:
        typer.echo(f"not written: {len(result.skipped) - 20} more like the above")
    if result.only_in_directory:
        shown = ", ".join(result.only_in_directory[:10])
        more = len(result.only_in_directory) - 10
        typer.echo(
            f"{len(result.only_in_directory)} users of {out}/ are not in the tenant and were "
            f"left as they are (a plan would create them): {shown}"
            + (f" and {more} more" if more > 0 else "")
        )
    check = load(out)
    if not check.ok:
        typer.echo(render_text(check.diagnostics))
        typer.echo("warning: the imported state does not validate as is; fix the problems above")
        raise typer.Exit(1)
