"""Reading YAML fast, and finding positions only when a problem needs one.

Files are parsed with ruamel.yaml's C-accelerated safe loader, which keeps no positions. When a
file has a problem, it is parsed once more with the round-trip loader, whose nodes remember line
and column, and the problem's path (``("users", 3, "emails", 0)``) is walked to a position.

Anchors, aliases and merge keys (``<<``) are refused before parsing: an alias bomb ("billion
laughs") expands into exponential work for anything that walks the data, and desired state has no
use for them: every value is written out where a reviewer reads it.

A key given twice in one mapping is recorded, not raised, when the caller asks for it: the
first value is kept and the rest of the file is still read, so the duplicate is reported
together with the file's other problems.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    ScalarEvent,
)
from ruamel.yaml.resolver import VersionedResolver

Path_ = tuple[str | int, ...]

# A cheap screen for anchors, aliases and merge keys; a hit is confirmed with the event stream,
# so text such as "R&D", "a * b" or "<<" inside quotes is not mistaken for one.
_ANCHOR_ALIAS_OR_MERGE = re.compile(r"(?:^|[\s\[\{,:-])(?:[&*][^\s,\]\}]|<<)", re.MULTILINE)


class YamlProblem(Exception):
    """A file that cannot be read as YAML; ``line``/``col`` are 1-based (0: whole file)."""

    def __init__(self, message: str, hint: str = "", line: int = 0, col: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.line = line
        self.col = col


@dataclass(frozen=True)
class DuplicateKey:
    """A key given a second (third, …) time in one mapping; positions are 1-based. The
    first value is the one kept; ``dropped`` is the value given here."""

    key: Any
    line: int
    col: int
    first_line: int
    first_col: int
    dropped: Any


# Where the constructor of the parse under way records duplicate keys; None: raise on them.
_DUPLICATES: ContextVar[list[DuplicateKey] | None] = ContextVar("_DUPLICATES", default=None)


class _SharingConstructor(SafeConstructor):
    """The safe constructor, but equal strings of one document are one object: a group name
    on every user of a file, ``work`` on every address, the keys of custom attributes. A
    100,000-user desired state holds hundreds of thousands of such repeats."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._strings: dict[str, str] = {}

    def construct_yaml_str(self, node: Any) -> Any:
        value = self.construct_scalar(node)
        return self._strings.setdefault(value, value)

    def check_mapping_key(
        self, node: Any, key_node: Any, mapping: Any, key: Any, value: Any
    ) -> bool:
        found = _DUPLICATES.get()
        if found is None or key not in mapping:
            return bool(super().check_mapping_key(node, key_node, mapping, key, value))
        # The first key node equal to this one (constructed keys are cached: no new work).
        first = next(
            kn.start_mark
            for kn, _ in node.value
            if _hashable(self.construct_object(kn, deep=True)) == key
        )
        mark = key_node.start_mark
        found.append(
            DuplicateKey(
                key, mark.line + 1, mark.column + 1, first.line + 1, first.column + 1, value
            )
        )
        return False  # keep the first value


def _hashable(key: Any) -> Any:
    # As the constructor does: a list used as a key is compared as a tuple.
    return tuple(key) if isinstance(key, list) else key


_SharingConstructor.add_constructor("tag:yaml.org,2002:str", _SharingConstructor.construct_yaml_str)


class _OnceResolver(VersionedResolver):
    """ruamel's resolver, which looks up the YAML version of the document under way once per
    parse instead of per scalar. With the C parser, ruamel.yaml (0.19) looks it up two or
    three times for every scalar, each time by raising and catching AttributeError (the
    parser has no ``_scanner``), and always finds the default: that was a quarter of the time
    of loading 100,000 users."""

    @property
    def processing_version(self) -> Any:
        found = self.__dict__.get("_processing_version")
        if found is None:
            found = self.__dict__["_processing_version"] = super().processing_version
        return found


def _safe_yaml() -> YAML:
    y = YAML(typ="safe", pure=False)
    y.Resolver = _OnceResolver
    y.Constructor = _SharingConstructor
    y.allow_duplicate_keys = False
    return y


_SAFE = _safe_yaml()


def decode(data: bytes) -> str:
    """The file's text, or a YamlProblem for binary or non-UTF-8 content."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise YamlProblem(
            "this file is saved as UTF-16, not UTF-8",
            "save it as UTF-8 (most editors: 'Save with encoding' or 'Reopen with encoding')",
        )
    if b"\x00" in data[:8192]:
        raise YamlProblem(
            "this is a binary file, not YAML",
            "desired-state holds only YAML text; move the file out of the directory",
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise YamlProblem(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x})",
            "save the file as UTF-8",
            line,
            exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1,
        ) from exc


def _forbidden_position(text: str) -> tuple[str, int, int] | None:
    """The first anchor, alias or merge key: ``(what, line, col)``, 1-based."""
    if "&" not in text and "*" not in text and "<<" not in text:
        return None  # the common case, at the speed of a substring search
    if not _ANCHOR_ALIAS_OR_MERGE.search(text):
        return None
    y = YAML(typ="safe", pure=True)
    try:
        for event in y.parse(text):
            mark = event.start_mark
            if isinstance(event, AliasEvent) or getattr(event, "anchor", None):
                return ("anchor", mark.line + 1, mark.column + 1)
            if isinstance(event, ScalarEvent) and event.value == "<<" and event.style is None:
                return ("merge", mark.line + 1, mark.column + 1)
    except YAMLError:
        return None  # the real parse reports the syntax error with its position
    return None


def _mark(exc: MarkedYAMLError) -> tuple[int, int]:
    mark = exc.problem_mark or exc.context_mark
    if mark is None:
        return (0, 0)
    return (mark.line + 1, mark.column + 1)


def _char_at(text: str, line: int, col: int) -> str:
    lines = text.splitlines()
    if 0 < line <= len(lines) and 0 < col <= len(lines[line - 1]):
        return lines[line - 1][col - 1]
    return ""


def _syntax_problem(exc: MarkedYAMLError, text: str) -> YamlProblem:
    """A YAML syntax error in words a reader acts on, at the place it was found."""
    problem = (exc.problem or str(exc)).strip()
    line, col = _mark(exc)
    if "duplicate key" in problem:
        m = re.search(r'duplicate key "([^"]*)"', problem)
        return YamlProblem(
            f"duplicate key {m.group(1)!r}" if m else "duplicate key",
            "each key may appear once in a mapping; merge the two entries",
            line,
            col,
        )
    if "expected a single document" in str(exc) or "but found another document" in str(exc):
        return YamlProblem(
            "more than one YAML document in this file",
            "remove the '---' separator or split the file",
            line,
            col,
        )
    if _char_at(text, line, col) == "\t" or "tab character" in problem:
        return YamlProblem(
            "a tab character: YAML indents with spaces only",
            "replace the tab with spaces (two per level, as in the rest of the file)",
            line,
            col,
        )
    if "could not determine a constructor for the tag" in problem:
        m = re.search(r"tag '([^']*)'", problem)
        tag = (m.group(1) if m else "").replace("tag:yaml.org,2002:", "!!")
        return YamlProblem(
            f"the YAML tag {tag!r} is not accepted" if tag else "this YAML tag is not accepted",
            "remove the tag (!!…) and write a plain value",
            line,
            col,
        )
    context, cmark = exc.context, exc.context_mark
    if context and "quoted scalar" in context and cmark is not None:
        # The quote was never closed: the end of the file is where YAML gave up, the quote
        # is where the reader must look.
        return YamlProblem(
            f"a quoted value is not closed: YAML read on to the end of the file ({problem})",
            "close the quote on this line",
            cmark.line + 1,
            cmark.column + 1,
        )
    opened = _run_on_quote(text, cmark.line + 1 if cmark else 1, line)
    if opened is not None:
        # A double-quoted value may span lines, so an unclosed quote swallows the lines after
        # it up to the next '"', and the parser stumbles there: point at the quote instead.
        qline, qcol = opened
        return YamlProblem(
            f"a double-quoted value is not closed on its line: YAML read on to the next '\"', "
            f"and then found: {problem} (at {line}:{col})",
            "close the quote on this line",
            qline,
            qcol,
        )
    hint = "fix the YAML syntax at this position"
    if "mapping values are not allowed" in problem:
        hint = "quote the value: ': ' inside an unquoted value starts a mapping, e.g. 'a: b'"
    if context and cmark is not None and (cmark.line + 1, cmark.column + 1) != (line, col):
        # "found unexpected end of stream" alone points at the end of the file; the context
        # says where the unfinished thing began, which is what the reader must fix.
        problem += f" ({context.strip()} that began at {cmark.line + 1}:{cmark.column + 1})"
        if "flow sequence" in context or "flow mapping" in context:
            hint = "close the bracket that began there"
        elif "block" in context:
            hint = "indent this line like the entries of what began there"
    return YamlProblem(problem, hint, line, col)


# A '"' where a value starts: after "key: ", "- ", "[", "{" or ", ", or at a line's start.
_QUOTE_OPENS = re.compile(r'(?:^\s*|:\s+|-\s+|[\[{,]\s*)"')


def _run_on_quote(text: str, first: int, problem_line: int) -> tuple[int, int] | None:
    """Line and column of a double quote opened at the start of a value on a line from
    ``first`` up to (not including) ``problem_line`` and not closed on that line, or None."""
    lines = text.splitlines()
    for n in range(max(first, 1), min(problem_line, len(lines) + 1)):
        src = lines[n - 1]
        quotes = src.count('"') - src.count('\\"')
        if quotes % 2 == 0:
            continue
        m = _QUOTE_OPENS.search(src)
        if m is not None and src.count('"', 0, m.end()) == 1:
            return n, m.end()
    return None


# Desired state nests a handful of levels (users → user → attributes → value list). Deeper
# input is refused before the C parser sees it: its composer recurses in C, and at some tens of
# thousands of levels overflows the stack and kills the process (a segfault, not an error).
MAX_DEPTH = 64
# Block collections nest by column: each level starts right of its parent, on a new line or
# after a compact "- " / "? " on the same one. So a block nesting MAX_DEPTH deep has a line
# that starts with MAX_DEPTH spaces or indicators.
# (Searched as "\n" + prefix, which runs several times faster than a "^" with MULTILINE.)
_DEEP_INDENT = re.compile(rf"\n[ \t?:-]{{{MAX_DEPTH}}}")
_NOT_A_BRACKET = bytes(c for c in range(256) if c not in b"[]{}")
_INNERMOST_PAIR = re.compile(rb"[\[{][\]}]")


def _maybe_too_deep(text: str) -> bool:
    """A cheap, conservative screen: a document nested deeper than MAX_DEPTH has a deeply
    indented line, or flow brackets nested that deep (counted without regard to quotes, so a
    quoted '[[[[' only costs a closer look). Past the screen, nesting is under 2 x MAX_DEPTH."""
    if _DEEP_INDENT.search("\n" + text[:MAX_DEPTH]) or _DEEP_INDENT.search(text):
        return True
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    brackets = text.encode("utf-8", "surrogatepass").translate(None, _NOT_A_BRACKET)
    # Peel innermost pairs off, one level per pass: a pair left after MAX_DEPTH passes was
    # nested deeper than that. Openers without closers (inside quotes) count as nesting.
    for _ in range(MAX_DEPTH):
        peeled = _INNERMOST_PAIR.sub(b"", brackets)
        if peeled == brackets:
            break
        brackets = peeled
    else:
        return bool(_INNERMOST_PAIR.search(brackets))
    return brackets.count(b"[") + brackets.count(b"{") > MAX_DEPTH


def _too_deep_position(text: str) -> tuple[int, int] | None:
    """Where the document first nests deeper than MAX_DEPTH. The event stream is produced
    without recursion, and is read only as far as the first too-deep collection."""
    depth = 0
    try:
        for event in _SAFE.parse(text):
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    return (event.start_mark.line + 1, event.start_mark.column + 1)
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
    except YAMLError:
        return None  # the real parse reports the syntax error with its position
    return None


def parse(text: str, duplicates: list[DuplicateKey] | None = None) -> Any:
    """Parse one YAML document fast. Raises YamlProblem with a position.

    With ``duplicates``, a key repeated in a mapping is appended there instead of raised, and
    its first value is kept."""
    deep = _too_deep_position(text) if _maybe_too_deep(text) else None
    if deep:
        raise YamlProblem(
            f"the YAML nests deeper than {MAX_DEPTH} levels",
            "desired state needs only a few levels of nesting; flatten the value",
            *deep,
        )
    found = _forbidden_position(text)
    if found:
        what, line, col = found
        if what == "merge":
            raise YamlProblem(
                "YAML merge keys (<<) are not accepted",
                "write the keys out in full; desired state is reviewed line by line",
                line,
                col,
            )
        raise YamlProblem(
            "YAML anchors and aliases (&name, *name) are not accepted",
            "write the values out in full; desired state is reviewed line by line",
            line,
            col,
        )
    token = _DUPLICATES.set(duplicates)
    try:
        return _SAFE.load(text)
    except MarkedYAMLError as exc:
        raise _syntax_problem(exc, text) from exc
    except YAMLError as exc:
        raise YamlProblem(f"not valid YAML: {exc}", "fix the YAML syntax") from exc
    except RecursionError as exc:  # pragma: no cover - the depth screen above prevents it
        raise YamlProblem(
            "the YAML nests too deeply", "flatten the value: a few levels are enough"
        ) from exc
    finally:
        _DUPLICATES.reset(token)


@dataclass
class PositionIndex:
    """A round-trip parse of one file, for turning data paths into line:col."""

    root: Any

    @classmethod
    def of(cls, text: str) -> PositionIndex:
        y = YAML(typ="rt")
        # Positions in a file with a duplicate key (reported by parse) are still needed for
        # its other problems; the round-trip loader keeps the first value too.
        y.allow_duplicate_keys = True
        try:
            return cls(y.load(text))
        except (YAMLError, RecursionError):
            return cls(None)

    def locate(self, path: Sequence[str | int], *, key: bool = False) -> tuple[int, int]:
        """Position of the value at ``path`` (or of its key with ``key=True``), 1-based.

        Walks as deep as the document goes: a path that ends in a missing key points at the
        deepest existing parent, which is where a missing key must be written.
        """
        node = self.root
        pos = (1, 1)
        if node is None:
            return (0, 0)
        for i, part in enumerate(path):
            last = i == len(path) - 1
            lc = getattr(node, "lc", None)
            if isinstance(node, dict) and part in node:
                child = node[part]
                if lc is not None:
                    # A scalar points at its value; a mapping or list at its key, the line a
                    # reader scans for.
                    try:
                        # An empty value has no place of its own: point at its key.
                        if (key and last) or _is_container(child) or child is None:
                            line, col = lc.key(part)
                        else:
                            line, col = lc.value(part)
                    except (KeyError, IndexError, TypeError):
                        break  # a key with no position of its own: stay at the parent
                    pos = (line + 1, col + 1)
                node = child
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                if lc is not None:
                    try:
                        line, col = lc.item(part)
                    except (KeyError, IndexError, TypeError):
                        break
                    pos = (line + 1, col + 1)
                node = node[part]
            else:
                break
        return pos


def _is_container(v: Any) -> bool:
    return isinstance(v, dict | list)
