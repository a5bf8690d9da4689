"""Reading YAML fast, and finding positions only when a problem needs one.

Files are parsed with ruamel.yaml's C-accelerated safe loader, which keeps no positions. When a
file has a problem, it is parsed once more with the round-trip loader, whose nodes remember line
and column, and the problem's path (``("users", 3, "emails", 0)``) is walked to a position.

Anchors and aliases are refused before parsing: an alias bomb ("billion laughs") expands into
exponential work for anything that walks the data, and desired state has no use for them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent

Path_ = tuple[str | int, ...]

# A cheap screen for anchors and aliases; a hit is confirmed with the event stream, so text
# such as "R&D" or "a * b" inside quotes is not mistaken for one.
_ANCHOR_OR_ALIAS = re.compile(r"(?:^|[\s\[\{,:-])[&*][^\s,\]\}]", re.MULTILINE)


class YamlProblem(Exception):
    """A file that cannot be read as YAML; ``line``/``col`` are 1-based (0: whole file)."""

    def __init__(self, message: str, hint: str = "", line: int = 0, col: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.line = line
        self.col = col


def _safe_yaml() -> YAML:
    y = YAML(typ="safe", pure=False)
    y.allow_duplicate_keys = False
    return y


_SAFE = _safe_yaml()


def decode(data: bytes) -> str:
    """The file's text, or a YamlProblem for binary or non-UTF-8 content."""
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


def _alias_position(text: str) -> tuple[int, int] | None:
    if not _ANCHOR_OR_ALIAS.search(text):
        return None
    y = YAML(typ="safe", pure=True)
    try:
        for event in y.parse(text):
            if isinstance(event, AliasEvent) or getattr(event, "anchor", None):
                mark = event.start_mark
                return (mark.line + 1, mark.column + 1)
    except YAMLError:
        return None  # the real parse reports the syntax error with its position
    return None


def _mark(exc: MarkedYAMLError) -> tuple[int, int]:
    mark = exc.problem_mark or exc.context_mark
    if mark is None:
        return (0, 0)
    return (mark.line + 1, mark.column + 1)


def parse(text: str) -> Any:
    """Parse one YAML document fast. Raises YamlProblem with a position."""
    pos = _alias_position(text)
    if pos:
        raise YamlProblem(
            "YAML anchors and aliases (&name, *name) are not accepted",
            "write the values out in full; desired state is reviewed line by line",
            *pos,
        )
    try:
        return _SAFE.load(text)
    except MarkedYAMLError as exc:
        problem = (exc.problem or str(exc)).strip()
        hint = "fix the YAML syntax at this position"
        if "duplicate key" in problem:
            m = re.search(r'duplicate key "([^"]*)"', problem)
            problem = f"duplicate key {m.group(1)!r}" if m else "duplicate key"
            hint = "each key may appear once in a mapping; merge the two entries"
        elif "expected a single document" in str(exc) or "but found another document" in str(exc):
            problem = "more than one YAML document in this file"
            hint = "remove the '---' separator or split the file"
        raise YamlProblem(problem, hint, *_mark(exc)) from exc
    except YAMLError as exc:
        raise YamlProblem(f"not valid YAML: {exc}", "fix the YAML syntax") from exc


@dataclass
class PositionIndex:
    """A round-trip parse of one file, for turning data paths into line:col."""

    root: Any

    @classmethod
    def of(cls, text: str) -> PositionIndex:
        y = YAML(typ="rt")
        try:
            return cls(y.load(text))
        except YAMLError:
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
                    if (key and last) or _is_container(child):
                        line, col = lc.key(part)
                    else:
                        line, col = lc.value(part)
                    pos = (line + 1, col + 1)
                node = child
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                if lc is not None:
                    line, col = lc.item(part)
                    pos = (line + 1, col + 1)
                node = node[part]
            else:
                break
        return pos


def _is_container(v: Any) -> bool:
    return isinstance(v, dict | list)
