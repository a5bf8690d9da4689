"""Discovery: /ServiceProviderConfig and /Schemas → :class:`~reconciler.live.Capabilities`."""

from __future__ import annotations

from typing import Any

from reconciler.errors import TenantError
from reconciler.live import Capabilities
from reconciler.scim.client import ScimClient

CORE = (
    "urn:ietf:params:scim:schemas:core:2.0:User",
    "urn:ietf:params:scim:schemas:core:2.0:Group",
)


def _supported(config: dict[str, Any], key: str) -> bool:
    part = config.get(key)
    return bool(isinstance(part, dict) and str(part.get("supported")).lower() == "true")


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
        body = r.json()
        items = body.get("Resources", []) if isinstance(body, dict) else body
        for schema in items if isinstance(items, list) else []:
            if isinstance(schema, dict) and schema.get("id") not in CORE:
                names = tuple(
                    str(a.get("name")) for a in schema.get("attributes") or [] if a.get("name")
                )
                extensions[str(schema.get("id"))] = names
    except (TenantError, ValueError):
        client.warnings.append("the tenant did not list /Schemas; custom attributes unchecked")
    bulk = config.get("bulk") if isinstance(config.get("bulk"), dict) else {}
    filt = config.get("filter") if isinstance(config.get("filter"), dict) else {}
    max_results = filt.get("maxResults") if isinstance(filt, dict) else None
    pagination = config.get("pagination") if isinstance(config.get("pagination"), dict) else {}
    f = client.facts
    caps = Capabilities(
        patch=_supported(config, "patch"),
        bulk=_supported(config, "bulk"),
        bulk_max_operations=int(str((bulk or {}).get("maxOperations") or 0)),
        bulk_max_payload=int(str((bulk or {}).get("maxPayloadSize") or 0)),
        filter=_supported(config, "filter"),
        max_results=int(str(max_results)) if str(max_results).isdigit() else None,
        sort=_supported(config, "sort"),
        etag=_supported(config, "etag"),
        change_password=_supported(config, "changePassword"),
        pagination="cursor" if (pagination or {}).get("cursor") else "index",
        auth_schemes=tuple(
            str(s.get("type")) for s in config.get("authenticationSchemes") or [] if s
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
