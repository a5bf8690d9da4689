"""``reconciler schema``: JSON Schema for each desired-state file kind."""

from __future__ import annotations

from pathlib import Path

import typer

from reconciler.desired.schema import KINDS, dumps
from reconciler.errors import UsageError


def run(
    out: Path = typer.Option(
        Path("desired-state/.schemas"),
        "--out",
        "-o",
        help="Directory to write <kind>.schema.json files into.",
    ),
    kind: str | None = typer.Option(
        None, "--kind", help=f"Print one kind's schema to stdout instead: {', '.join(KINDS)}."
    ),
) -> None:
    """Write JSON Schema for tenant, users, groups, rules and attributes files.

    Editors with yaml-language-server autocomplete and flag errors in files that start with
    a modeline such as:  # yaml-language-server: $schema=.schemas/users.schema.json
    """
    if kind is not None:
        if kind not in KINDS:
            raise UsageError(f"unknown kind {kind!r}", f"use one of: {', '.join(KINDS)}")
        typer.echo(dumps(kind), nl=False)
        return
    out.mkdir(parents=True, exist_ok=True)
    for k in KINDS:
        (out / f"{k}.schema.json").write_text(dumps(k), encoding="utf-8")
    typer.echo(f"wrote {len(KINDS)} schemas to {out}/")
