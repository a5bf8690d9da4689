"""The desired-state directory an import writes into, read and written with ruamel.yaml's
round-trip mode.

Every YAML file of the directory is indexed, wherever its users, groups and attributes live:
an entry that is already there is updated in place, in its own file, and only where the
tenant says something different (a value that means the same, written another way, is left
as it is); new entries are appended. Comments, order, quotes and indentation survive; keys
the import does not own (a group's description, an attribute's ``sensitive`` flag or
``allowed_values``, custom attributes the tenant does not carry) are never removed.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.util import load_yaml_guess_indent

from reconciler.desired.models import CORE_USER, ENTERPRISE_USER, User
from reconciler.desired.yamlsource import YamlProblem, decode, parse
from reconciler.diagnostics import Diagnostic, display_path
from reconciler.errors import InputError, UsageError

ATTRIBUTE_KEYS = (
    "name",
    "type",
    "multi_valued",
    "required",
    "allowed_values",
    "case_exact",
    "sensitive",
    "description",
    "scim",
)
GROUP_KEYS = ("displayName", "externalId", "description", "members")
_FLOW_UNSAFE = ":#,[]{}"


def _yaml(sequence: int = 4, offset: int = 2) -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.indent(mapping=max(2, sequence - offset), sequence=sequence, offset=offset)
    y.width = 4096  # never re-wrap a line that was not changed
    return y


def _unreadable(path: Path, exc: Exception) -> str:
    """Where and why ``path`` does not read as YAML, as ``validate`` says it (file:line:col
    and what is wrong), or the parser's own first line."""
    try:
        parse(decode(path.read_bytes()))
    except YamlProblem as p:
        return f"{Diagnostic(display_path(path), p.line, p.col, p.message).where}: {p.message}"
    except (OSError, YAMLError, ValueError):
        pass
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{display_path(path)}: {first}"


def ensure_directory(root: Path) -> None:
    """Refuse a ``root`` that is there but is not a directory (one not there is created)."""
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root} is not a directory", "pass the desired-state directory")


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


class Directory:
    """Every desired-state file under ``root`` (tenant.yaml aside), round-trip loaded."""

    def __init__(self, root: Path) -> None:
        ensure_directory(root)
        self.root = root
        self.docs: dict[Path, CommentedMap] = {}
        self.style: dict[Path, tuple[int, int]] = {}
        self.dirty: set[Path] = set()
        self.created: set[Path] = set()
        problems = []
        files = sorted(root.rglob("*")) if root.exists() else []
        for path in files:
            if (
                path.suffix not in (".yaml", ".yml")
                or not path.is_file()
                or _hidden(path, root)
                or path == root / "tenant.yaml"
            ):
                continue
            try:
                data, sequence, offset = load_yaml_guess_indent(
                    path.read_text(encoding="utf-8"), yaml=_yaml()
                )
            except (UnicodeDecodeError, YAMLError) as exc:
                problems.append(_unreadable(path, exc))
                continue
            if data is None:
                continue
            if not isinstance(data, CommentedMap):
                problems.append(f"{path}: not a mapping of users:, groups:, rules:, attributes:")
                continue
            self.docs[path] = data
            self.style[path] = (sequence or 4, offset if offset is not None else 2)
        if problems:
            raise InputError(
                f"cannot import onto {root}: {len(problems)} file(s) do not read as YAML:",
                "fix them, or import into an empty directory",
                details=problems,
            )

    def items(self, section: str) -> Iterator[tuple[Path, CommentedMap]]:
        for path, doc in self.docs.items():
            seq = doc.get(section)
            if isinstance(seq, list):
                for entry in seq:
                    if isinstance(entry, CommentedMap):
                        yield path, entry

    def first_with(self, section: str) -> Path | None:
        return next((p for p, d in self.docs.items() if isinstance(d.get(section), list)), None)

    def append(self, path: Path, section: str, entry: CommentedMap) -> None:
        doc = self.docs.get(path)
        if doc is None:
            doc = self.docs[path] = CommentedMap()
            self.created.add(path)
        seq = doc.get(section)
        if not isinstance(seq, CommentedSeq):
            seq = CommentedSeq()
            doc[section] = seq
        seq.append(entry)
        self.dirty.add(path)

    def save(self) -> list[Path]:
        written = []
        for path in sorted(self.dirty):
            sequence, offset = self.style.get(path, (4, 2))
            buf = io.StringIO()
            _yaml(sequence, offset).dump(self.docs[path], buf)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(buf.getvalue(), encoding="utf-8")
            written.append(path)
        return written


def set_key(entry: CommentedMap, key: str, value: Any, order: Sequence[str]) -> None:
    """Set ``key``; a new key goes where ``order`` puts it among the keys already there."""
    if key in entry:
        entry[key] = value
        return
    rank = order.index(key) if key in order else len(order)
    pos = 0
    for i, k in enumerate(entry):
        if k in order and order.index(k) < rank:
            pos = i + 1
    entry.insert(pos, key, value)


def flow(value: Any) -> Any:
    """Short lists and name parts in flow style, as the sample desired-state writes them
    (a string with a flow indicator or a colon quoted, which every YAML reader accepts)."""
    if isinstance(value, str) and any(c in value for c in _FLOW_UNSAFE):
        return DoubleQuotedScalarString(value)
    if isinstance(value, list):
        seq = CommentedSeq([flow(v) for v in value])
        if all(not isinstance(v, dict | list) for v in value):
            seq.fa.set_flow_style()
        return seq
    if isinstance(value, dict):
        m = CommentedMap((k, flow(v)) for k, v in value.items())
        if all(not isinstance(v, dict | list) for v in value.values()):
            m.fa.set_flow_style()
        return m
    return value


def _contacts(key: str, value: Any) -> Any:
    try:
        user = User.model_validate({"userName": "x", key: _plain(value)})
    except ValidationError:
        return ("unreadable", repr(value))
    return frozenset((c.value.casefold(), c.type, c.primary) for c in getattr(user, key))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


def same(key: str, old: Any, new: Any) -> bool:
    """Whether two values of a user's key mean the same to a plan."""
    if key == "active":
        return (old is None or bool(old)) == (new is None or bool(new))
    if old in (None, "", [], {}) or new in (None, "", [], {}):
        return old in (None, "", [], {}) and new in (None, "", [], {})
    if key == "groups":
        return {str(g).casefold() for g in old} == {str(g).casefold() for g in new}
    if key in ("userName", "manager"):  # userNames compare case-blind (SCIM caseExact false)
        return str(old).casefold() == str(new).casefold()
    if key in ("emails", "phoneNumbers"):
        return bool(_contacts(key, old) == _contacts(key, new))
    return same_value(old, new)


def same_value(old: Any, new: Any) -> bool:
    old, new = _plain(old), _plain(new)
    if isinstance(old, list) and isinstance(new, list):
        return sorted(map(str, old)) == sorted(map(str, new))
    if isinstance(old, dict) and isinstance(new, dict):
        keys = old.keys() | new.keys()
        return all(same_value(old.get(k), new.get(k)) for k in keys)
    return bool(old == new)


def location(entry: CommentedMap) -> tuple[str, str]:
    """(schema URN, attribute path lower-cased) of an attributes.yaml entry."""
    scim = entry.get("scim") if isinstance(entry.get("scim"), dict) else {}
    schema = str(scim.get("schema") or "enterprise")
    urn = {"core": CORE_USER, "enterprise": ENTERPRISE_USER}.get(schema, schema)
    return urn, str(scim.get("path") or entry.get("name", "")).lower()
