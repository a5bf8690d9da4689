"""scim2-server's in-memory storage, written through to SQLite, with real tenants' constraints.

The in-memory copy serves reads, filters, paging and uniqueness (scim2-server's code); every
write is committed to SQLite before it is acknowledged, and the copy is rebuilt from SQLite at
start. On top, what real tenants impose: group members must exist; a deleted user leaves its
groups; optional licence capacity (GoTo: "out of licenses"), verified email domains (GoTo),
groups that may only be updated (Genesys), and listings of active users only (Genesys).

Listing a large tenant is fast: scim2-server sorts every resource of a type on each search
(fine for its demos, ten minutes of CPU to page through 100,000 users), so a search without a
filter pages a sorted order kept per (types, sortBy, sortOrder) and dropped on any write. Its
pages and cursors are those scim2-server's ``_page`` gives; ``ScimStorageContract`` checks it.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from pydantic import ValidationError
from scim2_models import (
    AttributeBinding,
    Extension,
    ForbiddenException,
    InvalidValueException,
    Resource,
    ResourceType,
    ScimFilter,
    ScimProvider,
    SearchRequest,
    Uniqueness,
)
from scim2_models import (
    Path as ScimPath,
)
from scim2_server.memory import InMemoryStorage, Key, SortKey, _bounds, _position, _sort_key
from scim2_server.storage import SearchPage
from scim2_server.utils import parametrize

from reconciler.errors import ReconcilerError
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


def _hashable(value: Any) -> Any:
    """scim2-server's ``_hashable``: lists and models are held by their representation."""
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


@dataclass
class _Order:
    """The resources of an unfiltered search, sorted as scim2-server's ``_page`` sorts them."""

    keys: list[SortKey]
    resources: list[Resource[Any]]
    descending: bool

    def page(self, search_request: SearchRequest[Any], position: Any) -> SearchPage:
        """The page ``_page`` would give for these resources; the same code from its sort on."""
        found, total = self.resources, len(self.resources)
        if search_request.cursor is None:
            start = search_request.start_index_0 or 0
            stop = None if search_request.count is None else start + search_request.count
            return SearchPage(total, found[start:stop])
        if search_request.count == 0:
            return SearchPage(total, [])
        start, end = _bounds(self.keys, position, search_request.count, self.descending)
        page = SearchPage(total, found[start:end])
        if page.resources and end < total:
            page.next = _position("next", self.keys[end - 1])
        if page.resources and start > 0:
            page.previous = _position("previous", self.keys[start])
        return page


class PersistentStorage(InMemoryStorage):
    """An :class:`InMemoryStorage` whose writes are committed to a SQLite :class:`Store`."""

    def __init__(self, db: Path, provider: ScimProvider, settings: TenantSettings) -> None:
        # Sorted orders of unfiltered searches; any write drops them all (see _store, _remove).
        self._orders: dict[tuple[tuple[str | None, ...], str | None, bool], _Order] = {}
        # The unique attributes of each model, resolved once rather than per resource.
        self._unique: dict[type[Resource[Any]], list[AttributeBinding]] = {}
        # Encoded responses per resource, kept by the tenant's service (TenantService) and
        # dropped here when the resource changes or goes.
        self.encoded: dict[Key, tuple[Any, bytes]] = {}
        super().__init__()
        self.provider = provider
        self.settings = settings
        self.store = Store(db)
        models = {rt.name: provider.model_for(rt) for rt in provider.resource_types}
        self.group_type = next(rt for rt in provider.resource_types if rt.name == GROUP)
        loaded = []
        bad: list[str] = []
        for type_, body in self.store.rows():
            model = models.get(type_)
            if model is None:
                continue
            meta = body.setdefault("meta", {})
            if isinstance(meta, dict) and not meta.get("resourceType"):
                # The row says what it is; without this the resource would be filed under no
                # type and never listed.
                meta["resourceType"] = type_
            try:
                loaded.append(cast(Resource[Any], model.model_validate(body)))
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in exc.errors()
                )
                bad.append(f"{type_} {body.get('id')!r}: {problems}")
        if bad:
            raise ReconcilerError(
                f"{db} holds {len(bad)} record(s) this tenant's schemas reject:",
                "they were written by another tool or under other schemas: restore those "
                "(reconciler tenant init --schema-from DIR), delete the rows, or use a new --db",
                details=[*bad[:20], *([f"… and {len(bad) - 20} more"] if len(bad) > 20 else [])],
            )
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

    # -- indexes ----------------------------------------------------------------------------

    def _store(self, resource: Resource[Any], values: dict[str, Any]) -> None:
        self._orders.clear()
        super()._store(resource, values)

    def _remove(self, key: Key) -> None:
        self._orders.clear()
        self.encoded.pop(key, None)
        super()._remove(key)

    def _values_of(self, resource: Resource[Any]) -> dict[str, Any]:
        """scim2-server's ``_values_of`` with the unique attributes resolved once per model:
        resolving them for each resource made up a third of loading 100,000 users."""
        model = type(resource)
        bindings = self._unique.get(model)
        if bindings is None:
            paths = parametrize(ScimPath, model).iter_paths(
                include_subattributes=False, uniqueness=[Uniqueness.server, Uniqueness.global_]
            )
            bindings = self._unique[model] = [cast(AttributeBinding, p.resolve()) for p in paths]
        values = {}
        for attribute in bindings:
            value = self._comparable_value(resource, attribute)
            if value is not None:
                values[attribute.urn] = _hashable(value)
        return values

    @staticmethod
    def _comparable_value(resource: Resource[Any], attribute: AttributeBinding) -> Any:
        """scim2-server's ``_comparable_value``, reading a plain core attribute (``userName``)
        directly: what walking its path would give, without the walk."""
        if (
            attribute.sub_field_name is None
            and isinstance(resource, attribute.model)
            and not issubclass(attribute.model, Extension)
        ):
            value = getattr(resource, attribute.field_name, None)
        else:
            path = parametrize(ScimPath, type(resource))(attribute.urn)
            value = path.get(resource, strict=False)
        try:
            return attribute.comparable(value)
        except ValueError:
            return None

    # -- reads ----------------------------------------------------------------------------

    def search(
        self,
        resource_types: list[ResourceType],
        search_request: SearchRequest[Any],
        *,
        position: Any = None,
    ) -> SearchPage:
        if search_request.filter is not None:
            return super().search(resource_types, search_request, position=position)
        page = self.search_stored(resource_types, search_request, position=position)
        page.resources = [r.model_copy(deep=True) for r in page.resources]
        return page

    def search_stored(
        self,
        resource_types: list[ResourceType],
        search_request: SearchRequest[Any],
        *,
        position: Any = None,
    ) -> SearchPage:
        """:meth:`search`, but the page holds the stored resources themselves, not copies:
        for readers that never change them (the tenant's service, which publishes copies)."""
        with self.lock:
            if search_request.filter is not None:
                # A filter walks every candidate anyway: scim2-server's own code (copies).
                return super().search(resource_types, search_request, position=position)
            names = tuple(dict.fromkeys(rt.name for rt in resource_types))
            descending = (
                search_request.sort_by is not None
                and search_request.sort_order == SearchRequest.SortOrder.descending
            )
            key = (names, search_request.sort_by, descending)
            order = self._orders.get(key)
            if order is None:
                pairs = sorted(
                    (
                        (_sort_key(search_request, r), r)
                        for r in self._candidates(list(names), None)
                    ),
                    key=lambda pair: pair[0],
                    reverse=descending,
                )
                order = self._orders[key] = _Order(
                    [k for k, _ in pairs], [r for _, r in pairs], descending
                )
            return order.page(search_request, position)

    def _candidates(
        self, names: list[str | None], scim_filter: ScimFilter[Any] | None
    ) -> list[Resource[Any]]:
        found = super()._candidates(names, scim_filter)
        if self.settings.active_only_listing and scim_filter is None and names == [USER]:
            # Genesys lists only active users unless asked with `active eq false`.
            return [r for r in found if getattr(r, "active", True) is not False]
        return found
