"""``reconciler access``: effective access of every user at a point in time, or its diff."""

from __future__ import annotations

import csv
import io
import json
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from reconciler.audit.run import access_at, access_diff
from reconciler.desired.models import MULTI_GRANTS, SINGLE_GRANTS
from reconciler.errors import UsageError

COLUMNS = (
    "role",
    "products",
    "userGroup",
    "deviceGroups",
    "settingsTemplate",
    "roles",
    "entitlements",
)


class Format(StrEnum):
    csv = "csv"
    markdown = "markdown"
    json = "json"


def _cell(v: Any) -> str:
    return "; ".join(v) if isinstance(v, list) else str(v or "")


def _csv(v: Any) -> str:
    """A CSV cell that a spreadsheet shows as text: access reviews are opened in one, and a
    group or value named ``=HYPERLINK(…)`` must not run as a formula (OWASP CSV injection)."""
    text = _cell(v)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def run(
    directory: Path = typer.Argument(Path("desired-state"), help="The desired-state directory."),
    at: str | None = typer.Option(
        None,
        "--at",
        help="A git revision, or a date (YYYY-MM-DD: the state at the end of that day).",
    ),
    diff: tuple[str, str] | None = typer.Option(
        None, "--diff", help="FROM TO (revisions or dates): who gained and lost what."
    ),
    fmt: Format = typer.Option(Format.csv, "--format", "-f", help="csv, markdown or json."),
) -> None:
    """Effective access of every user at a date or revision, for access reviews.

    Products, roles, user group, device groups and settings template, as the rules gave
    them in the desired state of that point on the first-parent line (a suspended user has
    none). --diff FROM TO lists who gained and who lost what; users are matched by
    externalId, so a rename is not a loss.
    """
    from reconciler.plan.render import md

    assert set(COLUMNS) == set(SINGLE_GRANTS) | set(MULTI_GRANTS)
    if (at is None) == (diff is None):
        raise UsageError("pass either --at DATE|REV or --diff FROM TO")
    if diff is not None:
        _, a = access_at(directory, diff[0], "--diff")
        _, b = access_at(directory, diff[1], "--diff")
        rows = access_diff(a, b)
        if fmt is Format.json:
            typer.echo(
                json.dumps(
                    [dict(zip(("user", "change", "grant", "value"), r, strict=True)) for r in rows],
                    indent=2,
                )
            )
        elif fmt is Format.markdown:
            typer.echo(
                f"### Access changes {md(diff[0])} → {md(diff[1])}\n\n"
                "| User | Change | Grant | Value |\n|---|---|---|---|"
            )
            for r in rows:
                typer.echo("| " + " | ".join(md(x) for x in r) + " |")
            if not rows:
                typer.echo("| | no access changes | | |")
        else:
            buf = io.StringIO()
            w = csv.writer(buf)
            w.writerow(["user", "change", "grant", "value"])
            w.writerows([_csv(x) for x in r] for r in rows)
            typer.echo(buf.getvalue(), nl=False)
        return
    assert at is not None
    sha, users = access_at(directory, at)
    if fmt is Format.json:
        typer.echo(json.dumps({"commit": sha, "users": users}, indent=2))
    elif fmt is Format.markdown:
        typer.echo(f"### Access at {md(at)} (`{sha[:12]}`)\n")
        typer.echo("| User | Active | " + " | ".join(COLUMNS) + " |")
        typer.echo("|---" * (len(COLUMNS) + 2) + "|")
        for name, g in users.items():
            typer.echo(
                f"| {md(name)} | {'yes' if g['active'] else 'no'} | "
                + " | ".join(md(_cell(g.get(c))) for c in COLUMNS)
                + " |"
            )
    else:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["user", "active", *COLUMNS])
        for name, g in users.items():
            active = "true" if g["active"] else "false"
            w.writerow([_csv(name), active, *(_csv(g.get(c)) for c in COLUMNS)])
        typer.echo(buf.getvalue(), nl=False)
