"""Import a live tenant into desired-state YAML (onboarding: no team starts from zero).

Writes what the plan would compare, so a plan right after an import is empty: users (core
attributes, emails, phones, manager by userName, groups), groups, and the custom attributes
the tenant's /Schemas declare, with their types (see :mod:`reconciler.importer.entries` for
what is never written). Importing onto an existing directory updates entries in place,
wherever they live, and appends new ones, keeping comments, order and every key the import
does not own (see :mod:`reconciler.importer.directory`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from reconciler.desired.models import ENTERPRISE_USER
from reconciler.errors import InputError
from reconciler.importer.directory import (
    ATTRIBUTE_KEYS,
    GROUP_KEYS,
    Directory,
    flow,
    location,
    same,
    same_value,
    set_key,
)
from reconciler.importer.entries import (
    USER_KEYS,
    AttrDef,
    Declared,
    Entries,
    attributes,
    declared,
    entries,
    qualifier,
    split_key,
    split_value,
)
from reconciler.live import LiveState

__all__ = ["ImportResult", "declared", "import_tenant"]


@dataclass
class ImportResult:
    users: int
    groups: int
    attributes: int
    files: list[Path]  # written (new or changed)
    created: list[Path] = field(default_factory=list)
    unchanged: int = 0  # entries already as the tenant has them
    only_in_directory: list[str] = field(default_factory=list)  # users the tenant lacks
    skipped: list[str] = field(default_factory=list)  # attributes never written, and why
    unsplit: int = 0  # new users without a value of the split key (written to users/other)


def _tenant_yaml(url: str, profile: str, token_env: str | None) -> str:
    auth = (
        f"auth: {{type: bearer, token_env: {token_env}}}\n"
        if token_env
        else "# auth: {type: bearer, token_env: SCIM_TOKEN}  (secrets by variable name only)\n"
    )
    return (
        "# Imported by `reconciler import`. Review before pointing it at production.\n"
        f"url: {json.dumps(url)}\nprofile: {profile}\n{auth}"
    )


def _attribute_names(d: Directory, attrs: list[AttrDef]) -> list[AttrDef]:
    """Imported attributes keyed as the directory already names them (an attribute declared
    at the same schema and path keeps its name); a clash with another one gets qualified."""
    existing = {location(e): str(e.get("name")) for _, e in d.items("attributes")}
    names = set(existing.values())
    out = []
    for a in attrs:
        known = existing.get((a.urn, a.path.lower()))
        if known:
            out.append(dataclasses.replace(a, name=known))
            continue
        name = a.name
        if name in names:
            name = f"{qualifier(a.urn)}-{a.path}"
        names.add(name)
        out.append(dataclasses.replace(a, name=name))
    return out


def _merge_attributes(d: Directory, out: Path, attrs: list[AttrDef]) -> int:
    unchanged = 0
    existing = {location(e): (p, e) for p, e in d.items("attributes")}
    target = d.first_with("attributes") or out / "attributes.yaml"
    for a in attrs:
        found = existing.get((a.urn, a.path.lower()))
        if found is None:
            e = CommentedMap([("name", a.name)])
            if a.type != "string":
                e["type"] = a.type
            if a.multi_valued:
                e["multi_valued"] = True
            if a.case_exact:
                e["case_exact"] = True
            if a.description:
                e["description"] = a.description
            scim: dict[str, Any] = {"schema": "enterprise" if a.urn == ENTERPRISE_USER else a.urn}
            if a.path != a.name:
                scim["path"] = a.path
            e["scim"] = flow(scim)
            d.append(target, "attributes", e)
            continue
        path, entry = found
        changed = False
        if a.declared:  # the tenant's schema is the truth about type and cardinality
            if str(entry.get("type", "string")) != a.type:
                set_key(entry, "type", a.type, ATTRIBUTE_KEYS)
                changed = True
            if bool(entry.get("multi_valued", False)) != a.multi_valued:
                set_key(entry, "multi_valued", a.multi_valued, ATTRIBUTE_KEYS)
                changed = True
        if changed:
            d.dirty.add(path)
        else:
            unchanged += 1
    return unchanged


def _merge_groups(
    d: Directory,
    out: Path,
    found: Entries,
    match: Mapping[str, tuple[Path, CommentedMap]],
    renames: Mapping[str, str],
) -> int:
    unchanged = 0
    target = d.first_with("groups") or out / "groups" / "groups.yaml"
    for g in found.groups:
        key = g["displayName"].casefold()
        if key not in match:
            d.append(target, "groups", CommentedMap(g))
            continue
        path, entry = match[key]
        changed = False
        for k in ("displayName", "externalId"):
            if g.get(k) is None and k in entry:
                del entry[k]
                changed = True
            elif g.get(k) is not None and str(entry.get(k)) != g[k]:
                set_key(entry, k, g[k], GROUP_KEYS)
                changed = True
        if "members" in entry:  # memberships listed on the group stay there
            old = [str(m) for m in entry.get("members") or []]
            now = found.members.get(key, [])
            if not same("groups", old, now):  # compared as case-blind sets
                _update_list(entry, "members", now, renames)
                changed = True
        if changed:
            d.dirty.add(path)
        else:
            unchanged += 1
    return unchanged


def _update_list(entry: CommentedMap, key: str, now: list[str], renames: Mapping[str, str]) -> None:
    """Make ``entry[key]`` hold ``now``, editing the list in place (its style and the
    comments on the items that stay are kept): renamed items renamed where they are, gone
    ones removed, new ones appended."""
    seq = entry.get(key)
    if not isinstance(seq, CommentedSeq):
        entry[key] = flow(now)
        return
    for i, item in enumerate(seq):
        if str(item).casefold() in renames:
            seq[i] = flow(renames[str(item).casefold()])
    wanted = {n.casefold() for n in now}
    for i in reversed(range(len(seq))):
        if str(seq[i]).casefold() not in wanted:
            del seq[i]
    have = {str(m).casefold() for m in seq}
    seq.extend(flow(m) for m in now if m.casefold() not in have)


def _user_yaml(entry: dict[str, Any]) -> CommentedMap:
    """A new user as the sample desired-state writes one: custom attributes in block style,
    short lists and name parts in flow style."""
    m = CommentedMap()
    for k, v in entry.items():
        m[k] = CommentedMap((a, flow(x)) for a, x in v.items()) if k == "attributes" else flow(v)
    return m


def _merge_user(
    entry: CommentedMap, new: dict[str, Any], owned: set[str], renames: Mapping[str, str]
) -> bool:
    changed = False
    for key in USER_KEYS:
        if key == "attributes":
            changed |= _merge_user_attributes(entry, new.get("attributes", {}), owned)
        elif same(key, entry.get(key), new.get(key)):
            continue
        elif key not in new:
            del entry[key]
            changed = True
        elif key == "groups":
            _update_list(entry, key, new[key], renames)
            changed = True
        else:
            set_key(entry, key, flow(new[key]), USER_KEYS)
            changed = True
    return changed


def _merge_user_attributes(entry: CommentedMap, new: dict[str, Any], owned: set[str]) -> bool:
    values = entry.get("attributes")
    if not isinstance(values, dict):
        if not new:
            return False
        set_key(entry, "attributes", CommentedMap((k, flow(v)) for k, v in new.items()), USER_KEYS)
        return True
    changed = False
    for k in [k for k in values if k in owned and k not in new]:
        del values[k]
        changed = True
    for k, v in new.items():
        if k not in values or not same_value(values[k], v):
            values[k] = flow(v)
            changed = True
    if not values:
        del entry["attributes"]
    return changed


def _match(
    d: Directory, section: str, key: str, wanted: list[tuple[str, str | None]]
) -> tuple[dict[str, tuple[Path, CommentedMap]], dict[str, str]]:
    """Existing entries for ``wanted`` (name, externalId) pairs, by externalId first, then
    by name (case-blind), keyed by the casefolded name; and the renames this reveals
    (old name casefolded -> new name)."""
    by_id = {str(e["externalId"]): (p, e) for p, e in d.items(section) if e.get("externalId")}
    by_name = {str(e.get(key, "")).casefold(): (p, e) for p, e in d.items(section)}
    found, renames = {}, {}
    for name, external in wanted:
        match = (by_id.get(external) if external else None) or by_name.get(name.casefold())
        if match is not None:
            found[name.casefold()] = match
            old = str(match[1].get(key, ""))
            if old != name:
                renames[old.casefold()] = name
    return found, renames


def import_tenant(
    live: LiveState,
    out: Path,
    *,
    url: str,
    profile: str = "generic",
    split_by: str = "department",
    schemas: Mapping[tuple[str, str], Declared] | None = None,
    token_env: str | None = None,
) -> ImportResult:
    """Write ``live`` into ``out``; ``schemas`` is the tenant's /Schemas (see
    :func:`declared`), for the custom attributes' types and the ones never to write."""
    d = Directory(out)
    live_groups = [
        (str(g["displayName"]), str(g["externalId"]) if g.get("externalId") else None)
        for g in live.groups
        if g.get("displayName")
    ]
    live_users = [
        (str(u["userName"]), str(u["externalId"]) if u.get("externalId") else None)
        for u in live.users
        if u.get("userName")
    ]
    group_match, group_renames = _match(d, "groups", "displayName", live_groups)
    user_match, user_renames = _match(d, "users", "userName", live_users)
    member_lists = {name for name, (_, e) in group_match.items() if "members" in e}
    chosen = attributes(live, schemas or {})
    attrs = _attribute_names(d, chosen.attributes)
    found = entries(live, attrs, member_lists=member_lists)
    owned = {a.name for a in attrs}
    created: list[Path] = []
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create {out}: {exc.strerror}",
            "pass --out a directory that can be created (its parents must be directories)",
        ) from exc
    tenant = out / "tenant.yaml"
    if not tenant.exists():
        tenant.write_text(_tenant_yaml(url, profile, token_env), encoding="utf-8")
        created.append(tenant)
    unchanged = _merge_attributes(d, out, attrs)
    unchanged += _merge_groups(d, out, found, group_match, user_renames)
    seen: set[int] = set()  # existing entries the tenant has (by identity)
    unsplit = 0
    for entry, raw in found.users:
        match = user_match.get(entry["userName"].casefold())
        if match is None:
            new = _user_yaml(entry)
            d.append(out / "users" / f"{split_key(raw, split_by)}.yaml", "users", new)
            unsplit += split_by != "none" and split_value(raw, split_by) is None
            seen.add(id(new))
            continue
        path, existing = match
        seen.add(id(existing))
        if _merge_user(existing, entry, owned, group_renames):
            d.dirty.add(path)
        else:
            unchanged += 1
    only = sorted(
        (str(e.get("userName")) for _, e in d.items("users") if id(e) not in seen),
        key=str.casefold,
    )
    written = d.save()
    return ImportResult(
        users=len(found.users),
        groups=len(found.groups),
        attributes=len(attrs),
        files=created + written,
        created=created + sorted(d.created),
        unchanged=unchanged,
        only_in_directory=only,
        skipped=chosen.skipped + found.dropped,
        unsplit=unsplit,
    )
