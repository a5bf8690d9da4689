"""The access table of a plan file checked against its changes: real plans agree; an edited
table (a row hidden, added or moved) is named; the one case the changes cannot settle is said."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler.plan.accesscheck import AccessCheck, check_access
from reconciler.plan.model import AccessChange, Plan
from reconciler.plan.render import render_json
from tests.plan.test_build import GROUPS, REMOVED, RULES, live_user, plan, state


def _live(name: str, uid: str, ext: str, roles: str, products: list[str], **kw: Any) -> Any:
    return live_user(
        name,
        uid,
        externalId=ext,
        roles=[{"value": roles, "primary": True}],
        entitlements=[{"value": p} for p in products],
        **kw,
    )


def every_kind() -> Plan:
    """A user created, one updated (new grants), one reactivated, one made inactive in git,
    one renamed and one suspended (removed from git): every way a user's access moves."""
    users = (
        "  - userName: alice@x.example\n    externalId: '1'\n    groups: [Admins]\n"
        "  - userName: dan@x.example\n    externalId: '4'\n    groups: [Admins]\n"
        "  - userName: carol@x.example\n    externalId: '3'\n    groups: [Staff]\n"
        "  - userName: erin@x.example\n    externalId: '5'\n    groups: [Staff]\n"
        "    active: false\n"
        "  - userName: frank.new@x.example\n    externalId: '6'\n    groups: [Staff]\n"
    )
    live = [
        _live("dan@x.example", "u4", "4", "member", ["Meeting"]),
        _live("carol@x.example", "u3", "3", "member", ["Meeting"], active=False),
        _live("erin@x.example", "u5", "5", "member", ["Meeting"]),
        _live("frank@x.example", "u6", "6", "member", ["Meeting"]),
        _live("bob@x.example", "u2", "2", "admin", ["Resolve"]),
    ]
    return plan(state(users, GROUPS, RULES), live, removed=REMOVED)


def test_a_real_plan_agrees_with_its_access_table() -> None:
    p = every_kind()
    assert [(c.action, c.key) for c in p.changes if c.resource_type == "User"] == [
        ("create", "alice@x.example"),
        ("update", "dan@x.example"),
        ("update", "erin@x.example"),
        ("rename", "frank.new@x.example"),
        ("reactivate", "carol@x.example"),
        ("suspend", "bob@x.example"),
    ]
    assert len(p.access) == 5
    assert check_access(p) == AccessCheck()


Edit = Callable[[AccessChange], AccessChange | None]


def _on(grant: str, value: str, **update: Callable[[tuple[str, ...]], tuple[str, ...]]) -> Edit:
    """An edit of the row (grant, value): each of gains/loses passed through a function."""

    def edit(a: AccessChange) -> AccessChange | None:
        if (a.grant, a.value) != (grant, value):
            return a
        return a.model_copy(update={k: f(getattr(a, k)) for k, f in update.items()})

    return edit


def _without(who: str) -> Callable[[tuple[str, ...]], tuple[str, ...]]:
    return lambda names: tuple(n for n in names if n != who)


def _with(who: str) -> Callable[[tuple[str, ...]], tuple[str, ...]]:
    return lambda names: (*names, who)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda a: None if (a.grant, a.value) == ("roles", "admin") else a,
            [
                "the changes make alice@x.example gain roles admin, which it does not show",
                "the changes make dan@x.example gain roles admin, which it does not show",
            ],
        ),
        (
            _on("products", "Meeting", loses=_without("dan@x.example")),
            ["the changes make dan@x.example lose products Meeting, which it does not show"],
        ),
        (
            _on("userGroup", "Staff", gains=_without("carol@x.example")),
            ["the changes make carol@x.example gain userGroup Staff, which it does not show"],
        ),
        (
            _on("roles", "admin", gains=_with("zoe@x.example")),
            ["it lists zoe@x.example, whom no change touches"],
        ),
        (
            _on("roles", "admin", gains=_with("bob@x.example")),
            ["it shows that bob@x.example would gain roles admin, which no change does"],
        ),
        (
            _on("products", "Meeting", loses=_with("carol@x.example")),
            ["it shows that carol@x.example would lose products Meeting, which no change does"],
        ),
        (
            _on("userGroup", "Staff", gains=_with("alice@x.example")),
            ["it shows that alice@x.example would gain userGroup Staff, which no change does"],
        ),
        (
            _on("userGroup", "Staff", gains=_with("erin@x.example")),
            ["it shows that erin@x.example would gain userGroup Staff, which no change does"],
        ),
        (
            # Moved from one user to another: both are named.
            _on("roles", "admin", gains=lambda g: ("alice@x.example", "frank.new@x.example")),
            [
                "the changes make dan@x.example gain roles admin, which it does not show",
                "it shows that frank.new@x.example would gain roles admin, which no change does",
            ],
        ),
    ],
    ids=[
        "row hidden",
        "loss hidden",
        "reactivated gain hidden",
        "user added",
        "suspended user gains",
        "reactivated user loses",
        "created user gains more",
        "deactivated user gains",
        "gain moved",
    ],
)
def test_an_edited_access_table_is_named(edit: Edit, expected: list[str]) -> None:
    p = every_kind()
    rows = tuple(r for r in map(edit, p.access) if r is not None)
    assert rows != p.access
    assert check_access(p.model_copy(update={"access": rows})).mismatches == expected


def test_what_the_changes_cannot_settle_is_said_not_refused(tmp_path: Path) -> None:
    """An account inactive in git and in the tenant whose grants are rewritten: nobody gains
    or loses access, so the table has no row, exactly as when a row was hidden. `show` says
    so (a warning) and shows the plan."""
    desired = state(
        "  - userName: ann@x.example\n    externalId: '1'\n    groups: [Admins]\n"
        "    active: false\n",
        GROUPS,
        RULES,
    )
    p = plan(desired, [_live("ann@x.example", "u1", "1", "member", ["Meeting"], active=False)])
    assert [(c.action, c.key) for c in p.changes if c.resource_type == "User"] == [
        ("update", "ann@x.example")
    ]
    assert p.access == ()
    assert check_access(p) == AccessCheck(
        unsure=[
            "ann@x.example: the changes write products Resolve, roles admin and remove products "
            "Meeting, roles member, and the access table shows no change of access; right only "
            "if the account is inactive in git and in the tenant"
        ]
    )
    (tmp_path / "plan.json").write_text(render_json(p))
    r = subprocess.run(
        [sys.executable, "-m", "reconciler", "show", "plan.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "~ update User ann@x.example" in r.stdout
    assert r.stderr.startswith("warning: access table: ann@x.example: the changes write ")
