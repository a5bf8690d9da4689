"""Rendering: golden text and markdown, escaping of user text, the comment size limit."""

from __future__ import annotations

import os
from pathlib import Path

from reconciler.live import LiveState
from reconciler.plan.build import PlanContext, build_plan
from reconciler.plan.model import AccessChange, Change, FieldChange, Plan
from reconciler.plan.render import COMMENT_LIMIT, render_markdown, render_text
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
                entitlements=[{"value": "Meeting"}],
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
    outside_code = "".join(md.split("```")[::2])
    assert "<img" not in outside_code and "</details><img" not in outside_code
    # Outside code blocks a word joiner keeps it from being a mention (inside, GitHub never
    # makes mentions or HTML).
    assert "@octocat" not in outside_code
    table = next(line for line in md.splitlines() if line.startswith("| products"))
    assert table.count(" | ") == 3, "a | in user text does not add table columns"
    body = md.split("```diff", 1)[1].split("\n```\n", 1)[0]
    assert "```" not in body, "user text cannot close the code block"


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
    assert "Summarised:" in md and "the plan-json artifact" in md
    assert md.count("<details") == md.count("</details>")
    assert md.count("```") % 2 == 0
    assert "| products | Meeting |" in md and "and 4975 more" in md
