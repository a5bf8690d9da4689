"""Semantic history: for each commit that changed an entity's *effective* state — its own
attributes, its memberships, or its grants through rules — what changed, and why.

Grants come from rules, so a rule edit changes access without touching a user's file; the
history follows effective access, not lines. A user (or a group) is followed across a rename
by its externalId.

What keeps it fast over thousands of commits of thousands of users:

- A file version (a blob) is split into its list items by indentation, and only the items
  that mention the entity (a byte search) are parsed; an item is parsed once by its text, so
  a new version of a file costs only the items that changed in it.
- A commit is evaluated only when it changes a file version that can matter: one that
  mentions the entity, or (for a user) one that holds groups or rules.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, ValidationError

from reconciler.audit.gitlog import Blobs, Commit
from reconciler.desired.models import SINGLE_GRANTS, Attribute, Group, Rule, User
from reconciler.desired.yamlsource import YamlProblem, decode, parse
from reconciler.plan.rules import _access

YAML_SUFFIXES = (".yaml", ".yml")
MODELS: dict[str, type[BaseModel]] = {
    "users": User,
    "groups": Group,
    "rules": Rule,
    "attributes": Attribute,
}
MASK = "(sensitive)"

# Top-level lines, each found after a newline (the data is searched as b"\n" + data).
_TOP = re.compile(rb"\n(users|groups|rules|attributes):([^\n]*)")
_ANY_TOP = re.compile(rb"\n[^\s#-]")
_FIRST_ITEM = re.compile(rb"\n( *)- ")
# A rule's own priority line: at the indentation of the item's keys, a plain decimal.
_PRIORITY = re.compile(rb"\n( *)priority: ([1-9][0-9]{0,8})[ \t]*(?=\n|$)")
_BLANK_OR_COMMENT = re.compile(rb"(?:[ \t]*(?:#[^\n]*)?\n?)*")


@dataclass
class Entry:
    commit: Commit
    changes: list[tuple[str, Any, Any]]
    causes: list[str]
    receipt: str = ""
    approvers: list[str] = field(default_factory=list)


def _split(data: bytes) -> dict[str, list[bytes]] | None:
    """The items of each block-style section of a file version, each as its own YAML text
    (still indented: an indented block sequence is valid YAML on its own); None for another
    layout (flow style, …), which is then parsed whole."""
    text = b"\n" + data
    out: dict[str, list[bytes]] = {}
    tops = [m.start() for m in _ANY_TOP.finditer(text)] + [len(text)]
    for m in _TOP.finditer(text):
        rest = m.group(2).strip()
        if rest and not rest.startswith(b"#"):
            return None  # a flow-style or scalar value on the header line
        end = next(t for t in tops if t > m.start())
        body = text[m.end() : end]
        first = _FIRST_ITEM.search(body)
        items: list[bytes] = []
        if first is None:
            if not _BLANK_OR_COMMENT.fullmatch(body.lstrip(b"\n")):
                return None
        else:
            if not _BLANK_OR_COMMENT.fullmatch(body[: first.start()].lstrip(b"\n")):
                return None
            lead = first.group(1) + b"- "
            pieces = body[first.start() :].split(b"\n" + lead)
            items = [lead + piece for piece in pieces[1:]]
        out.setdefault(m.group(1).decode(), []).extend(items)
    return out


def _shape(item: bytes) -> tuple[bytes, int] | None:
    """(the item with its own priority blanked, the priority), or None when the priority is
    not a plain line at the item's key indentation."""
    m = _PRIORITY.search(item)
    if m is None or len(m.group(1)) != item.index(b"- ") + 2:
        return None
    return item[: m.start(2)] + item[m.end(2) :], int(m.group(2))


def _whole(data: bytes) -> dict[str, list[bytes]]:
    """Items of a file in any layout, each re-serialised as JSON (which is YAML)."""
    try:
        raw = parse(decode(data))
    except YamlProblem:
        return {}
    out: dict[str, list[bytes]] = {}
    if isinstance(raw, dict):
        for section in MODELS:
            values = raw.get(section)
            if isinstance(values, list):
                out[section] = [json.dumps([v], default=str).encode() for v in values]
    return out


class Snapshot:
    """The desired-state directory replayed commit by commit, with parsed-item caches."""

    def __init__(self, blobs: Blobs, directory: str) -> None:
        self.blobs = blobs
        self.directory = directory.rstrip("/")
        self.tree: dict[str, str] = {}
        self._sections: dict[str, frozenset[str]] = {}
        self._items: dict[str, dict[str, list[bytes]]] = {}
        self._models: dict[tuple[str, bytes], Any] = {}
        # Rules by their text with the priority blanked: reordering rules rewrites many
        # priority lines, and a rule that differs from a parsed one only there is not parsed
        # again (its priority is a plain decimal, so the value is exactly int(text)).
        self._shapes: dict[bytes, Rule] = {}
        self._found: dict[tuple[str, str, frozenset[bytes] | None], list[Any]] = {}
        self._rules: tuple[tuple[str, ...], list[Rule]] = ((), [])
        # Derived views of the tree, recomputed only after it changes.
        self._paths: list[tuple[str, str]] | None = None
        self._holders: dict[str, set[str]] = {section: set() for section in MODELS}
        self._with: dict[str, list[str]] = {}
        # Attributes masked whatever the commit says (those sensitive at HEAD): an attribute
        # declared sensitive later was no less sensitive before.
        self.also_sensitive: set[str] = set()

    def tracked(self, path: str) -> bool:
        return (
            path.endswith(YAML_SUFFIXES)
            and PurePosixPath(path).name != "tenant.yaml"
            and not _hidden(path, self.directory)
        )

    def apply(self, commit: Commit) -> list[str]:
        """Replay ``commit``; returns the blobs it replaced or added (old and new versions)."""
        touched: list[str] = []
        for path, blob in commit.changes.items():
            if self.tracked(path):
                old = self._put(path, blob)
                touched += [b for b in (old, blob) if b]
        return touched

    def reset(self, tree: dict[str, str]) -> None:
        for path, blob in tree.items():
            if self.tracked(path):
                self._put(path, blob)

    def _put(self, path: str, blob: str | None) -> str | None:
        old = self.tree.pop(path, None)
        for holders in self._holders.values():
            holders.discard(path)
        if blob is not None:
            self.tree[path] = blob
            for section in self.sections(blob):
                self._holders[section].add(path)
        self._paths, self._with = None, {}
        return old

    def paths(self) -> list[tuple[str, str]]:
        if self._paths is None:
            self._paths = sorted(self.tree.items())
        return self._paths

    def sections(self, blob: str) -> frozenset[str]:
        """Top-level sections of a file version (``users``, ``groups``, …), found once."""
        found = self._sections.get(blob)
        if found is None:
            data = self.blobs.get(blob)
            found = frozenset(m.group(1).decode() for m in _TOP.finditer(b"\n" + data))
            if not found and b"{" in data:  # flow style: ask the parser
                found = frozenset(_whole(data))
            self._sections[blob] = found
        return found

    def items(self, blob: str, section: str) -> list[bytes]:
        split = self._items.get(blob)
        if split is None:
            data = self.blobs.get(blob)
            split = _split(data)
            if not split:  # no block-style section: flow style, JSON, or nothing to find
                split = _whole(data)
            self._items[blob] = split
        return split.get(section, [])

    def models(self, blob: str, section: str, needles: frozenset[bytes] | None = None) -> list[Any]:
        """The valid items of ``section`` in a file version that contain one of ``needles``
        (every item when ``needles`` is None). An invalid item is left out, not fatal."""
        key = (blob, section, needles)
        found = self._found.get(key)
        if found is not None:
            return found
        found = []
        for text in self.items(blob, section):
            if needles is not None:
                lowered = text.lower()
                if not any(n in lowered for n in needles):
                    continue
            model = self._model(section, text)
            if model is not None:
                found.append(model)
        self._found[key] = found
        return found

    def _model(self, section: str, text: bytes) -> Any:
        key = (section, text)
        if key in self._models:
            return self._models[key]
        shape = _shape(text) if section == "rules" else None
        like = self._shapes.get(shape[0]) if shape else None
        if shape and like is not None:
            model: Any = like.model_copy(update={"priority": shape[1]})
        else:
            try:
                raw = parse(decode(text))
                model = (
                    MODELS[section].model_validate(raw[0])
                    if isinstance(raw, list) and len(raw) == 1 and isinstance(raw[0], dict)
                    else None
                )
            except (YamlProblem, ValidationError, ValueError, TypeError):
                model = None
            if shape and model is not None:
                self._shapes[shape[0]] = model
        self._models[key] = model
        return model

    def with_section(self, section: str) -> list[str]:
        found = self._with.get(section)
        if found is None:
            found = self._with[section] = [self.tree[p] for p in sorted(self._holders[section])]
        return found

    def rules(self) -> list[Rule]:
        blobs = tuple(self.with_section("rules"))
        if blobs != self._rules[0]:
            rules = [r for b in blobs for r in self.models(b, "rules")]
            self._rules = (blobs, sorted(rules, key=lambda r: r.priority))
        return self._rules[1]

    def sensitive(self) -> set[str]:
        return self.also_sensitive | {
            a.name for b in self.with_section("attributes") for a in self.models(b, "attributes")
            if a.sensitive
        }  # fmt: skip


def _hidden(path: str, directory: str) -> bool:
    rel = (
        PurePosixPath(path).relative_to(directory)
        if directory and path.startswith(directory + "/")
        else PurePosixPath(path)
    )
    return any(part.startswith(".") for part in rel.parts)


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
