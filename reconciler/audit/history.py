"""Semantic history: for each commit that changed an entity's *effective* state — its own
attributes, its memberships, or its grants through rules — what changed, and why.

Grants come from rules, so a rule edit changes access without touching a user's file; the
history follows effective access, not lines. A user (or a group) is followed across a rename
by its externalId. A commit is evaluated only when it changes a file version that can matter
(:mod:`reconciler.audit.run`): one that mentions the entity, or, for a user, one that holds
groups or rules; file versions are read through :class:`~reconciler.audit.snapshot.Snapshot`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from reconciler.audit.gitlog import Commit
from reconciler.audit.snapshot import Snapshot
from reconciler.desired.models import SINGLE_GRANTS, Group, Rule, User
from reconciler.plan.rules import _access

MASK = "(sensitive)"


@dataclass
class Entry:
    commit: Commit
    changes: list[tuple[str, Any, Any]]
    causes: list[str]
    receipt: str = ""
    approvers: list[str] = field(default_factory=list)


def _needles(values: Iterable[str]) -> frozenset[bytes]:
    """Byte strings to look for: each value as written plain, or single-quoted in YAML."""
    out = set()
    for v in values:
        low = v.casefold()
        out.add(low.encode())
        if "'" in low:
            out.add(low.replace("'", "''").encode())
    return frozenset(out)


class Tracker:
    """Finds one user or group at each commit by name, and follows it across a rename
    through a stable externalId: each name it is found under is remembered."""

    def __init__(self, section: str, key: str, name: str) -> None:
        self.section, self.key = section, key
        self.names = {name.casefold()}
        self.external: str | None = None
        self.needles = _needles(self.names)
        self._hits: dict[str, bool] = {}

    def hit(self, snap: Snapshot, blob: str) -> bool:
        """Whether a file version mentions the entity at all (cheap: one byte search)."""
        hit = self._hits.get(blob)
        if hit is None:
            data = snap.blobs.get(blob).lower()
            hit = self._hits[blob] = any(n in data for n in self.needles)
        return hit

    def _learn(self, name: str, external: str | None) -> None:
        before = (frozenset(self.names), self.external)
        self.names.add(name.casefold())
        self.external = external or self.external
        if (frozenset(self.names), self.external) != before:
            extra = [self.external] if self.external else []
            self.needles = _needles([*self.names, *extra])
            self._hits = {}

    def find(self, snap: Snapshot) -> Any:
        for _, blob in snap.paths():
            if not self.hit(snap, blob):
                continue
            for item in snap.models(blob, self.section, self.needles):
                name = getattr(item, self.key)
                if name.casefold() in self.names or (
                    self.external is not None and item.externalId == self.external
                ):
                    self._learn(name, item.externalId)
                    return item
        return None


def user_view(snap: Snapshot, tracker: Tracker) -> dict[str, Any] | None:
    user: User | None = tracker.find(snap)
    if user is None:
        return None
    groups = {g.casefold(): g for g in user.groups}
    via_members: set[str] = set()
    for blob in snap.with_section("groups"):
        for g in snap.models(blob, "groups", tracker.needles):
            if any(m.casefold() in tracker.names for m in g.members):
                groups[g.displayName.casefold()] = g.displayName
                via_members.add(g.displayName.casefold())
    access = _access(snap.rules(), user, frozenset(groups))
    own = user.model_dump(
        exclude={"groups", "attributes", "userName"}, exclude_none=True, exclude_defaults=True
    )
    sensitive = snap.sensitive()
    grants = access.as_dict()
    return {
        **own,
        "userName": user.userName,
        "active": user.active,
        "attributes": dict(user.attributes),
        "groups": sorted(groups.values(), key=str.casefold),
        "grants": grants,
        "_because": {
            f"{k}:{v}": access.explain(k, v)
            for k, vals in grants.items()
            for v in (vals if isinstance(vals, list) else [vals])
            if v
        },
        "_rules": list(access.rules),
        "_via_members": via_members,
        "_sensitive": {f"attributes.{k}" for k in user.attributes if k in sensitive},
    }


def group_view(snap: Snapshot, tracker: Tracker) -> dict[str, Any] | None:
    found: Group | None = tracker.find(snap)
    if found is None:
        return None
    members: set[str] = set(found.members)
    for _, blob in snap.paths():
        if not tracker.hit(snap, blob):
            continue
        for g in snap.models(blob, "groups", tracker.needles):
            if g.displayName.casefold() in tracker.names and g is not found:
                members |= set(g.members)
        for u in snap.models(blob, "users", tracker.needles):
            if any(x.casefold() in tracker.names for x in u.groups):
                members.add(u.userName)
    return {
        "displayName": found.displayName,
        "externalId": found.externalId,
        "description": found.description,
        "members": sorted(members, key=str.casefold),
    }


def rule_view(snap: Snapshot, name: str) -> dict[str, Any] | None:
    for r in snap.rules():
        if r.name.casefold() == name.casefold():
            return r.model_dump(exclude_none=True, exclude_defaults=True) | {
                "name": r.name,
                "priority": r.priority,
            }
    return None


def flatten(view: dict[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in (view or {}).items():
        if k.startswith("_") or v in ([], "", None, {}):
            continue
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def rule_causes(before: list[Rule], after: list[Rule], only: set[str] | None = None) -> list[str]:
    """What changed in the rules (limited to the rules named in ``only``, when given)."""
    old = {r.name: r for r in before}
    new = {r.name: r for r in after}
    causes = []
    for n in sorted(old.keys() | new.keys()):
        if only is not None and n not in only:
            continue
        a, b = old.get(n), new.get(n)
        if a is None:
            causes.append(f"rule '{n}' added")
        elif b is None:
            causes.append(f"rule '{n}' removed")
        elif a.priority != b.priority:
            causes.append(f"rule '{n}' priority changed ({a.priority} → {b.priority})")
        elif a != b:
            causes.append(f"rule '{n}' changed")
    return causes


def _values(v: Any) -> list[Any]:
    if v in (None, "", []):
        return []
    return list(v) if isinstance(v, list) else [v]


def _grant_causes(
    before: dict[str, Any] | None, after: dict[str, Any], changes: list[tuple[str, Any, Any]]
) -> Iterator[str]:
    for f, old, new in changes:
        if not f.startswith("grants."):
            continue
        grant = f.removeprefix("grants.")
        gone = [v for v in _values(old) if v not in _values(new)]
        for v in _values(new):
            if v in _values(old):
                continue
            why = after["_because"].get(f"{grant}:{v}")
            if why:
                yield f"{grant} {v} from {why}"
        for v in gone:
            why = (before or {}).get("_because", {}).get(f"{grant}:{v}")
            if not why:
                continue
            if grant in SINGLE_GRANTS and _values(new):
                yield f"{grant} {v} replaced (it was from {why})"
            else:
                yield f"{grant} {v} no longer granted (it was from {why})"


def causes_for(
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    changes: list[tuple[str, Any, Any]],
    rules_before: list[Rule],
    rules_after: list[Rule],
    kind: str,
) -> list[str]:
    if after is None:
        return ["removed from desired-state"]
    out: list[str] = []
    if before is None:
        out.append("added to desired-state")
    if kind == "user":
        if before is not None:
            old_g, new_g = set(before["groups"]), set(after["groups"])
            for g in sorted(new_g - old_g, key=str.casefold):
                where = (
                    " (in the group's members list)"
                    if g.casefold() in after["_via_members"]
                    else ""
                )
                out.append(f"added to group {g}{where}")
            for g in sorted(old_g - new_g, key=str.casefold):
                where = (
                    " (from the group's members list)"
                    if g.casefold() in before["_via_members"]
                    else ""
                )
                out.append(f"removed from group {g}{where}")
        if any(f.startswith("grants.") for f, _, _ in changes):
            if before is not None:
                mine = set(before["_rules"]) | set(after["_rules"])
                out += rule_causes(rules_before, rules_after, mine)
            out += _grant_causes(before, after, changes)
    if kind == "group" and before is not None:
        old_m, new_m = set(before["members"]), set(after["members"])
        out += [f"{m} added" for m in sorted(new_m - old_m, key=str.casefold)]
        out += [f"{m} removed" for m in sorted(old_m - new_m, key=str.casefold)]
    if before is not None:
        out += [
            f"{f} changed"
            for f, _, _ in changes
            if not f.startswith(("grants.", "groups", "members"))
        ]
    return list(dict.fromkeys(out))


def field_changes(
    before: dict[str, Any] | None, after: dict[str, Any] | None
) -> list[tuple[str, Any, Any]]:
    """(field, before, after) of every flattened field that differs; the values of sensitive
    attributes are compared but never shown."""
    old, new = flatten(before), flatten(after)
    hidden = set((before or {}).get("_sensitive", ())) | set((after or {}).get("_sensitive", ()))
    out = []
    for k in sorted(old.keys() | new.keys()):
        a, b = old.get(k), new.get(k)
        if a == b:
            continue
        if k in hidden:
            a, b = (MASK if a is not None else None), (MASK if b is not None else None)
        out.append((k, a, b))
    return out
