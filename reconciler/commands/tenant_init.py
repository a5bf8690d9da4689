"""``reconciler tenant init``: create a tenant database with a vendor's constraints."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import typer

from reconciler.desired.loader import load
from reconciler.desired.models import CORE_USER, ENTERPRISE_USER
from reconciler.desired.state import DesiredState
from reconciler.errors import UsageError
from reconciler.plan.run import InvalidState, tenant_url
from reconciler.tenant.settings import Extension, ExtensionAttribute, TenantSettings
from reconciler.tenant.store import init_tenant, load_settings
from reconciler.urls import local_db


def _state(directory: Path, option: str) -> DesiredState:
    result = load(directory)
    if result.state is None:
        # Printed with each problem; no tenant is written.
        raise InvalidState(
            result.diagnostics,
            f"the desired state in {directory} ({option}) does not validate; no tenant was written",
        )
    return result.state


def extensions_from(directory: Path) -> tuple[Extension, ...]:
    """The custom extension schemas a desired state's attributes.yaml declares."""
    return extensions_of(_state(directory, "--schema-from"))


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


def fitting(state: DesiredState, licences: dict[str, int] | None = None) -> TenantSettings:
    """An embedded tenant's settings to fit a desired state: its profile's constraints, its
    verified domains, and the custom extension schemas it declares (a real tenant has these
    already; the embedded one learns them at its creation)."""
    profile = str(state.tenant.profile)
    return TenantSettings(
        profile=profile,
        licences=licences or {},
        verified_domains=tuple(d.lower() for d in state.tenant.verified_domains),
        groups_immutable=profile == "genesys",
        active_only_listing=profile == "genesys",
        extensions=extensions_of(state),
    )


_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")


def _write(db: Path, settings: TenantSettings) -> None:
    """Store ``settings`` in ``db`` and say so; settings it had before and loses are named
    (re-running init replaces them, licences included)."""
    before = None
    if db.is_file() and db.stat().st_size:
        try:
            before = load_settings(db).model_dump(mode="json")
        except (sqlite3.Error, ValueError):
            before = None
    init_tenant(db, settings)
    typer.echo(f"tenant {db}: {settings.model_dump_json()}")
    after = settings.model_dump(mode="json")
    changed = [
        f"{k} {json.dumps(before[k])} → {json.dumps(after[k])}"
        for k in after
        if before and before[k] != after[k]
    ]
    if changed:
        typer.echo(f"note: replaced what {db} had before: " + "; ".join(changed))


def _init_for(directory: Path, licences: dict[str, int], profile: str | None) -> None:
    state = _state(directory, "--for")
    url = tenant_url(state, None)
    if not url.startswith("local:"):
        raise UsageError(
            f"the desired state in {directory} names {url}, not an embedded tenant",
            "--for creates the embedded tenant that tenant.yaml's url: local:PATH names; a "
            "real tenant is created at its vendor",
        )
    wanted = str(state.tenant.profile)
    if profile is not None and profile != wanted:
        # A tenant of another profile than the desired state's would plan and apply by other
        # rules than the vendor's (page sizes, what may be deleted, which users are listed).
        raise UsageError(
            f"--profile {profile} contradicts {directory}/tenant.yaml, which says "
            f"profile: {wanted}; no tenant was written",
            f"leave --profile out (--for takes tenant.yaml's profile, {wanted}), or change "
            f"profile: in tenant.yaml deliberately",
        )
    db = local_db(url)
    db.parent.mkdir(parents=True, exist_ok=True)
    settings = fitting(state, licences)
    _write(db, settings)


def run(
    db: Path | None = typer.Option(None, "--db", help="The tenant's SQLite database."),
    for_: Path | None = typer.Option(
        None,
        "--for",
        help="The embedded tenant DIR's tenant.yaml names (url: local:PATH), with its profile, "
        "verified domains and custom schemas; takes only --licence besides (and a --profile "
        "that agrees with tenant.yaml's).",
    ),
    # No default here: with --for, an explicit --profile must agree with tenant.yaml's, and
    # a default could not be told from a value given on purpose.
    profile: str | None = typer.Option(
        None,
        "--profile",
        help="generic (the default), goto or genesys; with --for, tenant.yaml's profile, "
        "which --profile may only repeat.",
    ),
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
    goto (verified domains, licences), genesys (groups immutable, active-only listing).

    `reconciler tenant init --for desired-state` creates the embedded tenant that plan and
    apply use when tenant.yaml's url is local:PATH (they never create one: a mistyped path
    must not look like an empty tenant).
    """
    if for_ is not None and (
        db is not None
        or verified_domain
        or groups_immutable
        or active_only_listing
        or schema_from is not None
    ):
        raise UsageError(
            "--for takes the database, profile, verified domains and schemas from the desired "
            "state; it cannot be combined with --db, --verified-domain, --groups-immutable, "
            "--active-only-listing or --schema-from",
            "use --for DIR (with --licence if needed), or --db PATH with the other options",
        )
    if for_ is None and db is None:
        raise UsageError(
            "tenant init needs --db PATH or --for DIR",
            "e.g. reconciler tenant init --for desired-state",
        )
    if profile is not None and profile not in ("generic", "goto", "genesys"):
        raise UsageError(f"unknown profile {profile!r}", "use generic, goto or genesys")
    licences: dict[str, int] = {}
    for item in licence:
        product, _, seats = item.rpartition("=")
        if not product or not seats.isdigit():
            raise UsageError(
                f"--licence {item!r} is not PRODUCT=SEATS", "write e.g. --licence 'GoTo Meeting=50'"
            )
        if product in licences:
            raise UsageError(
                f"--licence {product!r} is given twice ({licences[product]} and {seats} seats)",
                "give each product once",
            )
        licences[product] = int(seats)
    for domain in verified_domain:
        if not _DOMAIN.match(domain.strip().lower()):
            raise UsageError(
                f"--verified-domain {domain!r} is not a domain name",
                "write e.g. --verified-domain acme.example (repeat it for more)",
            )
    if for_ is not None:
        _init_for(for_, licences, profile)
        return
    assert db is not None
    profile = profile or "generic"
    settings = TenantSettings(
        profile=profile,
        licences=licences,
        verified_domains=tuple(d.strip().lower() for d in verified_domain),
        groups_immutable=groups_immutable or profile == "genesys",
        active_only_listing=active_only_listing or profile == "genesys",
        extensions=extensions_from(schema_from) if schema_from else (),
    )
    _write(db, settings)
