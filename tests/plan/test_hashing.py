"""The plan hash covers what the tenant is asked to do, not the words that explain it."""

from __future__ import annotations

from reconciler.plan.hashing import plan_hash
from reconciler.plan.model import Change, FieldChange


def suspend(reason: str, version: str = 'W/"1"') -> Change:
    return Change(
        action="suspend",
        resource_type="User",
        key="chiara.rossi@acme.example",
        reason=reason,
        id="u1",
        version=version,
        fields=(FieldChange(path="active", before=True, after=False),),
    )


def test_a_squash_merge_rewriting_the_removal_commit_keeps_the_hash() -> None:
    on_the_pr = suspend("removed from desired-state in 1111111111 on 2024-05-01")
    merged = suspend("removed from desired-state in 2222222222 on 2024-05-02")
    assert plan_hash("local:t.db", [on_the_pr]) == plan_hash("local:t.db", [merged])


def test_a_live_version_that_moved_alone_keeps_the_hash() -> None:
    """The version is apply's stale check (it moves on logins and syncs), not intent."""
    base = plan_hash("local:t.db", [suspend("r")])
    assert plan_hash("local:t.db", [suspend("r", version='W/"2"')]) == base


def test_what_is_done_and_to_what_changes_the_hash() -> None:
    base = plan_hash("local:t.db", [suspend("r")])
    already = suspend("r").model_copy(
        update={"fields": (FieldChange(path="active", before=False, after=False),)}
    )
    assert plan_hash("local:t.db", [already]) != base
    assert plan_hash("local:other.db", [suspend("r")]) != base
    assert plan_hash("local:t.db", [suspend("r").model_copy(update={"action": "delete"})]) != base
