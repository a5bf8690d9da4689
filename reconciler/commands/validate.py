"""``reconciler validate``: check a desired-state directory, reporting every problem at once."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from reconciler.desired.loader import load
from reconciler.diagnostics import render_github, render_json, render_text, summary_line


class Format(StrEnum):
    text = "text"
    github = "github"
    json = "json"


DIR_ARG = typer.Argument(
    Path("desired-state"),
    help="The desired-state directory (tenant.yaml plus any YAML files below it).",
    show_default=True,
)


def run(
    directory: Path = DIR_ARG,
    fmt: Format = typer.Option(
        Format.text,
        "--format",
        "-f",
        help="text for people; github for ::error annotations on the PR diff; json for tools.",
    ),
) -> None:
    """Check desired-state files: schema, types, references, duplicates, domains, secrets.

    Every problem in every file is reported in one run, each with file:line:col, what is wrong
    and what to write instead. Exit 0 when valid (warnings allowed), 1 when not.
    """
    result = load(directory)
    diags = result.diagnostics
    if fmt is Format.json:
        typer.echo(render_json(diags))
    elif fmt is Format.github:
        if diags:
            typer.echo(render_github(diags))
        typer.echo(_verdict(result.ok, result.state.summary() if result.state else "", diags))
    else:
        if diags:
            typer.echo(render_text(diags))
        typer.echo(_verdict(result.ok, result.state.summary() if result.state else "", diags))
    raise typer.Exit(0 if result.ok else 1)


def _verdict(ok: bool, summary: str, diags: list) -> str:  # type: ignore[type-arg]
    if ok:
        return f"valid: {summary}" + (f" ({summary_line(diags)})" if diags else "")
    return f"invalid: {summary_line(diags)}"
