"""Per-tenant settings, stored in the tenant's database: constraints real tenants impose."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ACCESS_EXTENSION = "urn:ietf:params:scim:schemas:extension:reconciler:2.0:User"


class ExtensionAttribute(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    type: Literal["string", "boolean", "integer", "decimal", "dateTime", "reference"] = "string"
    multi_valued: bool = False
    case_exact: bool = False


class Extension(BaseModel):
    """A custom user extension schema the tenant declares in /Schemas and accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    urn: str
    name: str = ""
    attributes: tuple[ExtensionAttribute, ...] = ()


# Where compiled rule grants land (userGroup, deviceGroups, settingsTemplate, role).
ACCESS = Extension(
    urn=ACCESS_EXTENSION,
    name="Access",
    attributes=(
        ExtensionAttribute(name="role"),
        ExtensionAttribute(name="userGroup"),
        ExtensionAttribute(name="deviceGroups", multi_valued=True),
        ExtensionAttribute(name="settingsTemplate"),
    ),
)


class TenantSettings(BaseModel):
    """What makes this tenant behave like a particular vendor's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: Literal["generic", "goto", "genesys"] = "generic"
    # Product (a user's ``entitlements`` value) -> seats; counted over active users.
    licences: dict[str, int] = Field(default_factory=dict)
    # A user whose email domain is not listed is refused (GoTo). Empty: any domain.
    verified_domains: tuple[str, ...] = ()
    # Groups may be updated but not created or deleted (Genesys).
    groups_immutable: bool = False
    # GET /Users without a filter lists only active users (Genesys).
    active_only_listing: bool = False
    extensions: tuple[Extension, ...] = ()

    @property
    def all_extensions(self) -> tuple[Extension, ...]:
        known = {e.urn for e in self.extensions}
        return self.extensions + (() if ACCESS.urn in known else (ACCESS,))
