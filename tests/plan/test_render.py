"""Rendering: golden text and markdown, escaping of user text, the comment size limit."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from reconciler.live import LiveState
from reconciler.plan.build import PlanContext, build_plan
from reconciler.plan.hashing import plan_hash
from reconciler.plan.model import (
    AccessChange,
    Allowance,
    Change,
    FieldChange,
    Plan,
    PlanDiagnostic,
)
from reconciler.plan.render import (
    COMMENT_LIMIT,
    PLAN_HASH_MARKER,
    render_markdown,
    render_text,
    use_color,
)
from tests.plan.test_build import NOW, RULES, live_group, live_user, state

GOLDEN = Path(__file__).parent / "golden"
REGEN = os.environ.get("RECONCILER_REGEN_GOLDEN") == "1"


def sample_plan() -> Plan:
    desired = state(
        "  - userName: alice@x.example\n    externalId: '1'\n    title: Lead\n"
        "    groups: [Admins]\n"
        "  - userName: bob@x.example\n    externalId: '2'\n    groups: [Staff]\n",
        "  - displayName: Admins\n    externalId: a\n  - displayName: Staff\n    externalId: s\n",
        RULES,
    )
    live = LiveState(
        "https://scim.example/v2",
        (
            live_user(
                "alice@x.example",
                "u1",
                externalId="1",
                title="Engineer",
                roles=[{"value": "member", "primary": True}],
                entitlements=[{"value": "Meeting"}, {"value": "Resolve"}],
            ),
            live_user("carol@x.example", "u3", entitlements=[{"value": "Meeting"}]),
        ),
        (
            live_group("Admins", "g1", externalId="a"),
            live_group("Staff", "g2", ("u1",), externalId="s"),
        ),
    )
    return build_plan(desired, live, PlanContext(now=NOW, commit="0123456789abcdef"))


def check(name: str, text: str) -> None:
    path = GOLDEN / name
    if REGEN:
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), (
        f"{name} changed; RECONCILER_REGEN_GOLDEN=1 to accept"
    )


def test_golden_text() -> None:
    check("plan.txt", render_text(sample_plan()))


def test_golden_markdown() -> None:
    check("plan.md", render_markdown(sample_plan()))


def test_empty_plan_text() -> None:
    empty = Plan(tenant_url="local:x", plan_hash="0" * 64)
    assert render_text(empty).rstrip().endswith("No changes. The tenant matches desired-state.")


def test_membership_counts_are_members_not_group_changes() -> None:
    """One change removes many members: the summary counts them as the gates do."""
    names = ("cy", "ann", "bo")  # live ids in another order than the names
    desired = state(
        "".join(f"  - userName: {n}@x.example\n" for n in names),
        "  - displayName: Staff\n    externalId: s\n",
    )
    live = LiveState(
        "https://scim.example/v2",
        tuple(live_user(f"{n}@x.example", f"u{i}") for i, n in enumerate(names)),
        (live_group("Staff", "g1", ("u0", "u1", "u2"), externalId="s"),),
    )
    p = build_plan(desired, live, PlanContext(now=NOW))
    assert p.summary == {"remove_member": 1}
    assert p.changes[0].members == ("ann@x.example", "bo@x.example", "cy@x.example")
    assert render_text(p).rstrip().endswith("Plan: 3 membership removals in 1 group.")
    assert "### Reconciler plan: 1 change · 0 grants gained · 0 grants lost" in render_markdown(p)


def test_no_changes_says_the_tenant_matches_only_when_it_does() -> None:
    desired = state("  - userName: ann@x.example\n")
    ann, stranger = live_user("ann@x.example"), live_user("stranger@x.example")
    matches = build_plan(desired, LiveState("local:x", (ann,), ()), PlanContext(now=NOW))
    drift = build_plan(desired, LiveState("local:x", (ann, stranger), ()), PlanContext(now=NOW))
    partial = build_plan(
        desired, LiveState("local:x", (ann,), ()), PlanContext(now=NOW, targets=("ann@x.example",))
    )
    assert not (matches.changes or drift.changes or partial.changes)
    assert render_text(matches).rstrip().endswith("No changes. The tenant matches desired-state.")
    for render in (render_text, render_markdown):
        assert (
            render(drift)
            .rstrip()
            .endswith(
                "No changes. The tenant matches desired-state except for 1 unmanaged object, "
                "reported above as drift (ownership: report leaves it alone)."
            )
        )
        assert (
            render(partial)
            .rstrip()
            .endswith("No changes for the targets (a partial plan: nothing else was compared).")
        )


def test_colour_only_when_asked() -> None:
    assert "\x1b[" not in render_text(sample_plan())
    assert "\x1b[32m+ create" in render_text(sample_plan(), color=True)


def test_markdown_escapes_user_text() -> None:
    evil = "x</details><img src=x onerror=alert(1)> `code` @octocat | col ```"
    plan = Plan(
        tenant_url="local:x",
        plan_hash="f" * 64,
        changes=(
            Change(
                action="update",
                resource_type="User",
                key=evil,
                reason=evil,
                fields=(FieldChange(path="title", before=evil, after="ok"),),
            ),
        ),
        access=(AccessChange(grant="products", value=evil, gains=(evil,)),),
        summary={"update": 1},
    )
    md = render_markdown(plan)
    before, rest = md.split("```diff\n", 1)
    outside_code = before + rest.split("\n```\n", 1)[1]  # the block closes at its own fence
    assert "<img" not in outside_code and "</details><img" not in outside_code
    # Outside code blocks a word joiner keeps it from being a mention (inside, GitHub never
    # makes mentions or HTML).
    assert "@octocat" not in outside_code
    table = next(line for line in md.splitlines() if line.startswith("| products"))
    assert table.count(" | ") == 3, "a | in user text does not add table columns"


def _parsed(md: str) -> list[Any]:
    """The comment as a CommonMark parser with GitHub's tables reads it (markdown-it-py)."""
    from markdown_it import MarkdownIt

    return list(MarkdownIt("commonmark").enable("table").parse(md))


@pytest.mark.parametrize(
    "name",
    [
        "o`brien@x.example",
        "`leading and trailing`",
        "x</details><img src=x onerror=alert(1)>@octocat | col ```diff",
        "two\n```\n</details>\n\n<b>lines</b> | @octocat",
        "``` ```` `",
    ],
)
def test_markdown_keeps_backticks_and_stays_inert(name: str) -> None:
    """A reviewer copying a name from the comment gets its real characters (a look-alike, ˋ,
    used to stand in for the backtick), and the name still cannot leave its code block, code
    span or table cell, open HTML or mention anyone."""
    plan = Plan(
        tenant_url=f"https://scim.example/v2/{name}",
        plan_hash="f" * 64,
        changes=(
            Change(
                action="update",
                resource_type="User",
                key=name,
                reason=f"drift: {name}",
                fields=(FieldChange(path="title", before=name, after="ok"),),
            ),
        ),
        access=(AccessChange(grant="products", value=name, gains=(name,)),),
        summary={"update": 1},
    )
    md = render_markdown(plan)
    assert "ˋ" not in md
    one_line = name.replace("\n", " ")
    tokens = _parsed(md)
    inlines = [c for t in tokens for c in t.children or ()]
    # The comment's own HTML, and none from the name.
    assert [t.content.strip() for t in tokens if t.type == "html_block"] == [
        PLAN_HASH_MARKER.format("f" * 64),
        "<details open><summary><b>Users</b> (1)</summary>",
        "</details>",
    ]
    assert not [c for c in inlines if c.type == "html_inline"]
    # One code block, the diff, with the name exactly as written on each of its lines.
    [block] = [t for t in tokens if t.type == "fence"]
    assert block.info == "diff"
    assert block.content.splitlines() == [
        f"~ update {one_line}",
        f"#   drift: {one_line}",
        f'~   title: {json.dumps(name, ensure_ascii=False)} → "ok"',
    ]
    # The tenant URL: one code span holding it exactly.
    assert inlines[
        inlines.index(next(c for c in inlines if c.content == "Tenant ")) + 1
    ].content == (f"https://scim.example/v2/{one_line}")
    # The access table: one row of four cells, the name's text in two of them, no mention.
    cells = [
        t.children or []
        for t, before in zip(tokens[1:], tokens, strict=False)
        if t.type == "inline" and before.type == "td_open"
    ]
    assert len(cells) == 4
    shown = one_line.replace("@", "@\u2060")
    assert ["".join(c.content for c in cell) for cell in cells] == ["products", shown, shown, ""]
    outside_code = " ".join(c.content for c in inlines if c.type == "text")
    assert "@octocat" not in outside_code


def test_sensitive_values_are_masked() -> None:
    plan = Plan(
        tenant_url="local:x",
        plan_hash="e" * 64,
        sensitive_paths=("urn:acme:1.0:User:badge",),
        changes=(
            Change(
                action="update",
                resource_type="User",
                key="a",
                reason="r",
                fields=(
                    FieldChange(path="urn:acme:1.0:User:badge", before="OLD-1", after="NEW-2"),
                ),
            ),
        ),
        summary={"update": 1},
    )
    for text in (render_text(plan), render_markdown(plan)):
        assert "OLD-1" not in text and "NEW-2" not in text and "••••••" in text


def test_huge_plan_fits_a_comment_by_summarising() -> None:
    changes = tuple(
        Change(
            action="create",
            resource_type="User",
            key=f"user{i}@x.example",
            reason="in desired-state",
            fields=(FieldChange(path="title", after="Engineer " * 5),),
        )
        for i in range(5000)
    )
    plan = Plan(
        tenant_url="local:x",
        plan_hash="d" * 64,
        changes=changes,
        summary={"create": 5000},
        access=(
            AccessChange(grant="products", value="Meeting", gains=tuple(c.key for c in changes)),
        ),
    )
    md = render_markdown(plan, artifact="the plan-json artifact")
    assert len(md) <= COMMENT_LIMIT
    assert "Summarised to fit a comment:" in md and "the plan-json artifact" in md
    assert md.count("<details") == md.count("</details>")
    assert md.count("```") % 2 == 0
    assert "| products | Meeting |" in md and "and 4975 more" in md


def test_blocked_plan_without_changes_never_says_the_tenant_matches() -> None:
    blocked = Plan(
        tenant_url="local:x",
        plan_hash="0" * 64,
        blocked=True,
        diagnostics=(PlanDiagnostic(severity="error", message="protected account 'bg' …"),),
    )
    for text in (render_text(blocked), render_markdown(blocked)):
        assert "matches desired-state" not in text
        assert "Blocked" in text


def test_allowances_are_shown_in_every_rendering() -> None:
    plan = Plan(
        tenant_url="local:x",
        plan_hash="a" * 64,
        allowances=(
            Allowance(gate="suspensions", up_to=8, count=8, limit="limit 5"),
            Allowance(gate="lost_grants", up_to="all", count=53, limit="limit 20"),
        ),
    )
    line = (
        "suspensions: 8 (limit 5), allowed up to 8; lost_grants: 53 (limit 20), allowed up to all"
    )
    assert f"Allowed deliberately: {line}" in render_text(plan)
    assert "**Allowed deliberately**: suspensions: 8 (limit 5), allowed up to 8; lost\\_grants" in (
        render_markdown(plan)
    )
    assert '"up_to":"all"' in plan.model_dump_json()


def test_no_color_must_be_non_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty:
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_color(Tty())
    monkeypatch.setenv("NO_COLOR", "")  # https://no-color.org: set *and* not empty
    assert use_color(Tty())
    monkeypatch.delenv("NO_COLOR")
    assert use_color(Tty()) and not use_color(object())


def test_a_moved_primary_is_visible() -> None:
    before = [{"value": "a@x", "type": "work"}, {"value": "b@x", "type": "other", "primary": True}]
    after = [{"value": "a@x", "type": "work", "primary": True}, {"value": "b@x", "type": "other"}]
    plan = Plan(
        tenant_url="local:x",
        plan_hash="b" * 64,
        summary={"update": 1},
        changes=(
            Change(
                action="update",
                resource_type="User",
                key="a@x",
                reason="r",
                fields=(FieldChange(path="emails", before=before, after=after),),
            ),
        ),
    )
    assert (
        '~ emails: ["a@x" (work), "b@x" (other, primary)] → ["a@x" (work, primary), "b@x" (other)]'
        in render_text(plan)
    )


def _drifty_plan(n: int) -> Plan:
    """Thousands of changes, diagnostics and access rows, one error among the warnings."""
    changes = tuple(
        Change(
            action="update",
            resource_type="User",
            key=f"user{i}@x.example",
            reason="attributes differ from desired-state (title)",
            fields=(FieldChange(path="title", before="Old", after="New " * 5),),
        )
        for i in range(n)
    )
    drift = [
        PlanDiagnostic(
            severity="warning",
            message=f"drift: user 'stray{i}@x.example' is in the tenant but not in desired-state",
            hint="add it to desired-state, or set ownership.users to suspend or delete",
        )
        for i in range(n)
    ]
    diags = (*drift, PlanDiagnostic(severity="error", message="the one error that blocks"))
    access = tuple(
        AccessChange(grant="deviceGroups", value=f"Phones {i}", gains=(f"user{i}@x.example",))
        for i in range(n)
    )
    return Plan(
        tenant_url="local:x",
        plan_hash="c" * 64,
        changes=changes,
        diagnostics=diags,
        access=access,
        blocked=True,
        summary={"update": n},
    )


def test_comment_limit_is_met_by_summarising_never_by_cutting() -> None:
    plan = _drifty_plan(3000)
    full = render_markdown(plan, limit=10**9)
    md = render_markdown(plan, artifact="the plan-json artifact")
    assert len(full) > COMMENT_LIMIT >= len(md)
    assert md.startswith(PLAN_HASH_MARKER.format(plan.plan_hash))
    assert "Summarised to fit a comment:" in md and "the plan-json artifact" in md
    # What blocks the plan is never cut, and every cut is said out loud.
    assert "the one error that blocks" in md
    assert "diagnostics are not listed" in md and "rows of the access table" in md
    assert "<b>Warnings</b> (3000, " in md  # the heading counts them all
    assert md.rstrip().endswith("**Blocked**: fix the errors above.")
    # Nothing cut mid-structure: balanced blocks, whole table rows and list items.
    assert md.count("<details") == md.count("</details>") and md.count("```") % 2 == 0
    for line in md.splitlines():
        if line.startswith("| "):
            assert line.endswith("|") and line.count(" | ") == 3
        if line.startswith("- "):
            assert line in full.splitlines()


def test_even_a_tiny_limit_keeps_the_hash_and_the_pointer() -> None:
    md = render_markdown(_drifty_plan(50), limit=400, artifact="plan.json")
    assert len(md) <= 400 and md.startswith("<!-- reconciler:plan-hash=")
    assert "blocked" in md and "plan.json" in md


def test_a_summarised_comment_lists_as_many_changes_as_fit() -> None:
    """Thousands of creates and one group gaining them all: the comment uses its budget
    (hundreds of changes listed, not a coarse ten or none), and the one huge member list is
    cut to a count, said out loud."""
    n = 3000
    creates = tuple(
        Change(action="create", resource_type="User", key=f"user{i}@x.example", reason="new")
        for i in range(n)
    )
    everyone = Change(
        action="add_member",
        resource_type="Group",
        key="Staff",
        reason="member of Staff in desired-state",
        members=tuple(c.key for c in creates),
    )
    changes = (*creates, everyone)
    plan = Plan(
        tenant_url="local:x",
        plan_hash=plan_hash("local:x", changes),
        changes=changes,
        summary={"create": n, "add_member": 1},
    )
    md = render_markdown(plan)
    assert len(md) <= COMMENT_LIMIT
    listed = md.count("\n+ create user")
    assert 500 < listed < n, listed
    assert f"{n - listed} of {n + 1} changes are not listed" in md
    assert "member lists name at most" in md and "more" in md.split("+   members:")[1]
    assert "**Plan:** 3000 to create, 3000 membership additions in 1 group." in md
