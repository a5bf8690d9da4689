"""Semantic history: for each commit that changed an entity's *effective* state — its own
attributes, its memberships, or its grants through rules — what changed, and why.

Grants come from rules, so a rule edit changes access without touching a user's file; the
history follows effective access, not lines. A user is followed across a userName change by
its externalId. Each blob is parsed at most once; for a user, a users file is only parsed where
the user appears in it (a byte search), and then only the user's own entry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, ValidationError

from reconciler.audit.gitlog import Blobs, Commit
from reconciler.desired.models import Document, Rule, User
from reconciler.desired.yamlsource import YamlProblem, decode, parse
from reconciler.plan.rules import _access

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass
class Entry:
    commit: Commit
    changes: list[tuple[str, Any, Any]]
    causes: list[str]
    receipt: str = ""
    approvers: list[str] = field(default_factory=list)


class Snapshot:
    """The desired-state directory replayed commit by commit, with parsed-blob caches."""

    def __init__(self, blobs: Blobs, directory: str) -> None:
        self.blobs = blobs
        self.directory = directory.rstrip("/")
        self.tree: dict[str, str] = {}
        self._docs: dict[str, Document | None] = {}
        self._sections: dict[str, frozenset[bytes]] = {}
        # A file version differs from the last by an item or two (a priority swap, an edit):
        # items are parsed once by their text, so a new version costs only what changed.
        self._items: dict[bytes, Any] = {}

    def sections(self, blob: str) -> frozenset[bytes]:
        """Top-level sections of a file version (``users``, ``groups``, …), found once."""
        found = self._sections.get(blob)
        if found is None:
            found = frozenset(_SECTION.findall(self.blobs.get(blob)))
            self._sections[blob] = found
        return found

    def apply(self, commit: Commit) -> None:
        for path, blob in commit.changes.items():
            if blob is None:
                self.tree.pop(path, None)
            elif path.endswith(YAML_SUFFIXES) and not _hidden(path, self.directory):
                self.tree[path] = blob

    def doc(self, blob: str) -> Document | None:
        if blob not in self._docs:
            data = self.blobs.get(blob)
            self._docs[blob] = _items_document(data, self._items) or _document(data)
        return self._docs[blob]

    def docs(self) -> Iterator[Document]:
        for path, blob in sorted(self.tree.items()):
            if PurePosixPath(path).name == "tenant.yaml":
                continue
            d = self.doc(blob)
            if d is not None:
                yield d

    def rules(self) -> list[Rule]:
        return sorted((r for d in self._rule_docs() for r in d.rules), key=lambda r: r.priority)

    def _rule_docs(self) -> Iterator[Document]:
        for _, blob in sorted(self.tree.items()):
            if self.sections(blob) & {b"rules", b"groups", b"attributes"}:
                d = self.doc(blob)
                if d is not None:
                    yield d

    def group_docs(self) -> Iterator[Document]:
        yield from self._rule_docs()


_SECTION = re.compile(rb"^(users|groups|rules|attributes):", re.MULTILINE)


def _hidden(path: str, directory: str) -> bool:
    rel = (
        PurePosixPath(path).relative_to(directory)
        if path.startswith(directory + "/")
        else PurePosixPath(path)
    )
    return any(part.startswith(".") for part in rel.parts)


def _document(data: bytes) -> Document | None:
    try:
        raw = parse(decode(data))
        if not isinstance(raw, dict):
            return None
        return Document.model_validate(
            {k: v for k, v in raw.items() if k in ("users", "groups", "rules", "attributes")}
        )
    except (YamlProblem, ValidationError):
        return None


_DASH = re.compile(rb"^(\s*)- ")
_MODELS: dict[bytes, type[BaseModel]] = {b"users": User, b"rules": Rule}


def _items_document(data: bytes, cache: dict[bytes, Any]) -> Document | None:
    """A document parsed item by item (block lists only); None when the layout is other."""
    from reconciler.desired.models import Attribute, Group

    models: dict[bytes, type[BaseModel]] = {**_MODELS, b"groups": Group, b"attributes": Attribute}
    lines = data.split(b"\n")
    sections: dict[str, list[Any]] = {}
    current: bytes | None = None
    block: list[bytes] = []
    dash = -1

    def flush() -> bool:
        if current is None or not block:
            return True
        text = b"\n".join(x[dash:] for x in block)
        if text not in cache:
            try:
                raw = parse(decode(text))
                cache[text] = (
                    models[current].model_validate(raw[0])
                    if isinstance(raw, list) and raw
                    else None
                )
            except (YamlProblem, ValidationError, TypeError, KeyError):
                cache[text] = None
        if cache[text] is None:
            return False
        sections[current.decode()].append(cache[text])
        return True

    for line in lines:
        if not line.strip() or line.lstrip().startswith(b"#"):
            if block:
                block.append(line)
            continue
        top = _SECTION.match(line)
        if top and line.rstrip().endswith(b":"):
            if not flush():
                return None
            current, block, dash = top.group(1), [], -1
            sections.setdefault(current.decode(), [])
            continue
        if current is None:
            return None
        m = _DASH.match(line)
        if m and (dash < 0 or len(m.group(1)) == dash):
            if not flush():
                return None
            dash, block = len(m.group(1)), [line]
        elif block:
            block.append(line)
        else:
            return None
    if not flush():
        return None
    try:
        return Document.model_construct(None, **sections)
    except (TypeError, ValueError):
        return None


def _user_entries(data: bytes, needles: Iterable[bytes]) -> Iterator[User]:
    """Entries of a users file that contain a needle, each parsed alone (files hold thousands
    of users; the others are never parsed)."""
    lines = data.split(b"\n")
    lowered = [line.lower() for line in lines]
    seen: set[int] = set()
    for i, line in enumerate(lowered):
        if not any(n in line for n in needles):
            continue
        key_col = len(lines[i]) - len(lines[i].lstrip())
        start = i
        while start >= 0:
            m = _DASH.match(lines[start])
            if m and len(m.group(1)) <= key_col:
                break
            start -= 1
        if start < 0 or start in seen:
            continue
        seen.add(start)
        dash = len(_DASH.match(lines[start]).group(1))  # type: ignore[union-attr]
        end = start + 1
        while end < len(lines):
            text = lines[end]
            indent = len(text) - len(text.lstrip())
            if text.strip() and (
                indent < dash or (indent == dash and text.lstrip().startswith(b"- "))
            ):
                break
            end += 1
        block = b"\n".join(x[dash:] for x in lines[start:end])
        try:
            raw = parse(decode(block))
            if isinstance(raw, list) and raw and isinstance(raw[0], dict):
                yield User.model_validate(raw[0])
        except (YamlProblem, ValidationError):
            continue


class UserTracker:
    """Finds one user at each commit; follows userName changes through a stable externalId."""

    def __init__(self, name: str) -> None:
        self.names = {name.casefold()}
        self.external: str | None = None
        self._hits: dict[str, bool] = {}
        self._key: frozenset[bytes] = frozenset()

    def needles(self) -> set[bytes]:
        out = {f"userName: {n}".encode() for n in self.names}
        out |= {f"userName: '{n}'".encode() for n in self.names}
        out |= {f'userName: "{n}"'.encode() for n in self.names}
        if self.external:
            out |= {f"externalId: {q}{self.external}{q}".encode() for q in ("", "'", '"')}
        return out

    def find(self, snap: Snapshot) -> User | None:
        needles = frozenset(n.lower() for n in self.needles())
        if needles != self._key:
            self._hits, self._key = {}, needles
        for _, blob in sorted(snap.tree.items()):
            hit = self._hits.get(blob)
            if hit is None:
                lowered = snap.blobs.get(blob).lower()
                hit = self._hits[blob] = any(n in lowered for n in needles)
            if not hit:
                continue
            data = snap.blobs.get(blob)
            for user in _user_entries(data, needles):
                if user.userName.casefold() in self.names or (
                    self.external is not None and user.externalId == self.external
                ):
                    self.names.add(user.userName.casefold())
                    self.external = user.externalId or self.external
                    return user
        return None


def user_view(snap: Snapshot, tracker: UserTracker) -> dict[str, Any] | None:
    user = tracker.find(snap)
    if user is None:
        return None
    name = user.userName.casefold()
    groups = {g.casefold(): g for g in user.groups}
    for d in snap.group_docs():
        for g in d.groups:
            if any(m.casefold() in tracker.names for m in g.members):
                groups[g.displayName.casefold()] = g.displayName
    access = _access(snap.rules(), user, frozenset(groups))
    own = user.model_dump(
        exclude={"groups", "attributes"}, exclude_none=True, exclude_defaults=True
    )
    del name
    return {
        **{k: v for k, v in own.items() if k != "userName"},
        "userName": user.userName,
        "active": user.active,
        "attributes": dict(user.attributes),
        "groups": sorted(groups.values(), key=str.casefold),
        "grants": access.as_dict(),
        "_because": {
            f"{k}:{v}": access.explain(k, v)
            for k, vals in access.as_dict().items()
            for v in (vals if isinstance(vals, list) else [vals])
            if v
        },
    }


def group_view(snap: Snapshot, name: str) -> dict[str, Any] | None:
    key = name.casefold()
    found = None
    members: set[str] = set()
    for d in snap.docs():
        for g in d.groups:
            if g.displayName.casefold() == key:
                found = g
                members |= set(g.members)
        for u in d.users:
            if any(x.casefold() == key for x in u.groups):
                members.add(u.userName)
    if found is None:
        return None
    return {
        "displayName": found.displayName,
        "externalId": found.externalId,
        "description": found.description,
        "members": sorted(members, key=str.casefold),
    }


def rule_view(snap: Snapshot, name: str) -> dict[str, Any] | None:
    for r in snap.rules():
        if r.name.casefold() == name.casefold():
            return r.model_dump(exclude_none=True)
    return None


def flatten(view: dict[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in (view or {}).items():
        if k.startswith("_") or v in ([], "", None):
            continue
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def rule_causes(before: list[Rule], after: list[Rule]) -> list[str]:
    old = {r.name: r for r in before}
    new = {r.name: r for r in after}
    causes = []
    for n in sorted(old.keys() | new.keys()):
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


def causes_for(
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    changes: list[tuple[str, Any, Any]],
    rules_before: list[Rule],
    rules_after: list[Rule],
    kind: str,
) -> list[str]:
    if before is None:
        return ["added to desired-state"]
    if after is None:
        return ["removed from desired-state"]
    out: list[str] = []
    if kind == "user":
        old_g, new_g = set(before["groups"]), set(after["groups"])
        out += [f"added to group {g}" for g in sorted(new_g - old_g)]
        out += [f"removed from group {g}" for g in sorted(old_g - new_g)]
        if any(f.startswith("grants.") for f, _, _ in changes):
            out += rule_causes(rules_before, rules_after)
            for f, _, new in changes:
                if f.startswith("grants.") and new:
                    for v in new if isinstance(new, list) else [new]:
                        why = after["_because"].get(f"{f.removeprefix('grants.')}:{v}")
                        if why:
                            out.append(f"{f.removeprefix('grants.')} {v} from {why}")
    if kind == "group":
        old_m, new_m = set(before["members"]), set(after["members"])
        out += [f"{m} added" for m in sorted(new_m - old_m)]
        out += [f"{m} removed" for m in sorted(old_m - new_m)]
    out += [
        f"{f} changed" for f, _, _ in changes if not f.startswith(("grants.", "groups", "members"))
    ]
    return list(dict.fromkeys(out))
