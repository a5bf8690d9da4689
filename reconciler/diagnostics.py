"""Diagnostics: problems found in input, each with a place, what is wrong and what to write.

A diagnostic is plain data; rendering it (text, GitHub annotations, JSON) lives here too so
every command reports problems the same way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

from reconciler.terminal import visible


class Severity(StrEnum):
    error = "error"
    warning = "warning"


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem. ``line``/``col`` are 1-based; 0 means "the whole file"."""

    file: str
    line: int
    col: int
    message: str
    hint: str = ""
    severity: Severity = Severity.error
    code: str = field(default="", compare=False)

    @property
    def where(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.col}"
        return self.file


def has_errors(diags: Iterable[Diagnostic]) -> bool:
    return any(d.severity is Severity.error for d in diags)


def display_path(path: Path, base: Path | None = None) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    base = base or Path.cwd()
    # abspath, not resolve: a symbolic link is named as the user wrote it, not by its target.
    try:
        return str(Path(os.path.abspath(path)).relative_to(base.resolve()))  # noqa: PTH100
    except ValueError:
        return str(path)


def _escape_annotation(text: str, *, prop: bool = False) -> str:
    # GitHub workflow-command escaping: %, CR, LF always; ':' and ',' inside properties.
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def render_text(diags: Sequence[Diagnostic]) -> str:
    lines = []
    for d in diags:
        lines.append(f"{visible(d.where)}: {d.severity}: {visible(d.message)}")
        if d.hint:
            lines.append(f"    hint: {visible(d.hint)}")
    return "\n".join(lines)


def render_github(diags: Sequence[Diagnostic]) -> str:
    out = []
    for d in diags:
        props = f"file={_escape_annotation(d.file, prop=True)}"
        if d.line:
            props += f",line={d.line},col={d.col}"
        body = visible(d.message + (f" ({d.hint})" if d.hint else ""))
        out.append(f"::{d.severity} {props}::{_escape_annotation(body)}")
    return "\n".join(out)


def render_json(diags: Sequence[Diagnostic]) -> str:
    return json.dumps(
        {
            "valid": not has_errors(diags),
            "errors": sum(d.severity is Severity.error for d in diags),
            "warnings": sum(d.severity is Severity.warning for d in diags),
            "diagnostics": [asdict(d) for d in diags],
        },
        indent=2,
    )


def summary_line(diags: Sequence[Diagnostic]) -> str:
    errors = sum(d.severity is Severity.error for d in diags)
    warnings = len(diags) - errors
    return f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
