"""The desired-state directory replayed commit by commit from git blobs, parsed lazily.

A file version (a blob) is split into its list items by indentation, and only the items a
caller asks for (those that mention an entity: a byte search) are parsed; an item is parsed
once by its text, so a new version of a file costs only the items that changed in it. Any
other layout (flow style, JSON) is parsed whole, once.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ValidationError

from reconciler.audit.gitlog import Blobs, Commit
from reconciler.desired.models import Attribute, Group, Rule, User
from reconciler.desired.yamlsource import YamlProblem, decode, parse

YAML_SUFFIXES = (".yaml", ".yml")
MODELS: dict[str, type[BaseModel]] = {
    "users": User,
    "groups": Group,
    "rules": Rule,
    "attributes": Attribute,
}
# Top-level lines, each found after a newline (the data is searched as b"\n" + data).
_TOP = re.compile(rb"\n(users|groups|rules|attributes):([^\n]*)")
_ANY_TOP = re.compile(rb"\n[^\s#-]")
_FIRST_ITEM = re.compile(rb"\n( *)- ")
# A rule's own priority line: at the indentation of the item's keys, a plain decimal.
_PRIORITY = re.compile(rb"\n( *)priority: ([1-9][0-9]{0,8})[ \t]*(?=\n|$)")
_BLANK_OR_COMMENT = re.compile(rb"(?:[ \t]*(?:#[^\n]*)?\n?)*")


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
        """A desired-state file: YAML, not tenant.yaml, not under a hidden folder (string
        operations only: this runs for every change of every commit)."""
        return (
            path.endswith(YAML_SUFFIXES)
            and path.rpartition("/")[2] != "tenant.yaml"
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
    rel = path[len(directory) + 1 :] if directory and path.startswith(directory + "/") else path
    return any(part.startswith(".") for part in rel.split("/"))
