"""Discovery: /ServiceProviderConfig and /Schemas → :class:`~reconciler.live.Capabilities`.

Tenants describe themselves loosely (booleans as strings, counts as "1,000", missing parts),
so every value is read defensively: what cannot be read counts as not offered.
"""

from __future__ import annotations

import re
from typing import Any

from reconciler.errors import TenantError
from reconciler.live import Capabilities
from reconciler.scim.client import ScimClient

CORE = (
    "urn:ietf:params:scim:schemas:core:2.0:User",
    "urn:ietf:params:scim:schemas:core:2.0:Group",
)


def _part(config: dict[str, Any], key: str) -> dict[str, Any]:
    part = config.get(key)
    return part if isinstance(part, dict) else {}


def _true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _supported(config: dict[str, Any], key: str) -> bool:
    return _true(_part(config, key).get("supported"))


def _int(value: Any) -> int | None:
    """A positive count: 1000, "1000", "1,000"; None when absent or unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and re.fullmatch(r"\s*\d[\d,_ ]*\s*", value):
        number = int(re.sub(r"[,_ ]", "", value))
        return number if number > 0 else None
    return None


def _extensions(body: Any) -> dict[str, tuple[str, ...]]:
    items = body.get("Resources", []) if isinstance(body, dict) else body
    found: dict[str, tuple[str, ...]] = {}
    for schema in items if isinstance(items, list) else []:
        if not isinstance(schema, dict) or schema.get("id") in CORE or not schema.get("id"):
            continue
        attributes = schema.get("attributes")
        found[str(schema["id"])] = tuple(
            str(a["name"])
            for a in (attributes if isinstance(attributes, list) else [])
            if isinstance(a, dict) and a.get("name")
        )
    return found


async def discover(client: ScimClient) -> Capabilities:
    """What the tenant says it can do, merged with the profile's facts. A tenant without
    /ServiceProviderConfig is assumed to offer the SCIM basics (PATCH, filter)."""
    try:
        r = await client.request("GET", "ServiceProviderConfig")
        config = client._json("GET", "ServiceProviderConfig", r)
    except TenantError as exc:
        if getattr(exc, "status", 0) != 404:
            raise
        config = {"patch": {"supported": True}, "filter": {"supported": True}}
    extensions: dict[str, tuple[str, ...]] = {}
    try:
        r = await client.request("GET", "Schemas")
        extensions = _extensions(r.json())
    except (TenantError, ValueError):
        client.warnings.append("the tenant did not list /Schemas; custom attributes unchecked")
    bulk, pagination = _part(config, "bulk"), _part(config, "pagination")
    # RFC 9865: index paging unless the tenant says it pages by cursor only.
    by_cursor = _true(pagination.get("cursor")) and not _true(pagination.get("index", True))
    schemes = config.get("authenticationSchemes")
    f = client.facts
    caps = Capabilities(
        patch=_supported(config, "patch"),
        bulk=_supported(config, "bulk"),
        bulk_max_operations=_int(bulk.get("maxOperations")) or 0,
        bulk_max_payload=_int(bulk.get("maxPayloadSize")) or 0,
        filter=_supported(config, "filter"),
        max_results=_int(_part(config, "filter").get("maxResults")),
        max_page_size=_int(pagination.get("maxPageSize")),
        sort=_supported(config, "sort"),
        etag=_supported(config, "etag"),
        change_password=_supported(config, "changePassword"),
        pagination="cursor" if by_cursor else "index",
        auth_schemes=tuple(
            str(s.get("type"))
            for s in (schemes if isinstance(schemes, list) else [])
            if isinstance(s, dict) and s.get("type")
        ),
        extension_schemas=extensions,
        can_create_groups=f.can_create_groups,
        can_delete_groups=f.can_delete_groups,
        can_delete_users=f.can_delete_users,
        member_chunk=f.member_chunk,
    )
    client.etag = caps.etag
    client.patch_supported = caps.patch
    return caps
