"""Desired users as the SCIM attributes the reconciler manages, and how each compares.

Only managed attributes take part: core attributes a desired user sets, ``active``, the custom
attributes attributes.yaml declares (absent means "should be empty"), and, when rules exist,
the grant targets (``entitlements``, ``roles`` and the access extension). Anything else on the
live object is left alone. Each managed attribute has a path (``title``, ``name.givenName``,
``urn:…:enterprise:2.0:User:department``), the value to write, and a compare key: values are
normalised (case-insensitive where SCIM says so, multi-valued as sets) before comparing.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping
from typing import Any

from reconciler.desired.models import CORE_USER, ENTERPRISE_USER, Attribute, User
from reconciler.desired.state import DesiredState
from reconciler.plan.rules import EffectiveAccess

ACCESS_EXT = "urn:ietf:params:scim:schemas:extension:reconciler:2.0:User"
USER_REF = "$user"
SIMPLE = ("displayName", "nickName", "title", "userType", "preferredLanguage", "locale", "timezone")
NAME_PARTS = ("givenName", "familyName", "middleName", "honorificPrefix", "honorificSuffix")
Norm = Callable[[Any], Any]


def _s(v: Any) -> Any:
    return None if v in (None, "", []) else str(v)


def _ci(v: Any) -> Any:
    return None if v in (None, "", []) else str(v).casefold()


def _bool(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() == "true"
    return v is not False and v is not None and bool(v)


def _active(v: Any) -> bool:
    # SCIM's default: a user without ``active`` is active.
    return True if v is None else _bool(v)


def _multi(v: Any) -> Any:
    if v in (None, [], ""):
        return None
    vals = v if isinstance(v, list) else [v]
    return frozenset(str(x.get("value") if isinstance(x, dict) else x) for x in vals) or None


def _multi_ci(v: Any) -> Any:
    m = _multi(v)
    return frozenset(x.casefold() for x in m) if m else None


def _typed_list(v: Any) -> Any:
    """emails / phoneNumbers: a set of (value, type, primary); values case-insensitive."""
    if not v:
        return None
    return frozenset(
        (str(x.get("value", "")).casefold(), str(x.get("type") or ""), _bool(x.get("primary")))
        for x in v
        if isinstance(x, dict)
    )


def _roles(v: Any) -> Any:
    if not v:
        return None
    return frozenset(
        (str(x.get("value", "")), _bool(x.get("primary"))) for x in v if isinstance(x, dict)
    )


def case_insensitive(norm: Norm) -> bool:
    """Whether values compared by ``norm`` ignore case (for item-level differences)."""
    return norm in (_ci, _multi_ci, _typed_list)


def _ref(v: Any) -> Any:
    if isinstance(v, dict):
        inner = v.get("value")
        if isinstance(inner, dict):  # a {"$user": key} placeholder
            return ("ref", str(inner.get(USER_REF, "")).casefold())
        return _s(inner)
    return _s(v)


class Spec:
    """How one managed attribute is found in a live resource and compared: its path, split
    once into the top-level name and the sub-attribute (or extension attribute)."""

    __slots__ = ("head", "norm", "path", "sensitive", "sub")

    def __init__(self, path: str, norm: Norm, sensitive: bool = False) -> None:
        self.path = path
        self.norm = norm
        self.sensitive = sensitive
        head, self.sub = _split(path)
        self.head = sys.intern(head)  # one object per name: compared by identity

    def live(self, resource: Mapping[str, Any]) -> Any:
        value = resource.get(self.head)
        if self.sub is None:
            return value
        return value.get(self.sub) if isinstance(value, dict) else None


_UNSET: Any = object()


class Managed:
    """One managed attribute of a desired user: the value to write and how to compare.

    Built for every desired user on every plan, so it is small: the compare key is computed
    only when a live value is not already equal to the value to write."""

    __slots__ = ("_key", "spec", "value")

    def __init__(self, spec: Spec, value: Any) -> None:
        self.spec = spec
        self.value = value
        self._key = _UNSET

    @property
    def path(self) -> str:
        return self.spec.path

    @property
    def norm(self) -> Norm:
        return self.spec.norm

    @property
    def sensitive(self) -> bool:
        return self.spec.sensitive

    @property
    def key(self) -> Any:
        if self._key is _UNSET:
            self._key = self.spec.norm(self.value)
        return self._key

    def differs(self, resource: Mapping[str, Any]) -> bool:
        """Whether the live resource's value differs from this one after normalising."""
        before = self.spec.live(resource)
        value = self.value
        # Equal values of one type normalise alike: most users are unchanged, and this spares
        # normalising both sides for them.
        if type(before) is type(value) and before == value:
            return False
        return bool(self.spec.norm(before) != self.key)


@functools.cache
def _split(path: str) -> tuple[str, str | None]:
    if path.startswith("urn:"):
        urn, _, attr = path.rpartition(":")
        return urn, attr
    if "." in path:
        head, _, sub = path.partition(".")
        return head, sub
    return path, None


def live_value(resource: Mapping[str, Any], path: str) -> Any:
    """The raw value at ``path`` in a live SCIM resource (``None`` when absent)."""
    head, sub = _split(path)
    value = resource.get(head)
    if sub is None:
        return value
    return value.get(sub) if isinstance(value, dict) else None


def attribute_path(attr: Attribute) -> str:
    if attr.scim.schema_ == CORE_USER:
        return attr.scim_path
    return f"{attr.scim.schema_}:{attr.scim_path}"


def _attr_norm(attr: Attribute) -> Norm:
    if attr.multi_valued:
        return _multi if attr.case_exact else _multi_ci
    if attr.type in ("boolean", "integer", "decimal"):
        return lambda v: None if v is None else str(v).casefold()
    return _s if attr.case_exact else _ci


def _attr_writer(attr: Attribute) -> Write | None:
    """How a custom attribute's YAML value is written to SCIM (None: as it is)."""
    return list if attr.multi_valued else None


_USER_NAME = Spec("userName", _ci)
_ACTIVE = Spec("active", _active)
_EXTERNAL_ID = Spec("externalId", _s)
_SIMPLE = tuple((name, Spec(name, _s)) for name in SIMPLE)
_NAME = tuple((part, Spec(f"name.{part}", _s)) for part in (*NAME_PARTS, "formatted"))
_EMAILS = Spec("emails", _typed_list)
_PHONES = Spec("phoneNumbers", _typed_list)
_MANAGER = Spec(f"{ENTERPRISE_USER}:manager", _ref)


Pair = tuple[Spec, Any]


def desired_values(
    user: User,
    state: DesiredState,
    access: EffectiveAccess | None,
    ids: Mapping[str, str],
    *,
    active: bool = True,
) -> list[Pair]:
    """Each managed attribute of ``user`` with the value to write. ``ids`` maps casefolded
    userNames to live ids (for the manager); an unknown manager becomes a ``{"$user": …}``
    placeholder for apply."""
    out: list[Pair] = [(_USER_NAME, user.userName), (_ACTIVE, active)]
    add = out.append
    if user.externalId is not None:
        add((_EXTERNAL_ID, user.externalId))
    for name, spec in _SIMPLE:
        value = getattr(user, name)
        if value is not None:
            add((spec, value))
    if user.name is not None:
        for part, spec in _NAME:
            value = getattr(user.name, part)
            if value is not None:
                add((spec, value))
    if user.emails:
        add(
            (
                _EMAILS,
                [{"value": e.value, "type": e.type, "primary": e.primary} for e in user.emails],
            )
        )
    if user.phoneNumbers:
        add(
            (
                _PHONES,
                [
                    {"value": p.value, "type": p.type, "primary": p.primary}
                    for p in user.phoneNumbers
                ],
            )
        )
    if user.manager is not None:
        mid = ids.get(user.manager.casefold())
        add((_MANAGER, {"value": mid if mid else {USER_REF: user.manager}}))
    values = user.attributes
    for name, spec, write in _attribute_specs(state.attributes):
        value = values.get(name)
        if value is not None:
            if write is not None:
                value = write(value)
            elif type(value) is not str and hasattr(value, "isoformat"):
                value = value.isoformat()  # a date or dateTime from YAML
        add((spec, value))
    if state.rules:
        out += _grant_values(access)
    return out


def desired_user(
    user: User,
    state: DesiredState,
    access: EffectiveAccess | None,
    ids: Mapping[str, str],
    *,
    active: bool = True,
) -> dict[str, Managed]:
    """The managed attributes of ``user`` by path (see :func:`desired_values`)."""
    return managed(desired_values(user, state, access, ids, active=active))


def managed(values: list[Pair]) -> dict[str, Managed]:
    return {spec.path: Managed(spec, value) for spec, value in values}


def same_as_live(values: list[Pair], resource: Mapping[str, Any]) -> bool:
    """Whether every managed value equals the live one after normalising.

    The plan's hot path: most users are unchanged, so values are first compared as they are
    (equal values of one type normalise alike) and normalised only when they differ."""
    get = resource.get
    head: str | None = None
    parent: Mapping[str, Any] = {}
    for spec, value in values:
        sub = spec.sub
        if sub is None:
            live = get(spec.head)
        else:
            if spec.head is not head:  # extension attributes come together: one lookup
                head = spec.head
                found = get(head)
                parent = found if isinstance(found, dict) else {}
            live = parent.get(sub)
        if type(live) is type(value) and live == value:
            continue
        norm = spec.norm
        if norm(live) != norm(value):
            return False
    return True


_ENTITLEMENTS = Spec("entitlements", _multi)
_ROLES = Spec("roles", _roles)
_USER_GROUP = Spec(f"{ACCESS_EXT}:userGroup", _s)
_SETTINGS = Spec(f"{ACCESS_EXT}:settingsTemplate", _s)
_DEVICE_GROUPS = Spec(f"{ACCESS_EXT}:deviceGroups", _multi)

# Users share their EffectiveAccess object with every user of the same groups (rules.py), so
# the grant attributes are built once per access object. Entries keep the object alive, so an
# id is never reused for another while cached.
_GRANTS: dict[int, tuple[object, list[Pair]]] = {}


def _grant_values(access: EffectiveAccess | None) -> list[Pair]:
    cached = _GRANTS.get(id(access))
    if cached is not None and cached[0] is access:
        return cached[1]
    grants = access.as_dict() if access else {}
    entitlements = sorted({*grants.get("products", []), *grants.get("entitlements", [])})
    role = grants.get("role") or ""
    roles = [{"value": role, "primary": True}] if role else []
    roles += [{"value": r} for r in grants.get("roles", []) if r != role]
    out: list[Pair] = [
        (_ENTITLEMENTS, [{"value": v} for v in entitlements] or None),
        (_ROLES, roles or None),
        (_USER_GROUP, grants.get("userGroup") or None),
        (_SETTINGS, grants.get("settingsTemplate") or None),
        (_DEVICE_GROUPS, grants.get("deviceGroups") or None),
    ]
    if len(_GRANTS) > 100_000:
        _GRANTS.clear()
    _GRANTS[id(access)] = (access, out)
    return out


Write = Callable[[Any], Any]
_SPECS: dict[int, tuple[object, list[tuple[str, Spec, Write | None]]]] = {}


def _attribute_specs(attributes: tuple[Attribute, ...]) -> list[tuple[str, Spec, Write | None]]:
    """(name, spec, how to write a value or None) of each custom attribute, built once."""
    cached = _SPECS.get(id(attributes))
    if cached is not None and cached[0] is attributes:
        return cached[1]
    specs = [
        (a.name, Spec(attribute_path(a), _attr_norm(a), a.sensitive), _attr_writer(a))
        for a in attributes
    ]
    _SPECS.clear()
    _SPECS[id(attributes)] = (attributes, specs)
    return specs


def scim_body(managed: Mapping[str, Managed], schemas: list[str]) -> dict[str, Any]:
    """A SCIM resource (for POST) holding every managed value that is set."""
    body: dict[str, Any] = {"schemas": list(schemas)}
    for m in managed.values():
        if m.value is None:
            continue
        if m.path.startswith("urn:"):
            urn, _, attr = m.path.rpartition(":")
            body.setdefault(urn, {})[attr] = m.value
            if urn not in body["schemas"]:
                body["schemas"].append(urn)
        elif "." in m.path:
            head, _, sub = m.path.partition(".")
            body.setdefault(head, {})[sub] = m.value
        else:
            body[m.path] = m.value
    return body


def patch_ops(changed: list[Managed]) -> list[dict[str, Any]]:
    """Lower-case PATCH operations: replace what has a value, remove what should be empty."""
    ops: list[dict[str, Any]] = []
    for m in changed:
        if m.value is None:
            ops.append({"op": "remove", "path": m.path})
        else:
            ops.append({"op": "replace", "path": m.path, "value": m.value})
    return ops
