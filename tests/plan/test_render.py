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
    render_annotations,
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


def _gains_and_a_few_losses() -> Plan:
    """1,500 rows of gains and, sorted last, the 5 rows of one user who loses access; 1,500
    updates that grant, and, last, the changes that take access away."""
    rows = tuple(
        AccessChange(
            grant="deviceGroups",
            value=f"Desk Phones {i:04}",
            gains=tuple(f"user{j}@x.example" for j in range(i % 3 + 1)),
        )
        for i in range(1500)
    ) + tuple(
        AccessChange(grant="roles", value=f"zz-role-{k}", loses=("victim@x.example",))
        for k in range(5)
    )
    grants = tuple(
        Change(
            action="update",
            resource_type="User",
            key=f"user{i}@x.example",
            reason="rule 'Phones' grants deviceGroups",
            fields=(FieldChange(path="title", before="Old", after="New"),),
        )
        for i in range(1500)
    )
    losses = (
        Change(action="update", resource_type="User", key="victim@x.example", reason="loses"),
        Change(action="suspend", resource_type="User", key="zz-gone@x.example", reason="gone"),
        Change(
            action="remove_member",
            resource_type="Group",
            key="Admins",
            reason="no longer in Admins",
            members=("victim@x.example",),
        ),
    )
    changes = (*grants, *losses)
    return Plan(
        tenant_url="local:x",
        plan_hash=plan_hash("local:x", changes),
        changes=changes,
        access=rows,
        summary={"update": 1501, "suspend": 1, "remove_member": 1},
    )


def test_a_summary_keeps_the_losses_and_fills_the_comment() -> None:
    """Cut to fit, the comment keeps every row and change that takes access away (sorted
    last, they used to be the first dropped), uses the room it has (not a fixed 200 rows),
    and says under the table how many rows it does not list, and where they are."""
    plan = _gains_and_a_few_losses()
    artifact = "the plan artifact (reconciler show plan.json)"
    md = render_markdown(plan, artifact=artifact)
    assert COMMENT_LIMIT - 1000 < len(md) <= COMMENT_LIMIT
    rows = [line for line in md.splitlines() if line.startswith("| ") and "---" not in line]
    listed = len(rows) - 1  # the header
    assert listed > 300, listed
    for k in range(5):
        assert f"| roles | zz-role-{k} |  | victim@⁠x.example |" in rows
    left = 1505 - listed
    table_end = md.index("\n\n", md.index("| Grant |"))
    assert md[table_end:].startswith(
        f"\n\n…and {left} more rows (only gains), not listed here. "
        f"The full plan is in {artifact}.\n"
    )
    assert f"{left} of 1505 rows of the access table are not listed (only gains)" in md
    assert "~ update victim@x.example" in md and "± suspend zz-gone@x.example" in md
    assert "- remove member Admins" in md
    # What is kept is shown in the plan's order: the table stays sorted.
    assert rows[1:] == sorted(rows[1:], key=lambda r: (r.split(" | ")[0], r.split(" | ")[1]))
    assert _parsed(md)  # a table and a paragraph after it, whole


def test_every_error_is_listed_and_as_many_warnings_as_fit() -> None:
    errors = tuple(
        PlanDiagnostic(
            severity="error", message=f"policy no-contractor-admins: user{i} " + "e" * 60
        )
        for i in range(250)
    )
    warnings = tuple(
        PlanDiagnostic(severity="warning", message=f"drift: user 'stray{i}' " + "w" * 60)
        for i in range(600)
    )
    plan = _gains_and_a_few_losses().model_copy(
        update={"diagnostics": errors + warnings, "blocked": True}
    )
    md = render_markdown(plan)
    assert len(md) <= COMMENT_LIMIT
    assert md.count("\n- ❌ ") == 250
    shown = md.count("\n- ⚠️ ")
    assert 50 < shown < 600
    assert (
        f"{600 - shown} of 850 diagnostics are not listed (0 errors, {600 - shown} warnings)" in md
    )
    assert "#### Errors\n" in md  # no "(N listed)": all of them are


def test_errors_are_cut_only_when_they_alone_do_not_fit() -> None:
    errors = tuple(
        PlanDiagnostic(severity="error", message=f"error {i}: " + "x" * 300) for i in range(500)
    )
    plan = Plan(tenant_url="local:x", plan_hash="0" * 64, diagnostics=errors, blocked=True)
    md = render_markdown(plan)
    shown = md.count("\n- ❌ ")
    assert len(md) <= COMMENT_LIMIT and 150 < shown < 500
    assert f"#### Errors (500, {shown} listed)" in md
    assert f"({500 - shown} errors, 0 warnings)" in md


def test_a_summary_points_only_to_a_file_that_was_written() -> None:
    """`reconciler plan --format markdown` without --out writes no plan file: the comment
    does not send its reader to one."""
    md = render_markdown(_gains_and_a_few_losses())
    assert "Summarised to fit a comment" in md
    assert "plan.json)" not in md and "reconciler show" not in md
    assert "For the full plan, run `reconciler plan --out plan.json` (or `--format json`)." in md
    named = render_markdown(_gains_and_a_few_losses(), artifact="the plan artifact (x.json)")
    assert "The full plan is in the plan artifact (x.json)." in named


TRICKS = (
    "inj\n::error file=desired-state/tenant.yaml,line=1::all good, approve@x.example",
    "cr\rNo changes. The tenant matches desired-state.",
    "bidi\u202egpj.exe",
    "esc\x1b[2J\x1b]8;;https://evil.example\x07link",
    "nul\x00 tab\t zero\u200bwidth line\u2028sep",
)


def _tricky_plan(text: str) -> Plan:
    """Every piece of user text a plan carries, as ``text``."""
    return Plan(
        tenant_url=f"https://scim.example/v2/{text}",
        plan_hash="f" * 64,
        partial=True,
        targets=(text,),
        changes=(
            Change(
                action="update",
                resource_type="User",
                key=text,
                reason=f"drift: {text}",
                fields=(
                    FieldChange(path=text, before=text, after="ok", why=(f"+ {text}",)),
                    FieldChange(path="emails", before=[{"value": text}], after=[{"value": "a"}]),
                ),
            ),
            Change(
                action="remove_member",
                resource_type="Group",
                key=text,
                reason=text,
                members=(text, "b@x.example"),
            ),
        ),
        access=(AccessChange(grant=text, value=text, gains=(text,), loses=(text,)),),
        diagnostics=(
            PlanDiagnostic(
                severity="error",
                message=f"safety gate suspensions: 8 would be suspended (limit 5): {text}",
                hint=text,
                code=text,
            ),
        ),
        allowances=(Allowance(gate=text, up_to=1),),
        summary={"update": 1, "remove_member": 1},
        blocked=True,
    )


@pytest.mark.parametrize("text", TRICKS)
def test_text_and_annotations_show_control_characters_escaped(text: str) -> None:
    """A userName from the tenant cannot start a line of its own (a workflow command, in
    the log of `--format github`), rewrite one, send a terminal escape or reorder a line:
    such characters are shown escaped, as in repr, in every line. Colour codes are ours."""
    tricky, plain = _tricky_plan(text), _tricky_plan("name")
    for color in (False, True):
        out = render_text(tricky, color=color)
        assert len(out.splitlines()) == len(render_text(plain, color=color).splitlines())
        raw = out
        for code in ("\x1b[32m", "\x1b[31m", "\x1b[33m", "\x1b[2m", "\x1b[0m"):
            raw = raw.replace(code, "")
        assert all(c.isprintable() for line in raw.splitlines() for c in line), repr(raw)
        assert repr(text)[1:-1] in raw
    annotations = render_annotations(tricky)
    assert len(annotations) == 1 and annotations[0].startswith("::error title=")
    assert all(c.isprintable() for c in annotations[0]) and "%0A" not in annotations[0]
    assert "\\n" in render_annotations(_tricky_plan("a\nb"))[0]


def test_markdown_of_control_characters_is_unchanged() -> None:
    """The comment has its own escaping (md, codespan, fence); escaping for terminals is not
    added to it: a name copied from a code span is the name."""
    md = render_markdown(_tricky_plan("bidi\u202egpj.exe"))
    assert "bidi\u202egpj.exe" in md and "\\u202e" not in md
