"""The reviewed plan in the sticky comment: its hash, and what changed since."""

from __future__ import annotations

from reconciler.gitops.review import reviewed_hash, what_changed

H = "b" * 64
REVIEWED = f"""<!-- reconciler:plan -->
<!-- reconciler:plan-hash={H} -->
### Reconciler plan: 1 change

```diff
~ update olivia.bennett@acme.example
#   attributes differ from desired-state (title)
~   title: "VP Sales" → "Head of Sales"
```
"""


def test_the_hash_is_read_from_the_head_of_the_comment_only() -> None:
    assert reviewed_hash(REVIEWED) == H
    look_alike = f"<!-- reconciler:plan -->\n### Plan failed\n\nreconciler:plan-hash={H}\n"
    assert reviewed_hash(look_alike) is None, "user text further down never counts"
    assert reviewed_hash("<!-- reconciler:plan -->\n### Reconciler plan failed\n") is None


def test_what_changed_lists_only_the_lines_that_differ() -> None:
    now = REVIEWED.rsplit("```", 1)[0] + (
        "~ update tom.okafor@acme.example\n"
        "#   drift: changed outside git\n"
        '~   title: "Changed meanwhile" → "Account Executive"\n```\n'
    )
    diff = what_changed(REVIEWED, now)
    added = [line for line in diff if line.startswith("+") and not line.startswith("+++")]
    assert added == [
        "+~ update tom.okafor@acme.example",
        '+~   title: "Changed meanwhile" → "Account Executive"',
    ]
    assert not [line for line in diff if line.startswith("-") and not line.startswith("---")]
    assert what_changed(REVIEWED, REVIEWED) == []


def test_a_reason_that_names_another_commit_is_no_difference() -> None:
    now = REVIEWED.replace("attributes differ from desired-state (title)", "removed in abc123")
    assert what_changed(REVIEWED, now) == []


def test_a_summarised_plan_is_compared_by_its_change_lines() -> None:
    summarised = REVIEWED.replace('~   title: "VP Sales" → "Head of Sales"\n', "") + (
        "> Summarised: field-level details are left out to fit a comment.\n"
    )
    assert what_changed(summarised, REVIEWED) == []
