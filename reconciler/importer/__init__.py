"""Import a live tenant into desired-state YAML (onboarding: no team starts from zero).

Writes what the plan would compare, so a plan right after an import is empty: users (core
attributes, emails, phones, manager by userName, groups), groups, and the custom attributes the
tenant's /Schemas declare. Never written: ids, meta, schemas, passwords, and grant targets
(entitlements, roles, the access extension), which rules own. Importing onto an existing
directory updates entries in place and appends new ones, keeping comments and order
(ruamel.yaml round-trip).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from reconciler.desired.models import CORE_USER, ENTERPRISE_USER
from reconciler.live import LiveState

SKIP_SCHEMAS = {
    CORE_USER,
    "urn:ietf:params:scim:schemas:core:2.0:Group",
    "urn:ietf:params:scim:schemas:extension:reconciler:2.0:User",
}
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


@dataclass
class ImportResult:
    users: int
    groups: int
    attributes: int
    files: list[Path]


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 100
    return y


def _flow(items: Iterable[Any]) -> CommentedSeq:
    seq = CommentedSeq(list(items))
    seq.fa.set_flow_style()
    return seq


def _attributes(live: LiveState) -> list[tuple[str, str]]:
    """(schema URN, attribute) pairs the tenant declares and users actually carry."""
    used: set[tuple[str, str]] = set()
    for u in live.users:
        for urn, ext in u.items():
            if urn.startswith("urn:") and urn not in SKIP_SCHEMAS and isinstance(ext, dict):
                for attr, value in ext.items():
                    if attr != "manager" and value not in (None, "", []):
                        used.add((urn, attr))
    declared = {
        (urn, a) for urn, attrs in live.capabilities.extension_schemas.items() for a in attrs
    }
    if declared:
        used &= declared | {(ENTERPRISE_USER, a) for a in ENTERPRISE_ATTRS}
    return sorted(used)


def _user(
    u: Mapping[str, Any],
    names: Mapping[str, str],
    groups: list[str],
    attrs: list[tuple[str, str]],
    keys: Mapping[tuple[str, str], str],
) -> CommentedMap:
    m = CommentedMap()
    m["userName"] = u["userName"]
    if u.get("externalId"):
        m["externalId"] = str(u["externalId"])
    name = {
        k: u["name"][k] for k in NAME_PARTS if isinstance(u.get("name"), dict) and u["name"].get(k)
    }
    if name:
        m["name"] = CommentedMap(name)
        m["name"].fa.set_flow_style()
    for k in SIMPLE:
        if u.get(k):
            m[k] = u[k]
    if u.get("active") is False or str(u.get("active")).lower() == "false":
        m["active"] = False
    for k in ("emails", "phoneNumbers"):
        items = [e for e in u.get(k) or [] if isinstance(e, dict) and e.get("value")]
        if items:
            seq = CommentedSeq()
            for e in items:
                entry = CommentedMap([("value", e["value"])])
                entry["type"] = e.get("type") or "work"
                if e.get("primary"):
                    entry["primary"] = True
                entry.fa.set_flow_style()
                seq.append(entry)
            m[k] = seq
    manager = (u.get(ENTERPRISE_USER) or {}).get("manager")
    if isinstance(manager, dict) and manager.get("value") in names:
        m["manager"] = names[manager["value"]]
    if groups:
        m["groups"] = _flow(sorted(groups, key=str.casefold))
    values = CommentedMap()
    for urn, attr in attrs:
        v = (u.get(urn) or {}).get(attr)
        if v not in (None, "", []):
            values[keys[(urn, attr)]] = v
    if values:
        m["attributes"] = values
    return m


def _file_key(u: Mapping[str, Any], split_by: str) -> str:
    if split_by == "none":
        return "users"
    value = (u.get(ENTERPRISE_USER) or {}).get(split_by) or u.get(split_by) or "other"
    return re.sub(r"[^a-z0-9]+", "-", str(value).lower()).strip("-") or "other"


def _merge(path: Path, section: str, entries: list[CommentedMap], key: str) -> None:
    """Write ``entries`` under ``section`` of ``path``: update in place, append the new."""
    y = _yaml()
    doc = y.load(path.read_text(encoding="utf-8")) if path.exists() else None
    if not isinstance(doc, CommentedMap):
        doc = CommentedMap()
    items = doc.get(section)
    if not isinstance(items, CommentedSeq):
        items = CommentedSeq()
        doc[section] = items
    index = {str(e.get(key, "")).casefold(): e for e in items if isinstance(e, CommentedMap)}
    for entry in entries:
        existing = index.get(str(entry[key]).casefold())
        if existing is None:
            items.append(entry)
            continue
        for k, v in entry.items():
            if existing.get(k) != v:
                existing[k] = v
        for k in [k for k in existing if k not in entry]:
            del existing[k]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        y.dump(doc, fh)


def import_tenant(
    live: LiveState, out: Path, *, url: str, profile: str = "generic", split_by: str = "department"
) -> ImportResult:
    out.mkdir(parents=True, exist_ok=True)
    names = {str(u["id"]): str(u["userName"]) for u in live.users if u.get("userName")}
    member_of: dict[str, list[str]] = {}
    for g in live.groups:
        for m in g.get("members") or []:
            if isinstance(m, dict) and str(m.get("value")) in names:
                member_of.setdefault(str(m["value"]), []).append(str(g["displayName"]))
    attrs = _attributes(live)
    taken: set[str] = set()
    keys: dict[tuple[str, str], str] = {}
    for urn, attr in attrs:  # a name used by two schemas gets a qualified name
        keys[(urn, attr)] = attr if attr not in taken else f"{urn.rsplit(':', 2)[-2]}-{attr}"
        taken.add(keys[(urn, attr)])
    files: list[Path] = []
    tenant = out / "tenant.yaml"
    if not tenant.exists():
        tenant.write_text(
            "# Imported by `reconciler import`. Review auth before pointing this at production:\n"
            "# secrets are named by environment variable:\n"
            "#   auth: {type: bearer, token_env: SCIM_TOKEN}\n"
            f"url: {url}\nprofile: {profile}\n",
            encoding="utf-8",
        )
        files.append(tenant)
    if attrs:
        entries = []
        for urn, attr in attrs:
            e = CommentedMap([("name", keys[(urn, attr)])])
            schema = "enterprise" if urn == ENTERPRISE_USER else urn
            scim = CommentedMap([("schema", schema)])
            if keys[(urn, attr)] != attr:
                scim["path"] = attr
            e["scim"] = scim
            entries.append(e)
        _merge(out / "attributes.yaml", "attributes", entries, "name")
        files.append(out / "attributes.yaml")
    groups = []
    for g in sorted(live.groups, key=lambda g: str(g.get("displayName", "")).casefold()):
        e = CommentedMap([("displayName", g["displayName"])])
        if g.get("externalId"):
            e["externalId"] = str(g["externalId"])
        groups.append(e)
    if groups:
        _merge(out / "groups" / "groups.yaml", "groups", groups, "displayName")
        files.append(out / "groups" / "groups.yaml")
    by_file: dict[str, list[CommentedMap]] = {}
    for u in sorted(live.users, key=lambda u: str(u.get("userName", "")).casefold()):
        if not u.get("userName"):
            continue
        entry = _user(u, names, member_of.get(str(u["id"]), []), attrs, keys)
        by_file.setdefault(_file_key(u, split_by), []).append(entry)
    for name, entries in sorted(by_file.items()):
        path = out / "users" / f"{name}.yaml"
        _merge(path, "users", entries, "userName")
        files.append(path)
    return ImportResult(len(live.users), len(live.groups), len(attrs), files)
