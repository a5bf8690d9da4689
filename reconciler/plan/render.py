"""Rendering a plan: text (terminal), markdown (PR comment), json (the artifact). Shows only:
everything shown was computed by the plan core; here it is only formatted, masked, escaped."""

from __future__ import annotations

import functools
import html
import json
import os
import sys
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jinja2

from reconciler.plan.model import SYMBOL, Change, Plan

COMMENT_LIMIT = 65_536
MASK = "••••••"
NAMES_SHOWN = 25
PLAN_HASH_MARKER = "<!-- reconciler:plan-hash={} -->"

ANSI = {
    "green": "\x1b[32m",
    "red": "\x1b[31m",
    "yellow": "\x1b[33m",
    "dim": "\x1b[2m",
    "reset": "\x1b[0m",
}
NO_ANSI = dict.fromkeys(ANSI, "")
ACTION_COLOR = {"+": "green", "-": "red", "~": "yellow", "±": "yellow"}


def use_color(stream: Any = None) -> bool:
    """Colour on a TTY unless NO_COLOR is set (https://no-color.org)."""
    stream = stream or sys.stdout
    return "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()


@functools.cache
def _env() -> jinja2.Environment:
    text = resources.files("reconciler.plan").joinpath("templates")
    loader = jinja2.DictLoader(
        {p.name: p.read_text(encoding="utf-8") for p in text.iterdir() if p.name.endswith(".j2")}
    )
    # Not HTML: markdown and text, where user text is made inert by the md/fence filters.
    env = jinja2.Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701
    )
    env.filters["md"] = md
    env.filters["code"] = lambda s: str(s).replace("`", "ˋ")
    env.filters["fence"] = fence
    env.filters["names"] = names
    env.filters["mdnames"] = lambda xs: md(names(xs)) if xs else ""
    return env


def md(text: Any) -> str:
    """User text made inert in markdown: no HTML, no tables broken, no @mentions, no code."""
    s = html.escape(str(text), quote=False)
    s = s.replace("|", "\\|").replace("`", "\\`").replace("\n", " ").replace("\r", " ")
    s = s.replace("@", "@\u2060")  # a word joiner: shown the same, never a mention
    for ch in "*_[]#~":
        s = s.replace(ch, "\\" + ch)
    return s


def fence(text: Any) -> str:
    """Text inside a ``` block: one line, and no way to close the block."""
    return str(text).replace("```", "ˋˋˋ").replace("\n", " ").replace("\r", " ")


def names(xs: Any) -> str:
    xs = list(xs)
    shown = ", ".join(xs[:NAMES_SHOWN])
    if len(xs) > NAMES_SHOWN:
        shown += f" and {len(xs) - NAMES_SHOWN} more"
    return shown


def _value(v: Any) -> str:
    if isinstance(v, dict) and set(v) == {"value"}:
        v = v["value"]
    if isinstance(v, list) and v and all(isinstance(x, dict) and "value" in x for x in v):
        v = [x["value"] for x in v]
    if isinstance(v, dict) and "$user" in v:
        return f"(user {v['$user']})"
    return json.dumps(v, ensure_ascii=False, default=str)


@dataclass
class _FieldView:
    symbol: str
    path: str
    text: str


@dataclass
class _ChangeView:
    symbol: str
    color: str
    action: str
    resource_type: str
    key: str
    reason: str
    fields: list[_FieldView]
    members: tuple[str, ...]


def _view(c: Change, colors: dict[str, str], sensitive: set[str], detail: bool) -> _ChangeView:
    fields = []
    for f in c.fields if detail else ():
        masked = f.sensitive or f.path in sensitive
        before = MASK if masked and f.before is not None else _value(f.before)
        after = MASK if masked and f.after is not None else _value(f.after)
        if c.action == "create":
            fields.append(_FieldView("+", f.path, after))
        elif f.after is None:
            fields.append(_FieldView("-", f.path, before))
        else:
            fields.append(_FieldView("~", f.path, f"{before} → {after}"))
    symbol = SYMBOL[c.action]
    return _ChangeView(
        symbol,
        colors[ACTION_COLOR[symbol]],
        c.action,
        c.resource_type,
        c.key,
        c.reason,
        fields,
        c.members,
    )


def summary_line(plan: Plan) -> str:
    words = {
        "create": "to create",
        "update": "to update",
        "rename": "to rename",
        "adopt": "to adopt",
        "reactivate": "to reactivate",
        "suspend": "to suspend",
        "delete": "to delete",
        "add_member": "membership additions",
        "remove_member": "membership removals",
    }
    parts = [f"{n} {words[a]}" for a, n in plan.summary.items()]
    return ", ".join(parts) if parts else "no changes"


def render_text(plan: Plan, *, color: bool = False) -> str:
    colors = ANSI if color else NO_ANSI
    sensitive = set(plan.sensitive_paths)
    return (
        _env()
        .get_template("plan.txt.j2")
        .render(
            plan=plan,
            c=colors,
            access=plan.access,
            changes=[_view(c, colors, sensitive, True) for c in plan.changes],
            diagnostics=plan.diagnostics,
            summary_line=summary_line(plan),
        )
    )


def _headline(plan: Plan) -> str:
    if not plan.changes:
        return "Reconciler plan: no changes"
    gains = sum(len(a.gains) for a in plan.access)
    loses = sum(len(a.loses) for a in plan.access)
    return (
        f"Reconciler plan: {len(plan.changes)} changes · {gains} grants gained · "
        f"{loses} grants lost"
    )


def render_markdown(plan: Plan, *, limit: int = COMMENT_LIMIT, artifact: str = "") -> str:
    """A PR comment of at most ``limit`` characters. When the full plan does not fit, details
    are dropped first, then changes beyond a count per section, each cut said out loud."""
    pointer = artifact or "the plan artifact (reconciler show plan.json)"
    sensitive = set(plan.sensitive_paths)
    steps = ((True, None), (False, None), (False, 200), (False, 50), (False, 10), (False, 0))
    for detail, per_section in steps:
        text = _markdown(plan, sensitive, detail, per_section, pointer)
        if len(text) <= limit:
            return text
    # Even the summary alone is too long (a huge access table): keep the head only.
    head = _markdown(plan, sensitive, False, 0, pointer, access=False)
    return head[:limit]


def _markdown(
    plan: Plan,
    sensitive: set[str],
    detail: bool,
    per_section: int | None,
    pointer: str,
    *,
    access: bool = True,
) -> str:
    sections = []
    omitted_total = 0
    objects = ("create", "update", "rename", "adopt", "reactivate", "suspend", "delete")
    members = ("add_member", "remove_member")
    for rtype, title, kind in (
        ("Group", "Groups", objects),
        ("User", "Users", objects),
        ("Group", "Memberships", members),
    ):
        chosen = [c for c in plan.changes if c.resource_type == rtype and c.action in kind]
        shown = chosen if per_section is None else chosen[:per_section]
        omitted_total += len(chosen) - len(shown)
        if shown:
            sections.append(
                {
                    "title": title,
                    "count": len(chosen),
                    "open": len(plan.changes) <= 20,
                    "changes": [_view(c, NO_ANSI, sensitive, detail) for c in shown],
                }
            )
    notes = []
    if not detail and plan.changes:
        notes.append("field-level details are left out to fit a comment")
    if omitted_total:
        notes.append(f"{omitted_total} changes are not listed")
    omitted = ""
    if notes:
        omitted = f"Summarised: {'; '.join(notes)}. The full plan is in {pointer}."
    return (
        _env()
        .get_template("plan.md.j2")
        .render(
            plan=plan,
            headline=_headline(plan),
            access=plan.access if access else (),
            diagnostics=plan.diagnostics,
            sections=sections,
            omitted=omitted,
            summary_line=summary_line(plan),
        )
    )


def render_annotations(plan: Plan) -> list[str]:
    """GitHub workflow commands for the plan's diagnostics (policy violations, gates, …)."""
    out = []
    for d in plan.diagnostics:
        title = (d.code or "reconciler").replace(",", " ").replace(":", " ")
        text = d.message + (f" ({d.hint})" if d.hint else "")
        text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        out.append(f"::{d.severity} title={title}::{text}")
    return out


def render_json(plan: Plan) -> str:
    return plan.model_dump_json(indent=2)
