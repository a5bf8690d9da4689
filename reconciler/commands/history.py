"""``reconciler history``: who changed an entity's effective access, when, in which PR, and why."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from reconciler.audit.history import Entry
from reconciler.audit.run import history
from reconciler.errors import UsageError


class Format(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


def _v(value: Any) -> str:
    if value is None:
        return "—"
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value


def _text(entries: list[Entry]) -> str:
    out = []
    for e in entries:
        c = e.commit
        out.append(f"{c.date[:19]}  {c.sha[:12]}  {c.author}  {c.subject}")
        if c.pr:
            approved = f", approved by {', '.join(e.approvers)}" if e.approvers else ""
            out.append(f"    pull request #{c.pr}{approved}")
        for cause in e.causes:
            out.append(f"    because: {cause}")
        for field, before, after in e.changes:
            out.append(f"    {field}: {_v(before)} → {_v(after)}")
        out.append(f"    {e.receipt or 'no apply receipt at or after this commit'}")
    return "\n".join(out) if out else "no changes in that period"


SHOWN = 12  # field changes per markdown row; the rest are counted, not silently dropped


def _markdown(entries: list[Entry], title: str) -> str:
    from reconciler.plan.render import md

    lines = [
        f"### History of {md(title)}",
        "",
        "| When | Commit | Who | PR | What changed | Why | Applied |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        c = e.commit
        what = [md(f"{f}: {_v(b)} → {_v(a)}") for f, b, a in e.changes[:SHOWN]]
        if len(e.changes) > SHOWN:
            what.append(f"… and {len(e.changes) - SHOWN} more fields (see --format json)")
        pr = f"#{c.pr}" if c.pr else ""
        if e.approvers:
            pr += "<br>approved by " + ", ".join(md(a) for a in e.approvers)
        lines.append(
            f"| {c.date[:10]} | `{c.sha[:12]}` | {md(c.author)} | {pr} | {'<br>'.join(what)} "
            f"| {'<br>'.join(md(x) for x in e.causes)} | {md(e.receipt) or 'not applied yet'} |"
        )
    if not entries:
        lines.append("| | | | | no changes in that period | | |")
    return "\n".join(lines) + "\n"


def _json(entries: list[Entry]) -> str:
    return json.dumps(
        [
            {
                "commit": e.commit.sha,
                "author": e.commit.author,
                "email": e.commit.email,
                "date": e.commit.date,
                "authored": e.commit.authored,
                "subject": e.commit.subject,
                "pull_request": e.commit.pr,
                "approvers": e.approvers,
                "changes": [{"field": f, "before": b, "after": a} for f, b, a in e.changes],
                "causes": e.causes,
                "receipt": e.receipt,
            }
            for e in entries
        ],
        indent=2,
        default=str,
    )


def run(
    directory: Path = typer.Argument(Path("desired-state"), help="The desired-state directory."),
    user: str | None = typer.Option(
        None, "--user", help="A userName (a former one works too: renames are followed)."
    ),
    group: str | None = typer.Option(None, "--group", help="A group displayName."),
    rule: str | None = typer.Option(None, "--rule", help="A rule name."),
    since: str | None = typer.Option(
        None, "--since", help="Only changes committed on or after this date (YYYY-MM-DD)."
    ),
    fmt: Format = typer.Option(Format.text, "--format", "-f", help="text, markdown or json."),
) -> None:
    """Every commit that changed one user's, group's or rule's effective state, and why.

    For a user: their attributes, groups (their own list or a group's members list) and
    grants through rules; a rule edit that changes their access shows up although their file
    did not change. Each entry names the commit, author, date, pull request (and its
    approvers, with GITHUB_TOKEN), the field-level change, its causes, and the apply
    receipt that took it to the tenant. Commits on the first-parent line only: a merged
    pull request is one entry, its merge commit.
    """
    chosen = [(k, v) for k, v in (("user", user), ("group", group), ("rule", rule)) if v]
    if len(chosen) != 1:
        raise UsageError(
            "name exactly one of --user, --group, --rule",
            "e.g. reconciler history --user alice@example.com",
        )
    kind, name = chosen[0]
    entries = history(directory, kind, name, since=since)
    if fmt is Format.json:
        typer.echo(_json(entries))
    elif fmt is Format.markdown:
        typer.echo(_markdown(entries, f"{kind} {name}"), nl=False)
    else:
        typer.echo(_text(entries))
