"""The SCIM 2.0 client: discovery, reading a whole tenant, and writes."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from reconciler.desired.models import Auth, Profile
from reconciler.errors import TenantError
from reconciler.scim.auth import Credentials
from reconciler.scim.client import ScimClient
from reconciler.scim.profiles import facts
from reconciler.scim.read import read_live
from reconciler.urls import has_credentials, has_query, local_db

__all__ = [
    "ScimClient",
    "existing_local_tenant",
    "has_credentials",
    "has_query",
    "open_client",
    "read_live",
]

TIMEOUT = httpx.Timeout(30.0, connect=10.0)


CREATE_HINT = (
    "fix the path (tenant.yaml's url, or --tenant), or create the tenant: `reconciler tenant "
    "init --for DIR` (empty, fitting DIR's desired state), or `reconciler demo` (DIR "
    "provisioned into it, then the demo's own out-of-band changes)"
)


def existing_local_tenant(url: str) -> Path:
    """The database of a ``local:<path>`` URL, which must exist: a mistyped path would
    otherwise open a new, empty tenant, and the plan would create everything."""
    db = local_db(url)
    if db.is_dir():
        raise TenantError(f"{db} is a directory, not an embedded tenant ({url})", CREATE_HINT)
    if not db.is_file():
        raise TenantError(f"there is no embedded tenant at {db} ({url})", CREATE_HINT)
    try:
        with db.open("rb") as f:
            header = f.read(16)
    except OSError as exc:
        raise TenantError(f"cannot read the embedded tenant {db}: {exc.strerror}") from None
    if header != b"SQLite format 3\x00":
        what = "an empty file" if not header else "not a SQLite database"
        raise TenantError(f"{db} is {what}, not an embedded tenant ({url})", CREATE_HINT)
    return db


@asynccontextmanager
async def open_client(
    url: str,
    *,
    auth: Auth | None = None,
    profile: Profile = Profile.generic,
    rate_limit: float | None = None,
    env: Mapping[str, str] = os.environ,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[ScimClient]:
    """A client for ``url``: an http(s) SCIM base URL, or ``local:<path>`` for the embedded
    tenant served in process (no socket, no server to start), which must exist already."""
    if has_credentials(url):
        raise TenantError(
            "the tenant URL carries credentials (user:password@); they are not shown here",
            "remove them from the URL and use auth: with token_env or client_secret_env",
        )
    if has_query(url):
        raise TenantError(
            "the tenant URL has a query string, fragment or ;parameters; it is not shown here",
            "write the SCIM base URL alone (e.g. https://host/scim/v2); a token goes in auth: "
            "with token_env",
        )
    if not url.startswith("local:"):
        try:
            httpx.URL(url)
        except httpx.InvalidURL:
            raise TenantError(
                "the tenant URL cannot be read (its host or port); it is not shown here",
                "write https://host[:port]/path, an IPv6 host in brackets: https://[::1]:8443/v2",
            ) from None
    auth = auth or Auth()
    f = facts(profile)
    base = url.rstrip("/") + "/"
    if url.startswith("local:"):
        from reconciler.tenant.app import SCIM_PREFIX, build_app

        db = existing_local_tenant(url)
        transport = httpx.ASGITransport(app=build_app(db))  # type: ignore[arg-type]
        base = f"http://embedded-tenant{SCIM_PREFIX}/"
        rate = rate_limit or 0.0  # in process: nothing to protect
    else:
        rate = rate_limit or f.rate_limit
    limits = httpx.Limits(max_connections=max(8, f.concurrency * 2))
    async with httpx.AsyncClient(
        base_url=base, transport=transport, timeout=TIMEOUT, limits=limits
    ) as http:
        yield ScimClient(
            http, facts=f, credentials=Credentials(auth, env), rate_limit=rate, url=url
        )
