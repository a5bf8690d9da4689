"""The tenant's self-description: schemas, resource types and service provider config."""

from __future__ import annotations

from typing import Any

from scim2_models import (
    AuthenticationScheme,
    ResourceType,
    Schema,
    ScimProvider,
    ServiceProviderConfig,
)
from scim2_server.utils import (
    load_default_resource_types,
    load_default_schemas,
    load_default_service_provider_config,
)

from reconciler.tenant.settings import Extension, TenantSettings


def _schema(ext: Extension) -> Schema:
    return Schema.model_validate(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": ext.urn,
            "name": ext.name or ext.urn.rsplit(":", 2)[-2],
            "description": "Custom user extension declared by the reconciler's desired state",
            "attributes": [
                {
                    "name": a.name,
                    "type": a.type,
                    "multiValued": a.multi_valued,
                    "required": False,
                    "caseExact": a.case_exact,
                    "mutability": "readWrite",
                    "returned": "default",
                    "uniqueness": "none",
                }
                for a in ext.attributes
            ],
        }
    )


BEARER = AuthenticationScheme(
    type="oauthbearertoken",
    name="OAuth Bearer Token",
    description="Authorization: Bearer <token>, the token given to `reconciler tenant serve`",
    spec_uri="https://www.rfc-editor.org/rfc/rfc6750",
    primary=True,
)


def build_provider(settings: TenantSettings, *, token_required: bool = False) -> ScimProvider:
    """The tenant's self-description. With ``token_required``, /ServiceProviderConfig
    announces the bearer token scheme (RFC 7643 §5), as a real tenant does."""
    schemas = dict(load_default_schemas())
    for ext in settings.all_extensions:
        schemas[ext.urn] = _schema(ext)
    types = dict(load_default_resource_types())
    user: dict[str, Any] = types["User"].model_dump(by_alias=True, exclude_none=True)
    declared = {e["schema"] for e in user.get("schemaExtensions", [])}
    for ext in settings.all_extensions:
        if ext.urn not in declared:
            user.setdefault("schemaExtensions", []).append({"schema": ext.urn, "required": False})
    types["User"] = ResourceType.model_validate(user)
    config: ServiceProviderConfig = load_default_service_provider_config()
    if token_required:
        config = config.model_copy(update={"authentication_schemes": [BEARER]})
    return ScimProvider.from_discovery(schemas.values(), types.values(), config=config)
