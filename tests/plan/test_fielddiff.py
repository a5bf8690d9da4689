"""Item-level differences inside multi-valued attributes, as a reviewer reads them."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.live import LiveState
from reconciler.plan.build import PlanContext, build_plan
from reconciler.plan.fielddiff import describe, item_changes
from reconciler.plan.render import render_text
from tests.plan.test_build import NOW, live_user, state

E = {"type": "work"}


@pytest.mark.parametrize(
    ("before", "after", "ci", "expected"),
    [
        # a product added to a list that keeps the others
        (["Meeting", "Connect"], ["Meeting", "Connect", "Webinar"], False, ['+ "Webinar"']),
        (["Meeting", "Connect"], ["Meeting"], False, ['- "Connect"']),
        (["Meeting", "Connect"], ["Meeting", "Webinar"], False, ['+ "Webinar"', '- "Connect"']),
        # nothing in common, or one side empty: the field's before → after says it all
        (["Meeting"], ["Webinar"], False, []),
        ([], ["Webinar"], False, []),
        (None, ["Webinar"], False, []),
        ("Meeting", "Webinar", False, []),
        # the primary email moved: the same values, sub-attributes named
        (
            [{"value": "a@x", **E, "primary": True}, {"value": "b@x", "type": "home"}],
            [{"value": "a@x", **E}, {"value": "b@x", "type": "home", "primary": True}],
            True,
            ['~ "a@x": primary: true → —', '~ "b@x": primary: — → true'],
        ),
        # case and string booleans are not changes where the attribute ignores case
        (
            [{"value": "A@x", **E, "primary": "True"}, {"value": "b@x"}],
            [{"value": "a@x", **E, "primary": True}],
            True,
            ['- "b@x"'],
        ),
        # where case matters, a case change is a different item
        (["Meeting", "x"], ["meeting", "x"], False, ['+ "meeting"', '- "Meeting"']),
        (
            [{"value": "+1 555", "type": "work"}, {"value": "+1 666", "type": "home"}],
            [{"value": "+1 555", "type": "mobile"}, {"value": "+1 666", "type": "home"}],
            False,
            ['~ "+1 555": type: "work" → "mobile"'],
        ),
    ],
)
def test_item_changes(before: Any, after: Any, ci: bool, expected: list[str]) -> None:
    assert [describe(i) for i in item_changes(before, after, case_insensitive=ci)] == expected


def test_a_plan_shows_what_moved_inside_a_list_and_keeps_both_lists() -> None:
    desired = state(
        "  - userName: a@x.example\n    externalId: '1'\n"
        "    emails:\n"
        "      - {value: a@x.example, type: work, primary: true}\n"
        "      - {value: a.other@x.example, type: home}\n"
    )
    live = LiveState(
        "local:t.db",
        (
            live_user(
                "a@x.example",
                "u1",
                externalId="1",
                emails=[
                    {"value": "A@x.example", "type": "work"},
                    {"value": "a.other@x.example", "type": "home", "primary": True},
                ],
            ),
        ),
        (),
    )
    plan = build_plan(desired, live, PlanContext(now=NOW))
    [change] = plan.changes
    [field] = change.fields
    assert field.path == "emails" and len(field.before) == len(field.after) == 2
    assert [describe(i) for i in field.items] == [
        '~ "a@x.example": primary: — → true',
        '~ "a.other@x.example": primary: true → —',
    ]
    assert (
        '~ emails: ~ "a@x.example": primary: — → true; ~ "a.other@x.example": primary: true → —'
        in render_text(plan)
    )
