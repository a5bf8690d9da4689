"""``reconciler tenant status``: connect, show capabilities, count, check custom schemas."""

from __future__ import annotations

from pathlib import Path

import typer

from reconciler import aio
from reconciler.desired.models import CORE_USER
from reconciler.errors import TenantError
from reconciler.live import Capabilities
from reconciler.plan.run import load_state, tenant_url
from reconciler.scim import ScimClient, open_client
from reconciler.scim.discovery import discover
from reconciler.terminal import visible


async def _count(c: ScimClient, caps: Capabilities, kind: str, filter: str | None = None) -> str:
    cursor = "" if caps.pagination == "cursor" else None
    total = (await c.list_page(kind, 1, 1, filter=filter, cursor=cursor)).get("totalResults")
    return str(total) if isinstance(total, int) else "? (the tenant gives no totalResults)"


async def _status(url: str, state: object) -> tuple[Capabilities, str, str, float, list[str]]:
    from reconciler.desired.state import DesiredState

    assert isinstance(state, DesiredState)
    t = state.tenant
    async with open_client(url, auth=t.auth, profile=t.profile, rate_limit=t.rate_limit) as c:
        caps = await discover(c)
        users = await _count(c, caps, "User")
        if c.facts.active_only_listing:  # Genesys lists active users unless asked
            users += f" (+ {await _count(c, caps, 'User', 'active eq false')} inactive)"
        groups = await _count(c, caps, "Group")
        return caps, users, groups, 1 / c.limiter.interval if c.limiter.interval else 0, c.warnings


def run(
    directory: Path = typer.Argument(Path("desired-state"), help="The desired-state directory."),
    tenant: str | None = typer.Option(None, "--tenant", help="Tenant URL override."),
) -> None:
    """Connect to the tenant; print its capabilities, user and group counts, and check that
    its /Schemas declare every custom attribute the desired state uses. Exit 1 on a problem."""
    state = load_state(directory).state
    url = tenant_url(state, tenant)
    try:
        caps, users, groups, rate, warnings = aio.run(_status(url, state))
    except TenantError as exc:
        typer.echo(f"error: {visible(exc)}", err=True)  # it may quote the tenant
        if exc.hint:
            typer.echo(f"  hint: {visible(exc.hint)}", err=True)
        raise typer.Exit(1) from None
    yes = {True: "yes", False: "no"}
    typer.echo(f"tenant   {url} (profile {state.tenant.profile})")
    typer.echo(f"users    {users}")
    typer.echo(f"groups   {groups}")
    typer.echo(
        f"patch {yes[caps.patch]} · bulk {yes[caps.bulk]}"
        + (f" (max {caps.bulk_max_operations} ops)" if caps.bulk else "")
        + f" · filter {yes[caps.filter]}"
        + (f" (maxResults {caps.max_results})" if caps.max_results else "")
        + f" · sort {yes[caps.sort]} · etag {yes[caps.etag]} · pagination {caps.pagination}"
    )
    typer.echo(
        f"auth {visible(', '.join(caps.auth_schemes)) or 'not described'} · client rate limit "
        + (f"{rate:g} requests/s" if rate else "none (in process)")
    )
    typer.echo(
        f"groups can be created {yes[caps.can_create_groups]} · deleted "
        f"{yes[caps.can_delete_groups]} · users can be deleted {yes[caps.can_delete_users]}"
    )
    for w in warnings:
        typer.echo(f"warning: {visible(w)}")
    missing = []
    for a in state.attributes:
        if a.scim.schema_ == CORE_USER:
            continue
        names = {n.casefold() for n in caps.extension_schemas.get(a.scim.schema_, ())}
        ok = a.scim_path.casefold() in names
        typer.echo(f"{'ok     ' if ok else 'MISSING'}  {a.name} ({a.scim.schema_}:{a.scim_path})")
        if not ok:
            missing.append(a.name)
    if missing:
        typer.echo(
            f"error: the tenant does not declare {', '.join(missing)}; declare the schema in the "
            "tenant (embedded: reconciler tenant init --schema-from DIR) or fix attributes.yaml",
            err=True,
        )
        raise typer.Exit(1)
