"""Policy violations as diagnostics, placed at the subject's YAML when it has one."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from reconciler.desired.state import Source
from reconciler.desired.yamlsource import PositionIndex, decode
from reconciler.diagnostics import Diagnostic, Severity, display_path
from reconciler.policy.evaluate import Violation


def to_diagnostics(violations: Iterable[Violation]) -> list[Diagnostic]:
    indexes: dict[Path, PositionIndex] = {}
    out = []
    for v in violations:
        file, line, col = place(v.source, indexes)
        out.append(
            Diagnostic(
                file,
                line,
                col,
                v.message,
                f"policy {v.policy}",
                severity=Severity(v.severity),
                code=v.policy,
            )
        )
    return out


def place(source: Source | None, indexes: dict[Path, PositionIndex]) -> tuple[str, int, int]:
    if source is None:
        return ("policies", 0, 0)
    index = indexes.get(source.file)
    if index is None:
        try:
            index = PositionIndex.of(decode(source.file.read_bytes()))
        except (OSError, ValueError):
            index = PositionIndex(None)
        indexes[source.file] = index
    line, col = index.locate(source.path)
    return (display_path(source.file), line, col)
