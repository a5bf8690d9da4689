"""What a live tenant holds, as desired-state entries (plain data; no files, no YAML).

Written: what a plan compares, so a plan right after an import is empty. Never written:
ids, meta, schemas, passwords, attributes the tenant's /Schemas mark as secret (``returned:
never``, ``mutability: writeOnly``) or as its own (``mutability: readOnly``), and the grant
targets (entitlements, roles, the access extension), which rules own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.desired.models import CORE_USER, ENTERPRISE_USER
from reconciler.live import LiveState

CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
OWN_EXTENSION = "urn:ietf:params:scim:schemas:extension:reconciler:2.0:User"
SKIP_SCHEMAS = {CORE_USER, CORE_GROUP, OWN_EXTENSION}
SIMPLE = ("displayName", "nickName", "title", "userType", "preferredLanguage", "locale", "timezone")
NAME_PARTS = (
    "givenName",
    "familyName",
    "middleName",
    "honorificPrefix",
    "honorificSuffix",
    "formatted",
)
ENTERPRISE_ATTRS = ("employeeNumber", "costCenter", "organization", "division", "department")
# Order of a user's keys as written (and where a new key goes in an existing entry).
USER_KEYS = (
    "userName",
    "externalId",
    "name",
    *SIMPLE,
    "active",
    "emails",
    "phoneNumbers",
    "manager",
    "groups",
    "attributes",
)
SCIM_TYPES = {
    "string": "string",
    "boolean": "boolean",
    "integer": "integer",
    "decimal": "decimal",
    "datetime": "dateTime",
    "reference": "reference",
    "binary": "string",
}


@dataclass(frozen=True)
class Declared:
    """One extension attribute as the tenant's /Schemas declare it."""

    type: str | None = None  # a desired-state type, None when not declared
    multi_valued: bool = False
    case_exact: bool = False
    description: str | None = None
    excluded: str = ""  # why it is never written ("secret", "server-owned", "complex")


@dataclass(frozen=True)
class AttrDef:
    urn: str
    path: str
    name: str  # the key users carry it under (the path, or qualified when two schemas clash)
    type: str = "string"
    multi_valued: bool = False
    case_exact: bool = False
    description: str | None = None
    declared: bool = False  # type and multi_valued come from /Schemas, not from the values


@dataclass
class Entries:
    attributes: list[AttrDef] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)  # displayName, externalId
    members: dict[str, list[str]] = field(default_factory=dict)  # group (casefold) -> userNames
    users: list[tuple[dict[str, Any], Mapping[str, Any]]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # attributes never written, and why
    # Values of single users and groups that could not be written, and why.
    dropped: list[str] = field(default_factory=list)


def declared(schemas: Any) -> dict[tuple[str, str], Declared]:
    """(schema URN, attribute name lower-cased) -> declaration, from a /Schemas answer."""
    items = schemas.get("Resources", []) if isinstance(schemas, dict) else schemas
    out: dict[tuple[str, str], Declared] = {}
    for schema in items if isinstance(items, list) else []:
        if not isinstance(schema, dict) or schema.get("id") in SKIP_SCHEMAS:
            continue
        for a in schema.get("attributes") or []:
            if not isinstance(a, dict) or not a.get("name"):
                continue
            kind = str(a.get("type", "string")).lower()
            mutability = str(a.get("mutability", "readWrite")).lower()
            why = ""
            if str(a.get("returned", "")).lower() == "never" or mutability == "writeonly":
                why = "secret (write-only)"
            elif mutability == "readonly":
                why = "server-owned (read-only)"
            elif kind == "complex":
                why = "complex (sub-attributes)"
            description = a.get("description")
            out[(str(schema["id"]), str(a["name"]).lower())] = Declared(
                type=SCIM_TYPES.get(kind),
                multi_valued=bool(a.get("multiValued")),
                case_exact=bool(a.get("caseExact")),
                description=str(description) if description else None,
                excluded=why,
            )
    return out


def qualifier(urn: str) -> str:
    """A readable qualifier for a schema URN: ``acme`` for urn:…:extension:acme:1.0:User."""
    generic = {"urn", "ietf", "params", "scim", "schemas", "extension", "core", "user", "api"}
    parts = [p for p in urn.split(":") if re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", p)]
    named = [p for p in parts if p.lower() not in generic]
    return named[-1] if named else "ext"


def _infer(values: list[Any]) -> tuple[str, bool]:
    multi = any(isinstance(v, list) for v in values)
    flat = [x for v in values for x in (v if isinstance(v, list) else [v])]
    if flat and all(isinstance(x, bool) for x in flat):
        return "boolean", multi
    if flat and all(isinstance(x, int) and not isinstance(x, bool) for x in flat):
        return "integer", multi
    if flat and all(isinstance(x, int | float) and not isinstance(x, bool) for x in flat):
        return "decimal", multi
    return "string", multi


def attributes(live: LiveState, schemas: Mapping[tuple[str, str], Declared]) -> Entries:
    """The custom attributes users carry that the tenant declares (all, when it does not
    list /Schemas), each with its type; the ones never written are listed with the reason."""
    values: dict[tuple[str, str], list[Any]] = {}
    for u in live.users:
        for urn, ext in u.items():
            if urn.startswith("urn:") and urn not in SKIP_SCHEMAS and isinstance(ext, dict):
                for attr, value in ext.items():
                    if urn == ENTERPRISE_USER and attr == "manager":
                        continue
                    if value not in (None, "", [], {}):
                        values.setdefault((urn, attr), []).append(value)
    out = Entries()
    known = set(schemas)
    taken: dict[str, tuple[str, str]] = {}
    for urn, attr in sorted(values):
        d = schemas.get((urn, attr.lower()))
        enterprise = urn == ENTERPRISE_USER and attr in ENTERPRISE_ATTRS
        if d is None and known and not enterprise:
            out.skipped.append(f"{attr} ({urn}): not declared in the tenant's /Schemas")
            continue
        if d is not None and d.excluded:
            out.skipped.append(f"{attr} ({urn}): {d.excluded}")
            continue
        if any(isinstance(v, dict) for v in values[(urn, attr)]):
            out.skipped.append(f"{attr} ({urn}): complex (sub-attributes)")
            continue
        name = attr if attr not in taken else f"{qualifier(urn)}-{attr}"
        taken[name] = (urn, attr)
        if d is not None and d.type:
            kind, multi = d.type, d.multi_valued
        else:
            kind, multi = _infer(values[(urn, attr)])
        out.attributes.append(
            AttrDef(
                urn=urn,
                path=attr,
                name=name,
                type=kind,
                multi_valued=multi,
                case_exact=bool(d and d.case_exact),
                description=d.description if d else None,
                declared=bool(d and d.type),
            )
        )
    return out


def _emails(u: Mapping[str, Any]) -> list[Any]:
    items = [e for e in u.get("emails") or [] if isinstance(e, dict) and e.get("value")]
    written = [
        {"value": e["value"], "type": e.get("type") or "work", "primary": bool(e.get("primary"))}
        for e in items
    ]
    # `emails: [a@x]` is the desired-state shorthand for work addresses, the first primary.
    if written and all(
        e["type"] == "work" and e["primary"] == (i == 0) for i, e in enumerate(written)
    ):
        return [e["value"] for e in written]
    return [{k: v for k, v in e.items() if k != "primary" or v} for e in written]


def user_entry(
    u: Mapping[str, Any],
    names: Mapping[str, str],
    groups: Iterable[str],
    attrs: list[AttrDef],
) -> dict[str, Any]:
    m: dict[str, Any] = {"userName": u["userName"]}
    if u.get("externalId"):
        m["externalId"] = str(u["externalId"])
    name = u.get("name")
    parts = {k: name[k] for k in NAME_PARTS if name.get(k)} if isinstance(name, dict) else {}
    if parts:
        m["name"] = parts
    for k in SIMPLE:
        if u.get(k):
            m[k] = u[k]
    if u.get("active") is False or str(u.get("active")).lower() == "false":
        m["active"] = False
    emails = _emails(u)
    if emails:
        m["emails"] = emails
    phones = [
        {
            "value": p["value"],
            "type": p.get("type") or "work",
            **({"primary": True} if p.get("primary") else {}),
        }
        for p in u.get("phoneNumbers") or []
        if isinstance(p, dict) and p.get("value")
    ]
    if phones:
        m["phoneNumbers"] = phones
    manager = (u.get(ENTERPRISE_USER) or {}).get("manager")
    if isinstance(manager, dict) and str(manager.get("value")) in names:
        m["manager"] = names[str(manager["value"])]
    chosen = sorted(set(groups), key=str.casefold)
    if chosen:
        m["groups"] = chosen
    values = {}
    for a in attrs:
        v = (u.get(a.urn) or {}).get(a.path)
        if v not in (None, "", []):
            values[a.name] = v
    if values:
        m["attributes"] = values
    return m


def split_value(u: Mapping[str, Any], split_by: str) -> str | None:
    """The value of ``split_by`` for a user: a core attribute, or one of any extension (the
    enterprise one first); None when the user has none."""
    value = (u.get(ENTERPRISE_USER) or {}).get(split_by) or u.get(split_by)
    if value in (None, ""):
        for urn, ext in u.items():
            if urn.startswith("urn:") and isinstance(ext, dict) and ext.get(split_by):
                value = ext[split_by]
                break
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value in (None, "") or isinstance(value, dict) else str(value)


def split_key(u: Mapping[str, Any], split_by: str) -> str:
    """The file (under users/) a new user goes to: the value of ``split_by``, made a file
    name; ``other`` without one, ``users`` when not splitting."""
    if split_by == "none":
        return "users"
    value = split_value(u, split_by)
    return re.sub(r"[^a-z0-9]+", "-", (value or "other").lower()).strip("-") or "other"


def entries(live: LiveState, attrs: list[AttrDef], *, member_lists: set[str]) -> Entries:
    """Everything to write. Memberships of groups in ``member_lists`` (casefolded names of
    groups whose existing entry lists its members) go to the group, the others to users."""
    out = Entries(attributes=attrs)
    names = {str(u["id"]): str(u["userName"]) for u in live.users if u.get("userName")}
    group_names = {str(g["id"]): str(g.get("displayName") or g["id"]) for g in live.groups}
    member_of: dict[str, list[str]] = {}
    for g in sorted(live.groups, key=lambda g: str(g.get("displayName", "")).casefold()):
        if not g.get("displayName"):
            continue
        entry = {"displayName": str(g["displayName"])}
        if g.get("externalId"):
            entry["externalId"] = str(g["externalId"])
        out.groups.append(entry)
        key = str(g["displayName"]).casefold()
        for m in g.get("members") or []:
            if isinstance(m, dict) and str(m.get("value")) in names:
                if key in member_lists:
                    out.members.setdefault(key, []).append(names[str(m["value"])])
                else:
                    member_of.setdefault(str(m["value"]), []).append(str(g["displayName"]))
            elif isinstance(m, dict):
                value = str(m.get("value"))
                if value in group_names:
                    out.dropped.append(
                        f"group {g['displayName']!r} has the group {group_names[value]!r} as a "
                        "member: desired-state lists users as members, and plans leave a "
                        "member group as it is"
                    )
                else:
                    out.dropped.append(
                        f"group {g['displayName']!r} lists the member {value!r}, which is no "
                        "user of the tenant"
                    )
    for u in sorted(live.users, key=lambda u: str(u.get("userName", "")).casefold()):
        if u.get("userName"):
            entry = user_entry(u, names, member_of.get(str(u["id"]), []), attrs)
            out.users.append((entry, u))
            manager = (u.get(ENTERPRISE_USER) or {}).get("manager")
            if isinstance(manager, dict) and "manager" not in entry and manager.get("value"):
                out.dropped.append(
                    f"user {u['userName']!r} has the manager {str(manager['value'])!r}, which "
                    "is no user of the tenant"
                )
    return out
