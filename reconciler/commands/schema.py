"""``reconciler schema``: JSON Schema for each desired-state file kind."""

from __future__ import annotations

import difflib
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

    Editors with yaml-language-server (VS Code's YAML extension, Neovim, Helix…) then
    autocomplete keys and flag mistakes as you type, in every file whose first line names
    its schema, as the sample files in desired-state/ do:

        # yaml-language-server: $schema=../.schemas/users.schema.json

    The path is relative to the YAML file. Run it again after upgrading the reconciler.
    """
    if kind is not None:
        if kind not in KINDS:
            close = difflib.get_close_matches(kind, list(KINDS), n=1)
            raise UsageError(
                f"unknown kind {kind!r}",
                (f"did you mean '{close[0]}'? " if close else "")
                + f"use one of: {', '.join(KINDS)}",
            )
        typer.echo(dumps(kind), nl=False)
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
        for k in KINDS:
            (out / f"{k}.schema.json").write_text(dumps(k), encoding="utf-8")
    except OSError as exc:
        raise UsageError(
            f"cannot write the schemas to {out}: {exc.strerror}",
            "pass --out a directory you can write to (it is created if missing)",
        ) from exc
    typer.echo(
        f"wrote {len(KINDS)} schemas to {out}/: {', '.join(f'{k}.schema.json' for k in KINDS)}"
    )
    typer.echo(
        "first line of a YAML file, for editor support: "
        f"# yaml-language-server: $schema=<path from the file to {out.name}>/users.schema.json"
    )
