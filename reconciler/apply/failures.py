"""Failure classes, GoTo User Sync style: one cause, the objects it affected listed under it."""

from __future__ import annotations

from enum import StrEnum

from reconciler.errors import TenantAuthError, TenantError, TenantProtocolError, TenantRequestError


class Cause(StrEnum):
    existing_account = "existing_account"
    licence_exhausted = "licence_exhausted"
    domain_not_verified = "domain_not_verified"
    rejected = "rejected"
    rate_limited = "rate_limited"
    authentication = "authentication"
    server_error = "server_error"
    network = "network"
    stale = "stale"
    dependency = "dependency"
    stopped = "stopped"


# What the changes of each cause did: (said of one change, said of several).
TITLES = {
    Cause.existing_account: (
        "has an existing account (uniqueness conflict)",
        "have existing accounts (uniqueness conflict)",
    ),
    Cause.licence_exhausted: ("could not get a licence (out of licenses)",) * 2,
    Cause.domain_not_verified: (
        "uses an email domain the tenant has not verified",
        "use an email domain the tenant has not verified",
    ),
    Cause.rejected: ("was rejected by the tenant", "were rejected by the tenant"),
    Cause.rate_limited: ("was rate limited", "were rate limited"),
    Cause.authentication: ("failed authentication",) * 2,
    Cause.server_error: ("hit a server error",) * 2,
    Cause.network: ("could not reach the tenant",) * 2,
    Cause.stale: ("changed in the tenant since the plan (stale)",) * 2,
    Cause.dependency: (
        "was skipped because something it depends on failed",
        "were skipped because something they depend on failed",
    ),
    Cause.stopped: (
        "was skipped because apply stopped early",
        "were skipped because apply stopped early",
    ),
}
# Causes that say the tenant or our access is broken, not one object: they trip the breaker.
SYSTEMIC = {Cause.authentication, Cause.server_error, Cause.network, Cause.rate_limited}


def classify(exc: Exception) -> tuple[Cause, str]:
    """The cause of a failed write and a one-line detail (never a secret)."""
    if isinstance(exc, TenantAuthError):
        return Cause.authentication, str(exc)
    if isinstance(exc, TenantRequestError):
        detail = exc.detail or str(exc)
        low = detail.lower()
        if exc.status in (401, 403) and not exc.scim_type:
            return Cause.authentication, detail
        if exc.status == 412 or exc.scim_type == "invalidVers":
            return Cause.stale, detail
        if exc.status == 429:
            return Cause.rate_limited, detail
        if exc.status >= 500:
            return Cause.server_error, f"HTTP {exc.status}: {detail}"
        if "licen" in low:
            return Cause.licence_exhausted, detail
        if "domain" in low:
            return Cause.domain_not_verified, detail
        if exc.status == 409 or exc.scim_type == "uniqueness":
            return Cause.existing_account, detail
        return Cause.rejected, f"HTTP {exc.status} {exc.scim_type}: {detail}".replace("  ", " ")
    if isinstance(exc, TenantProtocolError):
        return Cause.rejected, str(exc)
    if isinstance(exc, TenantError):
        return Cause.network, str(exc)
    return Cause.network, f"{type(exc).__name__}: {exc}"
