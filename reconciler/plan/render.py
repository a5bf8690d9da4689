"""Rendering a plan: text (terminal), markdown (PR comment), json (the artifact). Shows only:
everything shown was computed by the plan core; here it is only formatted, masked, escaped."""

from __future__ import annotations

import functools
import html
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

import jinja2

from reconciler.plan.fielddiff import describe
from reconciler.plan.model import SYMBOL, Allowance, Change, Plan, PlanDiagnostic
from reconciler.plan.scimmap import MANAGER_PATH
from reconciler.terminal import visible

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
    """Colour on a TTY unless NO_COLOR is set to a non-empty value (https://no-color.org)."""
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR", ""):
        return False
    return hasattr(stream, "isatty") and stream.isatty()


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
    env.filters["codespan"] = codespan
    env.filters["fence"] = fence
    env.filters["names"] = names
    env.filters["visible"] = visible
    env.filters["mdnames"] = lambda xs, limit=NAMES_SHOWN: md(names(xs, limit)) if xs else ""
    return env


def md(text: Any) -> str:
    """User text made inert in markdown: no HTML, no tables broken, no @mentions, no code."""
    s = html.escape(str(text), quote=False).replace("\\", "\\\\")
    s = s.replace("|", "\\|").replace("`", "\\`").replace("\n", " ").replace("\r", " ")
    s = s.replace("@", "@\u2060")  # a word joiner: shown the same, never a mention
    for ch in "*_[]#~":
        s = s.replace(ch, "\\" + ch)
    return s


def codespan(text: Any) -> str:
    """User text as a whole inline code span, every character kept (a reviewer copies the real
    name): fenced by one backtick more than its longest run of backticks, so none of them can
    close it, padded with a space where it begins or ends with one, and on one line."""
    s = str(text).replace("\n", " ").replace("\r", " ")
    ticks = "`" * (max(map(len, re.findall("`+", s)), default=0) + 1)
    pad = " " if s[:1] in ("`", " ", "") or s[-1:] in ("`", " ") else ""
    return f"{ticks}{pad}{s}{pad}{ticks}"


def fence(text: Any) -> str:
    """Text inside a ``` block, every character kept (backticks too: a reviewer copies the
    real name): only made one line. That is enough: a code block closes only at a line that
    starts with a fence, and every line of the plan's blocks starts with the plan's own
    symbol (``+``, ``~``, ``#``…), never with user text."""
    return str(text).replace("\n", " ").replace("\r", " ")


def names(xs: Any, limit: int | None = NAMES_SHOWN) -> str:
    """``xs`` joined; past ``limit`` (None: no limit), the rest as a count."""
    xs = list(xs)
    if limit is None:
        return ", ".join(xs)
    shown = ", ".join(xs[:limit])
    if len(xs) > limit:
        shown += f" and {len(xs) - limit} more" if shown else f"{len(xs)} in all"
    return shown


def _value(v: Any, detailed: bool = False, who: Mapping[str, str] | None = None) -> str:
    """A value for people: multi-valued attributes as their values. ``detailed`` also shows
    each item's type and primary flag (used when the values alone look the same). ``who``:
    for a reference to a user (a manager), the userName of each live id the plan names."""
    if isinstance(v, dict) and set(v) == {"value"}:
        v = v["value"]
        if who is not None and isinstance(v, str) and v in who:
            return f"(user {who[v]})"
    if isinstance(v, list) and v and all(isinstance(x, dict) and "value" in x for x in v):
        if detailed:
            return "[" + ", ".join(_item(x) for x in v) + "]"
        v = [x["value"] for x in v]
    if isinstance(v, dict) and "$user" in v:
        return f"(user {v['$user']})"
    if v is None:
        return "—"  # no value, as inside multi-valued attributes (fielddiff.describe)
    return json.dumps(v, ensure_ascii=False, default=str)


def _item(x: dict[str, Any]) -> str:
    flags = [str(x["type"])] if x.get("type") else []
    if x.get("primary") is True or str(x.get("primary")).lower() == "true":
        flags.append("primary")
    text = json.dumps(x["value"], ensure_ascii=False, default=str)
    return f"{text} ({', '.join(flags)})" if flags else text


def _who(plan: Plan) -> dict[str, str]:
    """Live id → userName of the users the plan names (its ``ids``, inverted)."""
    return {uid: name for name, uid in plan.ids.items()}


@dataclass
class _FieldView:
    symbol: str
    path: str
    text: str
    why: tuple[str, ...] = ()


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


def _view(
    c: Change,
    colors: dict[str, str],
    sensitive: set[str],
    detail: bool,
    who: Mapping[str, str] | None = None,
) -> _ChangeView:
    """``who``: live id → userName, for the fields that refer to a user (the manager)."""
    fields = []
    for f in c.fields if detail else ():
        masked = f.sensitive or f.path in sensitive
        refers = who if f.path == MANAGER_PATH else None
        before = MASK if masked and f.before is not None else _value(f.before, who=refers)
        after = MASK if masked and f.after is not None else _value(f.after, who=refers)
        if before == after and not masked:  # e.g. only the primary email changed
            before, after = _value(f.before, detailed=True), _value(f.after, detailed=True)
        if c.action == "create":
            fields.append(_FieldView("+", f.path, after, f.why))
        elif f.items and not masked:
            # Inside a multi-valued attribute, what moved (the artifact keeps both lists).
            text = "; ".join(describe(i) for i in f.items)
            fields.append(_FieldView("~", f.path, text, f.why))
        elif f.after is None:
            fields.append(_FieldView("-", f.path, before, f.why))
        else:
            fields.append(_FieldView("~", f.path, f"{before} → {after}", f.why))
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
        "add_member": "membership addition",
        "remove_member": "membership removal",
    }
    parts = []
    for a, n in plan.summary.items():
        if a.endswith("_member"):
            # Counted by member, as the gates count them: one change adds or removes many.
            m = sum(len(c.members) for c in plan.changes if c.action == a) or n
            parts.append(f"{m} {words[a]}{_s(m)} in {n} group{_s(n)}")
        else:
            parts.append(f"{n} {words[a]}")
    return ", ".join(parts) if parts else "no changes"


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def no_changes_line(plan: Plan) -> str:
    """What an empty plan says: that the tenant matches, but only when it does."""
    if plan.partial:
        return "No changes for the targets (a partial plan: nothing else was compared)."
    drift = sum(d.code == "unmanaged" for d in plan.diagnostics)
    if drift:
        return (
            f"No changes. The tenant matches desired-state except for {drift} unmanaged "
            f"object{_s(drift)}, reported above as drift (ownership: report leaves "
            f"{'it' if drift == 1 else 'them'} alone)."
        )
    return "No changes. The tenant matches desired-state."


def allowance_line(plan: Plan) -> str:
    """``suspensions: 8 (limit 5), allowed up to 8; deletions: 1 (not over the limit),
    allowed up to all`` or ``""``."""
    return "; ".join(_allowance(a) for a in plan.allowances)


def _allowance(a: Allowance) -> str:
    if a.limit:
        return f"{a.gate}: {a.count} ({a.limit}), allowed up to {a.up_to}"
    if a.count:
        return f"{a.gate}: {a.count} (not over the limit), allowed up to {a.up_to}"
    # Nothing of that kind in the plan (or a plan file older than the counts).
    return f"{a.gate}, allowed up to {a.up_to}"


def render_text(plan: Plan, *, color: bool = False) -> str:
    colors = ANSI if color else NO_ANSI
    sensitive = set(plan.sensitive_paths)
    who = _who(plan)
    return (
        _env()
        .get_template("plan.txt.j2")
        .render(
            plan=plan,
            c=colors,
            access=plan.access,
            changes=[_view(c, colors, sensitive, True, who) for c in plan.changes],
            diagnostics=plan.diagnostics,
            summary_line=summary_line(plan),
            no_changes=no_changes_line(plan),
            allowed=allowance_line(plan),
        )
    )


def _headline(plan: Plan) -> str:
    if not plan.changes:
        return "Reconciler plan: no changes"
    gains = sum(len(a.gains) for a in plan.access)
    loses = sum(len(a.loses) for a in plan.access)
    n = len(plan.changes)
    return (
        f"Reconciler plan: {n} change{_s(n)} · {gains} grant{_s(gains)} gained · "
        f"{loses} grant{_s(loses)} lost"
    )


@dataclass(frozen=True)
class _Budget:
    """How much of a plan a markdown rendering lists (``None``: all of it). A count keeps
    the first items in :class:`_Ranked`'s order: what takes access away first."""

    detail: bool = True
    changes: int | None = None  # per section
    warnings: int | None = None
    access: int | None = None  # rows of the who-gains/who-loses table
    errors: int | None = None  # cut only when nothing else is left to cut
    names: int = NAMES_SHOWN  # per table cell
    members: int | None = None  # names per member list (one change may add thousands)


# Tried in order until the comment fits: details go first, then long lists are cut to a
# count, each cut said out loud. The counts of the step that fits are floors, widened to the
# room left (_fill). The last steps list nothing but the errors, then not even those.
_BUDGETS = (
    _Budget(),
    _Budget(detail=False),
    _Budget(detail=False, members=100),
    _Budget(detail=False, changes=200, warnings=200, members=50),
    _Budget(detail=False, changes=50, warnings=50, access=200, names=10, members=20),
    _Budget(detail=False, changes=10, warnings=20, access=50, names=5, members=10),
    _Budget(detail=False, changes=0, warnings=10, access=20, names=3, members=0),
    _Budget(detail=False, changes=0, warnings=0, access=0, names=0, members=0),
    _Budget(detail=False, changes=0, warnings=0, access=0, errors=0, names=0, members=0),
)
_OBJECTS = ("create", "update", "rename", "adopt", "reactivate", "suspend", "delete")
_SECTIONS = (
    ("Group", "Groups", _OBJECTS),
    ("User", "Users", _OBJECTS),
    ("Group", "Memberships", ("add_member", "remove_member")),
)
_TAKE_ACCESS = ("suspend", "delete", "remove_member")


@dataclass(frozen=True)
class _Section:
    title: str
    ranked: tuple[int, ...]  # indexes into plan.changes: those that take access away first
    losing: int  # how many of them take access away


@dataclass(frozen=True)
class _Ranked:
    """A plan's lists in the order a summary keeps their items: first what takes access
    away (rows where someone loses a grant; changes that suspend, delete, remove members or
    are of a user who loses a grant), then the rest, each in the plan's order. What is kept
    is shown in the plan's order."""

    sections: tuple[_Section, ...]  # of the changes; those with none are left out
    access: tuple[int, ...]  # indexes into plan.access
    losing_rows: int
    errors: tuple[PlanDiagnostic, ...]
    warnings: tuple[PlanDiagnostic, ...]
    longest_members: int  # the most members one change names
    lines: dict[str, str]  # the template's lines that every budget renders the same

    @classmethod
    def of(cls, plan: Plan) -> _Ranked:
        losers = {who.casefold() for a in plan.access for who in a.loses}

        def takes_access(c: Change) -> bool:
            return c.action in _TAKE_ACCESS or (
                c.resource_type == "User" and c.key.casefold() in losers
            )

        sections = []
        for rtype, title, kinds in _SECTIONS:
            chosen = [
                i
                for i, c in enumerate(plan.changes)
                if c.resource_type == rtype and c.action in kinds
            ]
            losing = {i for i in chosen if takes_access(plan.changes[i])}
            if chosen:
                ranked = (*sorted(losing), *(i for i in chosen if i not in losing))
                sections.append(_Section(title, ranked, len(losing)))
        rows = [i for i, a in enumerate(plan.access) if a.loses]
        return cls(
            sections=tuple(sections),
            access=(*rows, *(i for i, a in enumerate(plan.access) if not a.loses)),
            losing_rows=len(rows),
            errors=tuple(d for d in plan.diagnostics if d.severity == "error"),
            warnings=tuple(d for d in plan.diagnostics if d.severity != "error"),
            longest_members=max((len(c.members) for c in plan.changes), default=0),
            lines={
                "headline": _headline(plan),
                "summary_line": summary_line(plan),
                "no_changes": no_changes_line(plan),
                "allowed": allowance_line(plan),
            },
        )


def _kept(ranked: tuple[int, ...], n: int | None) -> list[int]:
    """The first ``n`` of ``ranked`` (all when ``None``), in the plan's order."""
    return sorted(ranked[:n] if n is not None else ranked)


def _full_plan(artifact: str) -> str:
    """Where a summarised comment sends its reader: only to a file that was written."""
    if artifact:
        return f"The full plan is in {artifact}."
    return "For the full plan, run `reconciler plan --out plan.json` (or `--format json`)."


def render_markdown(plan: Plan, *, limit: int = COMMENT_LIMIT, artifact: str = "") -> str:
    """A PR comment of at most ``limit`` characters. When the full plan does not fit, it is
    summarised: field-level details are dropped first, then the access table, the warnings and
    the changes are cut to what fits, losses kept first and every error kept (unless the
    errors alone do not fit), each cut said out loud with where the full plan is. Tables,
    lists and code blocks are never cut in the middle. ``artifact``: the file that holds the
    full plan, e.g. ``"the plan artifact (reconciler show plan.json)"``; none when no file
    was written."""
    where = _full_plan(artifact)
    ranked = _Ranked.of(plan)
    for budget in _BUDGETS:
        text = _markdown(plan, ranked, budget, where)
        if len(text) <= limit:
            return _fill(plan, ranked, budget, where, limit, text)
    # Only a limit far below a comment's gets here: the hash, the verdict and the pointer.
    verdict = "blocked" if plan.blocked else summary_line(plan)
    return (
        f"{PLAN_HASH_MARKER.format(plan.plan_hash)}\n"
        f"Reconciler plan {plan.plan_hash[:12]}: {verdict}. {where}\n"
    )[:limit]


def _fill(plan: Plan, ranked: _Ranked, budget: _Budget, where: str, limit: int, text: str) -> str:
    """``text``, rendered with ``budget``, widened to the room left under ``limit``: every
    error, then the rows and the changes that take access away, then the warnings, then the
    rest of the rows and changes, each as many as still fit."""
    wanted = (
        ("errors", len(ranked.errors)),
        ("access", ranked.losing_rows),
        ("changes", max((x.losing for x in ranked.sections), default=0)),
        ("warnings", len(ranked.warnings)),
        ("access", len(plan.access)),
        ("changes", max((len(x.ranked) for x in ranked.sections), default=0)),
    )
    for field, most in wanted:
        lo: int | None = getattr(budget, field)
        if lo is None or lo >= most:
            continue
        # Galloping up from what fits, then halving: no rendering tried is much longer than
        # the limit (rendering all of 100,000 changes to find that it does not fit is slow).
        hi, step, galloping = most, 1, True
        while lo < hi:
            mid = min(lo + step, hi) if galloping else (lo + hi + 1) // 2
            wider = _markdown(plan, ranked, _counted(budget, field, mid), where)
            if len(wider) <= limit:
                lo, text, step = mid, wider, step * 2
            else:
                hi, galloping = mid - 1, False
        budget = _counted(budget, field, lo)
    return text


def _counted(budget: _Budget, field: str, n: int) -> _Budget:
    count: dict[str, Any] = {field: n}
    return replace(budget, **count)


def _markdown(plan: Plan, ranked: _Ranked, budget: _Budget, where: str) -> str:
    sensitive = set(plan.sensitive_paths)
    who = _who(plan)
    notes = []
    sections = []
    omitted_changes = losing_changes_omitted = 0
    for section in ranked.sections:
        shown = _kept(section.ranked, budget.changes)
        cut = len(section.ranked) - len(shown)
        omitted_changes += cut
        losing_changes_omitted += section.losing - min(section.losing, len(shown))
        sections.append(
            {
                "title": section.title,
                "count": len(section.ranked),
                "open": len(plan.changes) <= 20,
                "changes": [
                    _view(plan.changes[i], NO_ANSI, sensitive, budget.detail, who) for i in shown
                ],
                "omitted": cut,
            }
        )
    if not budget.detail and plan.changes:
        notes.append("field-level details are left out")
    if budget.members is not None and ranked.longest_members > budget.members:
        notes.append(f"member lists name at most {budget.members}")
    if omitted_changes:
        notes.append(
            f"{omitted_changes} of {len(plan.changes)} changes are not listed"
            + (
                f" ({losing_changes_omitted} of them take access away)"
                if losing_changes_omitted
                else ""
            )
        )
    errors = ranked.errors[: budget.errors] if budget.errors is not None else ranked.errors
    warnings = (
        ranked.warnings[: budget.warnings] if budget.warnings is not None else ranked.warnings
    )
    cut_errors = len(ranked.errors) - len(errors)
    cut_warnings = len(ranked.warnings) - len(warnings)
    if cut_errors or cut_warnings:
        notes.append(
            f"{cut_errors + cut_warnings} of {len(plan.diagnostics)} diagnostics are not listed "
            f"({cut_errors} errors, {cut_warnings} warnings)"
        )
    access = [plan.access[i] for i in _kept(ranked.access, budget.access)]
    access_omitted = len(plan.access) - len(access)
    losing_rows_omitted = ranked.losing_rows - sum(bool(a.loses) for a in access)
    rows_omitted = ""  # what the rows not listed hold, for the line under the table
    if access_omitted:
        rows_omitted = f"{losing_rows_omitted} with losses" if losing_rows_omitted else "only gains"
        notes.append(
            f"{access_omitted} of {len(plan.access)} rows of the access table are not listed "
            f"({rows_omitted})"
        )
    omitted = f"Summarised to fit a comment: {'; '.join(notes)}. {where}" if notes else ""
    return (
        _env()
        .get_template("plan.md.j2")
        .render(
            plan=plan,
            access=access,
            access_omitted=access_omitted,
            rows_omitted=rows_omitted,
            where=where,
            names=budget.names,
            errors=errors,
            errors_total=len(ranked.errors),
            warnings=warnings,
            warnings_total=len(ranked.warnings),
            warnings_open=len(warnings) <= 10,
            sections=sections,
            omitted=omitted,
            targets=names(plan.targets, max(budget.names, 3)),
            members=budget.members,
            **ranked.lines,
        )
    )


def render_annotations(plan: Plan) -> list[str]:
    """GitHub workflow commands for the plan's diagnostics (policy violations, gates, …).
    Names in them are shown as the text rendering shows them (:func:`visible`): a line feed
    in a userName is ``\\n`` in the annotation, as in the log."""
    out = []
    for d in plan.diagnostics:
        title = visible(d.code or "reconciler").replace(",", " ").replace(":", " ")
        # Workflow-command escaping: visible() has left no line break, only % to escape.
        text = visible(d.message + (f" ({d.hint})" if d.hint else "")).replace("%", "%25")
        out.append(f"::{d.severity} title={title}::{text}")
    return out


def render_json(plan: Plan) -> str:
    return plan.model_dump_json(indent=2)
