"""The live tenant as plain data: what the SCIM client reads and the plan core compares.

Resources stay SCIM JSON (``dict``) as the tenant sent them, minus nothing: the plan core
normalises before comparing. Keeping them as dicts keeps a 100,000-user tenant lean.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Capabilities:
    """What the tenant can do: from discovery (/ServiceProviderConfig, /Schemas) and profile."""

    patch: bool = True
    bulk: bool = False
    bulk_max_operations: int = 0
    bulk_max_payload: int = 0
    filter: bool = True
    max_results: int | None = None  # filter.maxResults: the most resources one page holds
    max_page_size: int | None = None  # pagination.maxPageSize (RFC 9865), when declared
    sort: bool = False
    etag: bool = False
    change_password: bool = False
    pagination: str = "index"  # "index" (startIndex/count) or "cursor" (RFC 9865 only)
    auth_schemes: tuple[str, ...] = ()
    # Extension schema URN -> attribute names it declares (lower-case names compare).
    extension_schemas: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # From the profile: some tenants (Genesys) may only update groups.
    can_create_groups: bool = True
    can_delete_groups: bool = True
    # From the profile: GoTo never deletes users by sync (suspend only).
    can_delete_users: bool = True
    member_chunk: int = 1000


@dataclass(frozen=True)
class LiveState:
    """Every user and group of the tenant, as SCIM JSON resources.

    Groups carry ``members`` as ``[{"value": <user id>, ...}]``; users may carry ``groups``.
    Each resource keeps its ``id`` and ``meta`` (``meta.version`` is the ETag apply checks).
    """

    url: str
    users: tuple[dict[str, Any], ...]
    groups: tuple[dict[str, Any], ...]
    capabilities: Capabilities = Capabilities()
    # What the read had to work around, for people: records skipped (with their id and why),
    # records listed twice, a tenant without /Schemas. The plan shows them as warnings.
    warnings: tuple[str, ...] = ()

    def __repr__(self) -> str:
        # Counts, not 100,000 resources: a repr may be formatted where nobody reads it.
        return (
            f"LiveState(url={self.url!r}, {len(self.users)} users, {len(self.groups)} groups, "
            f"{len(self.warnings)} warnings)"
        )
