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


def test_a_blocked_plan_cannot_be_unblocked_by_editing_the_file() -> None:
    """Apply refuses a blocked plan; flipping `blocked`, or also dropping the errors that
    block it, is an edit `show` and apply see."""
    from reconciler.live import Capabilities, LiveState
    from reconciler.plan.build import PlanContext, build_plan
    from reconciler.plan.hashing import edited
    from tests.plan.test_build import NOW, state

    s = state(groups="  - displayName: Queue A\n")  # a group this tenant cannot create
    live = LiveState("local:t.db", (), (), Capabilities(can_create_groups=False))
    blocked = build_plan(s, live, PlanContext(now=NOW))
    assert blocked.blocked and edited(blocked) == ""
    unblocked = blocked.model_copy(update={"blocked": False})
    assert edited(unblocked) == "the plan's blocked flag does not match its plan_hash"
    forged = unblocked.model_copy(update={"diagnostics": ()})
    assert edited(forged) == "the plan's blocked flag does not match its plan_hash"
    # An error added to an applicable plan: the hash still matches, the flag does not.
    errors = blocked.diagnostics
    added = build_plan(state(), live, PlanContext(now=NOW)).model_copy(
        update={"diagnostics": errors}
    )
    assert edited(added) == "the plan's blocked flag does not agree with its errors"
    # An applicable plan hashes as before: `blocked` counts only when set.
    assert plan_hash("local:t.db", [suspend("r")], blocked=False) == plan_hash(
        "local:t.db", [suspend("r")]
    )


def test_one_tenant_spelled_another_way_hashes_the_same() -> None:
    """`--tenant local:./t.db` in one job and tenant.yaml's `local:t.db` in the other: one
    tenant, one intent, one hash. A URL already canonical hashes as it always did."""
    changes = [suspend("r")]
    for one, other in (
        ("local:t.db", "local:./t.db"),
        ("local:t.db", "local:sub/../t.db"),
        ("http://127.0.0.1:8/v2", "http://127.0.0.1:8/v2/"),
        ("https://scim.example/v2", "HTTPS://SCIM.Example/v2"),
    ):
        assert plan_hash(one, changes) == plan_hash(other, changes), other
    # As before canonical forms were hashed: a reviewed plan still matches after an upgrade.
    assert (
        plan_hash("local:t.db", changes)
        == "574c83c5e8bfca395be9df32758d5da159670cd92937ad43e6e6967c9a793356"
    )
    assert plan_hash("local:t.db", changes) != plan_hash("local:../t.db", changes)
    assert plan_hash("https://a.example/v2", changes) != plan_hash("https://a.example/v3", changes)
