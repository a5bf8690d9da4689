"""scim2-server's in-memory storage, written through to SQLite, with real tenants' constraints.

The in-memory copy serves reads, filters, paging and uniqueness (scim2-server's code); every
write is committed to SQLite before it is acknowledged, and the copy is rebuilt from SQLite at
start. On top, what real tenants impose: group members must exist; a deleted user leaves its
groups; optional licence capacity (GoTo: "out of licenses"), verified email domains (GoTo),
groups that may only be updated (Genesys), and listings of active users only (Genesys).
"""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path
from typing import Any, cast

from scim2_models import (
    ForbiddenException,
    InvalidValueException,
    Resource,
    ResourceType,
    ScimFilter,
    ScimProvider,
)
from scim2_server.memory import InMemoryStorage

from reconciler.tenant.settings import TenantSettings
from reconciler.tenant.store import Store

USER, GROUP = "User", "Group"


def _dump(resource: Resource[Any]) -> dict[str, Any]:
    result: dict[str, Any] = resource.model_dump(mode="json")
    return result


def _products(resource: Resource[Any]) -> set[str]:
    """The products a user holds a seat of: its entitlements, while it is active."""
    if getattr(resource, "active", None) is False:
        return set()
    return {str(e.value) for e in (getattr(resource, "entitlements", None) or []) if e.value}


def _version_number(resource: Resource[Any]) -> int:
    version = resource.meta.version if resource.meta else None
    digits = "".join(ch for ch in str(version or "") if ch.isdigit())
    return int(digits) if digits else 0


def _domains(resource: Resource[Any]) -> set[str]:
    values = [str(e.value) for e in (getattr(resource, "emails", None) or []) if e.value]
    return {v.rsplit("@", 1)[1].lower() for v in values if "@" in v}


class PersistentStorage(InMemoryStorage):
    """An :class:`InMemoryStorage` whose writes are committed to a SQLite :class:`Store`."""

    def __init__(self, db: Path, provider: ScimProvider, settings: TenantSettings) -> None:
        super().__init__()
        self.settings = settings
        self.store = Store(db)
        models = {rt.name: provider.model_for(rt) for rt in provider.resource_types}
        self.group_type = next(rt for rt in provider.resource_types if rt.name == GROUP)
        loaded = []
        for type_, body in self.store.rows():
            model = models.get(type_)
            if model is not None:
                loaded.append(cast(Resource[Any], model.model_validate(body)))
        self.resources = loaded
        # Versions must never repeat across restarts, or a stale ETag could match again.
        top = max((_version_number(r) for r in loaded), default=0)
        self.versions = itertools.count(top + 1)
        self.seats: Counter[str] = Counter()
        for r in self._resources.get(USER, {}).values():
            self.seats.update(_products(r))

    # -- constraints ----------------------------------------------------------------------

    def _check_user(self, resource: Resource[Any], previous: Resource[Any] | None) -> None:
        verified = self.settings.verified_domains
        if verified:
            bad = sorted(d for d in _domains(resource) if d not in verified)
            if bad:
                raise InvalidValueException(
                    detail=f"domain not verified: {bad[0]} (verified: {', '.join(verified)})"
                )
        if self.settings.licences:
            new = _products(resource) - (_products(previous) if previous else set())
            for product in sorted(new):
                cap = self.settings.licences.get(product)
                if cap is not None and self.seats[product] >= cap:
                    raise InvalidValueException(
                        detail=f"out of licenses: {product} ({self.seats[product]} of {cap} in use)"
                    )

    def _check_members(self, resource: Resource[Any]) -> None:
        users = self._resources.get(USER, {})
        groups = self._resources.get(GROUP, {})
        for m in getattr(resource, "members", None) or []:
            if m.value not in users and m.value not in groups:
                raise InvalidValueException(
                    detail=f"member {m.value!r} does not exist; add the user before the member"
                )

    def _count(self, before: Resource[Any] | None, after: Resource[Any] | None) -> None:
        if before is not None:
            self.seats.subtract(_products(before))
        if after is not None:
            self.seats.update(_products(after))

    # -- writes ---------------------------------------------------------------------------

    def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        with self.lock:
            if resource_type.name == GROUP:
                if self.settings.groups_immutable:
                    raise ForbiddenException(
                        detail="groups cannot be created in this tenant; they must already "
                        "exist with the identity provider's name"
                    )
                self._check_members(resource)
            if resource_type.name == USER:
                self._check_user(resource, None)
            created = super().create(resource_type, resource)
            self.store.put(str(resource_type.name), cast(str, created.id), _dump(created))
            if resource_type.name == USER:
                self._count(None, created)
            return created

    def update(
        self,
        resource_type: ResourceType,
        resource: Resource[Any],
        *,
        expected_version: str | None = None,
    ) -> Resource[Any]:
        with self.lock:
            previous = self._stored(resource_type, resource.id)
            if resource_type.name == GROUP:
                self._check_members(resource)
            if resource_type.name == USER:
                self._check_user(resource, previous)
            updated = super().update(resource_type, resource, expected_version=expected_version)
            self.store.put(str(resource_type.name), cast(str, updated.id), _dump(updated))
            if resource_type.name == USER:
                self._count(previous, updated)
            return updated

    def delete(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        expected_version: str | None = None,
    ) -> None:
        with self.lock:
            if resource_type.name == GROUP and self.settings.groups_immutable:
                raise ForbiddenException(detail="groups cannot be deleted in this tenant")
            previous = self._stored(resource_type, resource_id)
            super().delete(resource_type, resource_id, expected_version=expected_version)
            self.store.delete(str(resource_type.name), resource_id)
            if resource_type.name == USER:
                self._count(previous, None)
                self._leave_groups(resource_id)

    def _leave_groups(self, user_id: str) -> None:
        """A deleted user leaves every group, each group getting a new version."""
        for group in list(self._resources.get(GROUP, {}).values()):
            members = getattr(group, "members", None) or []
            if any(m.value == user_id for m in members):
                kept = [m for m in members if m.value != user_id]
                changed = group.model_copy(update={"members": kept or None})
                stored = super().update(self.group_type, changed)
                self.store.put(GROUP, cast(str, stored.id), _dump(stored))

    # -- reads ----------------------------------------------------------------------------

    def _candidates(
        self, names: list[str | None], scim_filter: ScimFilter[Any] | None
    ) -> list[Resource[Any]]:
        found = super()._candidates(names, scim_filter)
        if self.settings.active_only_listing and scim_filter is None and names == [USER]:
            # Genesys lists only active users unless asked with `active eq false`.
            return [r for r in found if getattr(r, "active", True) is not False]
        return found
