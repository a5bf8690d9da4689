"""``reconciler tenant init``: create a tenant database with a vendor's constraints."""

from __future__ import annotations

from pathlib import Path

import typer

from reconciler.desired.loader import load
from reconciler.desired.models import CORE_USER, ENTERPRISE_USER
from reconciler.desired.state import DesiredState
from reconciler.errors import UsageError
from reconciler.plan.run import InvalidState
from reconciler.tenant.settings import Extension, ExtensionAttribute, TenantSettings
from reconciler.tenant.store import init_tenant


def extensions_from(directory: Path) -> tuple[Extension, ...]:
    """The custom extension schemas a desired state's attributes.yaml declares."""
    result = load(directory)
    if result.state is None:
        # Printed with each problem; no tenant is written.
        raise InvalidState(
            result.diagnostics,
            f"the desired state in {directory} (--schema-from) does not validate; "
            "no tenant was written",
        )
    return extensions_of(result.state)


def extensions_of(state: DesiredState) -> tuple[Extension, ...]:
    by_urn: dict[str, list[ExtensionAttribute]] = {}
    for a in state.attributes:
        if a.scim.schema_ in (ENTERPRISE_USER, CORE_USER):
            continue
        by_urn.setdefault(a.scim.schema_, []).append(
            ExtensionAttribute(
                name=a.scim_path,
                type=str(a.type),
                multi_valued=a.multi_valued,
                case_exact=a.case_exact,
            )
        )
    return tuple(Extension(urn=u, attributes=tuple(attrs)) for u, attrs in by_urn.items())


def run(
    db: Path = typer.Option(..., "--db", help="The tenant's SQLite database."),
    profile: str = typer.Option("generic", "--profile", help="generic, goto or genesys."),
    licence: list[str] = typer.Option(
        [], "--licence", help="PRODUCT=SEATS, repeatable: writes past capacity fail."
    ),
    verified_domain: list[str] = typer.Option(
        [], "--verified-domain", help="Repeatable: users outside these domains are refused."
    ),
    groups_immutable: bool = typer.Option(
        False, "--groups-immutable", help="Groups may be updated, not created or deleted."
    ),
    active_only_listing: bool = typer.Option(
        False, "--active-only-listing", help="GET /Users lists active users unless filtered."
    ),
    schema_from: Path | None = typer.Option(
        None, "--schema-from", help="Declare the custom extension attributes of this state."
    ),
) -> None:
    """Create (or reconfigure) a tenant database. Profiles set the vendor's constraints:
    goto (verified domains, licences), genesys (groups immutable, active-only listing)."""
    if profile not in ("generic", "goto", "genesys"):
        raise UsageError(f"unknown profile {profile!r}", "use generic, goto or genesys")
    licences: dict[str, int] = {}
    for item in licence:
        product, _, seats = item.rpartition("=")
        if not product or not seats.isdigit():
            raise UsageError(
                f"--licence {item!r} is not PRODUCT=SEATS", "write e.g. --licence 'GoTo Meeting=50'"
            )
        licences[product] = int(seats)
    settings = TenantSettings(
        profile=profile,
        licences=licences,
        verified_domains=tuple(d.lower() for d in verified_domain),
        groups_immutable=groups_immutable or profile == "genesys",
        active_only_listing=active_only_listing or profile == "genesys",
        extensions=extensions_from(schema_from) if schema_from else (),
    )
    init_tenant(db, settings)
    typer.echo(f"tenant {db}: {settings.model_dump_json()}")
