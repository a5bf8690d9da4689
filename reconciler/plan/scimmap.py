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
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from operator import attrgetter
from typing import Any, NamedTuple

from reconciler.desired.models import (
    CORE_USER,
    ENTERPRISE_USER,
    Attribute,
    Email,
    PhoneNumber,
    User,
)
from reconciler.desired.state import DesiredState
from reconciler.plan.rules import EffectiveAccess

ACCESS_EXT = "urn:ietf:params:scim:schemas:extension:reconciler:2.0:User"
USER_REF = "$user"
SIMPLE = ("displayName", "nickName", "title", "userType", "preferredLanguage", "locale", "timezone")
NAME_PARTS = ("givenName", "familyName", "middleName", "honorificPrefix", "honorificSuffix")
NAME_ALL = (*NAME_PARTS, "formatted")
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
    """emails / phoneNumbers: a set of (value, type, primary); values case-insensitive. A
    value with no type has the type desired-state gives one it does not type (work): many
    tenants keep no type, and desired-state cannot write "no type"."""
    if not v:
        return None
    return frozenset(
        (str(x.get("value", "")).casefold(), str(x.get("type") or "work"), _bool(x.get("primary")))
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


def _number(v: Any) -> Any:
    """Integers and decimals by value: ``5``, ``5.0`` and ``"5"`` are one number."""
    if v is None or isinstance(v, bool):
        return None if v is None else str(v).casefold()
    try:
        number = Decimal(str(v).strip())
    except ArithmeticError:
        return str(v).casefold()
    return str(v).casefold() if number.is_nan() else number


def _boolean(v: Any) -> Any:
    """Booleans by value: ``true``, ``"True"`` and ``1`` are one value."""
    if v is None:
        return None
    if isinstance(v, str):
        text = v.strip().casefold()
        return {"true": True, "false": False}.get(text, text)
    if isinstance(v, (bool, int)) and v in (0, 1):
        return bool(v)
    return str(v).casefold()


def _attr_norm(attr: Attribute) -> Norm:
    if attr.multi_valued:
        return _multi if attr.case_exact else _multi_ci
    if attr.type == "boolean":
        return _boolean
    if attr.type in ("integer", "decimal"):
        return _number
    return _s if attr.case_exact else _ci


def _attr_writer(attr: Attribute) -> Write | None:
    """How a custom attribute's YAML value is written to SCIM (None: as it is)."""
    return list if attr.multi_valued else None


_USER_NAME = Spec("userName", _ci)
_ACTIVE = Spec("active", _active)
_EXTERNAL_ID = Spec("externalId", _s)
_SIMPLE = tuple((name, Spec(name, _s)) for name in SIMPLE)
_NAME = tuple((part, Spec(f"name.{part}", _s)) for part in NAME_ALL)
_EMAILS = Spec("emails", _typed_list)
_PHONES = Spec("phoneNumbers", _typed_list)
# A user's manager: a reference to another user, by its live id.
MANAGER_PATH = f"{ENTERPRISE_USER}:manager"
_MANAGER = Spec(MANAGER_PATH, _ref)


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
        add((_EMAILS, _typed(user.emails)))
    if user.phoneNumbers:
        add((_PHONES, _typed(user.phoneNumbers)))
    if user.manager is not None:
        add((_MANAGER, _manager_ref(user.manager, ids)))
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


def _typed(items: Sequence[Email | PhoneNumber]) -> list[dict[str, Any]]:
    """emails / phoneNumbers as SCIM holds them."""
    return [{"value": i.value, "type": i.type, "primary": i.primary} for i in items]


def _manager_ref(manager: str, ids: Mapping[str, str]) -> dict[str, Any]:
    """The manager's live id, or a ``{"$user": userName}`` placeholder for apply."""
    mid = ids.get(manager.casefold())
    return {"value": mid if mid else {USER_REF: manager}}


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
# The access extension's sub-attributes, each a grant target.
ACCESS_SUBS = ("userGroup", "settingsTemplate", "deviceGroups")

# What the rules give one user, as the live attributes hold it: (entitlements, roles, the
# access extension's values in ACCESS_SUBS order), for the quick check (QuickSpec).
QuickGrants = tuple[Any, Any, tuple[Any, ...]]

# Users share their EffectiveAccess object with every user of the same groups (rules.py), so
# the grant attributes are built once per access object. Entries keep the object alive, so an
# id is never reused for another while cached.
_GRANTS: dict[int, tuple[object, list[Pair], QuickGrants]] = {}


def _grants(access: EffectiveAccess | None) -> tuple[object, list[Pair], QuickGrants]:
    """The grant attributes of ``access`` as pairs, and as :data:`QuickGrants`."""
    cached = _GRANTS.get(id(access))
    if cached is not None and cached[0] is access:
        return cached
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
    quick = (out[0][1], out[1][1], (out[2][1], out[3][1], out[4][1]))
    if len(_GRANTS) > 100_000:
        _GRANTS.clear()
    entry = _GRANTS[id(access)] = (access, out, quick)
    return entry


def _grant_values(access: EffectiveAccess | None) -> list[Pair]:
    return _grants(access)[1]


def quick_grants(access: EffectiveAccess | None) -> QuickGrants:
    """What the rules give a user of ``access``, for :func:`unchanged` (built once per
    access object: users of the same groups share it)."""
    return _grants(access)[2]


def grant_count(grants: QuickGrants) -> int:
    """How many grant values (user × value) a user holding exactly ``grants`` has, counted
    as the plan counts a live user's (build._live_grants)."""
    entitlements, roles, granted = grants
    n = len(entitlements or ()) + len(roles or ())
    for v in granted:
        if v not in (None, "", []):
            n += len(v) if isinstance(v, list) else 1
    return n


Write = Callable[[Any], Any]
_SPECS: dict[int, tuple[object, list[tuple[str, Spec, Write | None]], QuickSpec | None]] = {}


class QuickSpec(NamedTuple):
    """Where each attribute :func:`unchanged` compares lives, for one set of custom
    attributes (``reconciler._speedups`` reads these fields in this order: keep them in
    step)."""

    # User fields compared with the live top-level values of the same names.
    top: tuple[str, ...]
    name_parts: tuple[str, ...]
    # emails, phoneNumbers: lists of {value, type, primary}.
    typed: tuple[str, ...]
    # Custom attributes at the top level: their live keys, and their names in attributes.yaml.
    attr_paths: tuple[str, ...]
    attr_names: tuple[str, ...]
    # Custom attributes in an extension or a complex attribute: (its URN or name,
    # sub-attribute names, attribute names).
    heads: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]
    enterprise: str
    access_ext: str
    access_subs: tuple[str, ...]


def _quick_spec(specs: list[tuple[str, Spec, Write | None]]) -> QuickSpec | None:
    """The layout of these custom attributes; None when one shares a place with an attribute
    :func:`unchanged` compares on its own (say a custom ``title``): those states always take
    the full comparison."""
    top = [(spec.head, name) for name, spec, _ in specs if spec.sub is None]
    heads: dict[str, tuple[list[str], list[str]]] = {}
    for name, spec, _ in specs:
        if spec.sub is not None:
            subs, names = heads.setdefault(spec.head, ([], []))
            subs.append(spec.sub)
            names.append(name)
    own = {*_QUICK_TOP, "active", "name", "emails", "phoneNumbers", "entitlements", "roles"}
    if (
        own & {*(p for p, _ in top), *heads}
        or ACCESS_EXT in heads
        or "manager" in heads.get(ENTERPRISE_USER, ((), ()))[0]
    ):
        return None
    return QuickSpec(
        top=_QUICK_TOP,
        name_parts=NAME_ALL,
        typed=("emails", "phoneNumbers"),
        attr_paths=tuple(sys.intern(p) for p, _ in top),
        attr_names=tuple(n for _, n in top),
        heads=tuple((h, tuple(subs), tuple(names)) for h, (subs, names) in heads.items()),
        enterprise=ENTERPRISE_USER,
        access_ext=ACCESS_EXT,
        access_subs=ACCESS_SUBS,
    )


def _attribute_specs(attributes: tuple[Attribute, ...]) -> list[tuple[str, Spec, Write | None]]:
    """(name, spec, how to write a value or None) of each custom attribute, built once."""
    return _compiled(attributes)[1]


def quick_spec(attributes: tuple[Attribute, ...]) -> QuickSpec | None:
    """The :class:`QuickSpec` of a desired state's custom attributes (built once)."""
    return _compiled(attributes)[2]


def _compiled(
    attributes: tuple[Attribute, ...],
) -> tuple[object, list[tuple[str, Spec, Write | None]], QuickSpec | None]:
    cached = _SPECS.get(id(attributes))
    if cached is not None and cached[0] is attributes:
        return cached
    specs = [
        (a.name, Spec(attribute_path(a), _attr_norm(a), a.sensitive), _attr_writer(a))
        for a in attributes
    ]
    _SPECS.clear()
    entry = _SPECS[id(attributes)] = (attributes, specs, _quick_spec(specs))
    return entry


# The user fields unchanged() compares as one tuple with the live top-level values.
_QUICK_TOP = ("userName", "externalId", *SIMPLE)
_quick_top = attrgetter(*_QUICK_TOP)
_quick_name = attrgetter(*NAME_ALL)
_EMPTY: Mapping[str, Any] = {}


def _same_values(live: tuple[Any, ...], desired: tuple[Any, ...]) -> bool:
    """Custom attribute values equal and of one type, as :meth:`Managed.differs` trusts ==:
    ``True == 1`` and ``1.0 == True``, but they normalise apart (``_number``, ``_s``)."""
    return live == desired and tuple(map(type, live)) == tuple(map(type, desired))


def unchanged(
    user: User,
    spec: QuickSpec,
    grants: QuickGrants | None,
    ids: Mapping[str, str],
    resource: Mapping[str, Any],
) -> bool:
    """True when every attribute :func:`desired_values` would manage is already, exactly,
    the live value: no comparison of normalised values is needed. ``grants``: what the rules
    give the user (:func:`quick_grants`), None when there are no rules.

    The plan's hot path at scale (most users are unchanged): it builds no pairs and compares
    whole groups of values at once. It is conservative: values that differ only in ways
    normalising forgives (case, order, a string boolean), an unmanaged field the live user
    has and the desired one leaves alone, or an extra sub-attribute make it answer False,
    and the caller then compares properly (:func:`same_as_live`). It never answers True for
    a user that comparison would find changed: values equal here normalise alike.

    This is the reference of ``reconciler._speedups.scan``, which the plan uses where it is
    built (:mod:`reconciler.plan.quick`); the two are tested against each other.
    """
    get = resource.get
    if get("active", True) is not user.active:
        return False
    if tuple(map(get, spec.top)) != _quick_top(user):
        return False
    name = user.name
    if name is not None:
        live_name = get("name")
        if type(live_name) is not dict or tuple(map(live_name.get, NAME_ALL)) != _quick_name(name):
            return False
    if user.emails and get("emails") != _typed(user.emails):
        return False
    if user.phoneNumbers and get("phoneNumbers") != _typed(user.phoneNumbers):
        return False
    values = user.attributes.get
    if spec.attr_paths and not _same_values(
        tuple(map(get, spec.attr_paths)), tuple(map(values, spec.attr_names))
    ):
        return False
    for head, subs, names in spec.heads:
        ext = get(head)
        if ext is None:
            ext = _EMPTY
        elif type(ext) is not dict:
            return False
        if not _same_values(tuple(map(ext.get, subs)), tuple(map(values, names))):
            return False
    if user.manager is not None:
        ext = get(ENTERPRISE_USER)
        if type(ext) is not dict or ext.get("manager") != _manager_ref(user.manager, ids):
            return False
    if grants is not None:
        entitlements, roles, granted = grants
        if get("entitlements") != entitlements or get("roles") != roles:
            return False
        ext = get(ACCESS_EXT)
        if ext is None:
            ext = _EMPTY
        elif type(ext) is not dict:
            return False
        if tuple(map(ext.get, ACCESS_SUBS)) != granted:
            return False
    return True


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
