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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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
        (str(x.get("value", "")).casefold(), str(x.get("type") or ""), bool(x.get("primary")))
        for x in v
        if isinstance(x, dict)
    )


def _roles(v: Any) -> Any:
    if not v:
        return None
    return frozenset(
        (str(x.get("value", "")), bool(x.get("primary"))) for x in v if isinstance(x, dict)
    )


def _ref(v: Any) -> Any:
    if isinstance(v, dict):
        inner = v.get("value")
        if isinstance(inner, dict):  # a {"$user": key} placeholder
            return ("ref", str(inner.get(USER_REF, "")).casefold())
        return _s(inner)
    return _s(v)


@dataclass(frozen=True)
class Managed:
    """One managed attribute of a desired user: the value to write and how to compare."""

    path: str
    value: Any
    norm: Norm
    sensitive: bool = False
    key: Any = field(init=False, compare=False)

    def __post_init__(self) -> None:
        # The compare key is computed once: grant attributes are shared by many users.
        object.__setattr__(self, "key", self.norm(self.value))


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


def _attr_write(attr: Attribute, value: Any) -> Any:
    if value is None:
        return None
    if attr.multi_valued:
        return list(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def desired_user(
    user: User,
    state: DesiredState,
    access: EffectiveAccess | None,
    ids: Mapping[str, str],
    *,
    active: bool = True,
) -> dict[str, Managed]:
    """The managed attributes of ``user``. ``ids`` maps casefolded userNames to live ids (for
    the manager); an unknown manager becomes a ``{"$user": …}`` placeholder for apply."""
    out: dict[str, Managed] = {}

    def put(path: str, value: Any, norm: Norm, sensitive: bool = False) -> None:
        out[path] = Managed(path, value, norm, sensitive)

    put("userName", user.userName, _ci)
    put("active", active, _active)
    if user.externalId is not None:
        put("externalId", user.externalId, _s)
    for name in SIMPLE:
        value = getattr(user, name)
        if value is not None:
            put(name, value, _s)
    if user.name is not None:
        for part in (*NAME_PARTS, "formatted"):
            value = getattr(user.name, part)
            if value is not None:
                put(f"name.{part}", value, _s)
    if user.emails:
        put("emails", [e.model_dump() for e in user.emails], _typed_list)
    if user.phoneNumbers:
        put("phoneNumbers", [p.model_dump() for p in user.phoneNumbers], _typed_list)
    if user.manager is not None:
        mid = ids.get(user.manager.casefold())
        put(
            f"{ENTERPRISE_USER}:manager",
            {"value": mid if mid else {USER_REF: user.manager}},
            _ref,
        )
    for attr, path, norm in _attribute_specs(state.attributes):
        value = user.attributes.get(attr.name)
        put(path, _attr_write(attr, value), norm, attr.sensitive)
    if state.rules:
        out.update(_grant_managed(access))
    return out


# Users share their EffectiveAccess object with every user of the same groups (rules.py), so
# the grant attributes are built once per access object. Entries keep the object alive, so an
# id is never reused for another while cached.
_GRANTS: dict[int, tuple[object, dict[str, Managed]]] = {}


def _grant_managed(access: EffectiveAccess | None) -> dict[str, Managed]:
    cached = _GRANTS.get(id(access))
    if cached is not None and cached[0] is access:
        return cached[1]
    out: dict[str, Managed] = {}

    def put(path: str, value: Any, norm: Norm) -> None:
        out[path] = Managed(path, value, norm)

    grants = access.as_dict() if access else {}
    entitlements = sorted({*grants.get("products", []), *grants.get("entitlements", [])})
    put("entitlements", [{"value": v} for v in entitlements] or None, _multi)
    role = grants.get("role") or ""
    roles = [{"value": role, "primary": True}] if role else []
    roles += [{"value": r} for r in grants.get("roles", []) if r != role]
    put("roles", roles or None, _roles)
    put(f"{ACCESS_EXT}:userGroup", grants.get("userGroup") or None, _s)
    put(f"{ACCESS_EXT}:settingsTemplate", grants.get("settingsTemplate") or None, _s)
    put(f"{ACCESS_EXT}:deviceGroups", grants.get("deviceGroups") or None, _multi)
    if len(_GRANTS) > 100_000:
        _GRANTS.clear()
    _GRANTS[id(access)] = (access, out)
    return out


_SPECS: dict[int, tuple[object, list[tuple[Attribute, str, Norm]]]] = {}


def _attribute_specs(attributes: tuple[Attribute, ...]) -> list[tuple[Attribute, str, Norm]]:
    cached = _SPECS.get(id(attributes))
    if cached is not None and cached[0] is attributes:
        return cached[1]
    specs = [(a, attribute_path(a), _attr_norm(a)) for a in attributes]
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
