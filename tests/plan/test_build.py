"""The pure plan core, table-driven: desired YAML + live SCIM JSON → expected changes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from reconciler.desired.loader import load_files
from reconciler.desired.state import DesiredState
from reconciler.live import Capabilities, LiveState
from reconciler.plan.build import PlanContext, Removal, build_plan
from reconciler.plan.guard import guard
from reconciler.plan.hashing import plan_hash
from reconciler.plan.model import Plan
from reconciler.plan.render import render_text
from reconciler.plan.rules import evaluate

ROOT = Path("/state")
NOW = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
ACCESS = "urn:ietf:params:scim:schemas:extension:reconciler:2.0:User"


def state(
    users: str = "",
    groups: str = "",
    rules: str = "",
    tenant: str = "url: https://scim.example/v2\n",
) -> DesiredState:
    files = {ROOT / "tenant.yaml": tenant.encode()}
    if users:
        files[ROOT / "users.yaml"] = ("users:\n" + users).encode()
    if groups:
        files[ROOT / "groups.yaml"] = ("groups:\n" + groups).encode()
    if rules:
        files[ROOT / "rules.yaml"] = ("rules:\n" + rules).encode()
    result = load_files(ROOT, files)
    assert result.ok and result.state is not None, result.diagnostics
    return result.state


def live_user(name: str, uid: str | None = None, **kw: Any) -> dict[str, Any]:
    return {"id": uid or name, "userName": name, "meta": {"version": 'W/"1"'}, **kw}


def live_group(
    name: str, gid: str | None = None, members: tuple[str, ...] = (), **kw: Any
) -> dict[str, Any]:
    return {
        "id": gid or name,
        "displayName": name,
        "members": [{"value": m} for m in members],
        "meta": {"version": 'W/"1"'},
        **kw,
    }


def plan(
    desired: DesiredState,
    users: list[dict[str, Any]] | None = None,
    groups: list[dict[str, Any]] | None = None,
    caps: Capabilities | None = None,
    **ctx: Any,
) -> Plan:
    live = LiveState(
        "https://scim.example/v2", tuple(users or ()), tuple(groups or ()), caps or Capabilities()
    )
    return build_plan(desired, live, PlanContext(now=NOW, **ctx))


def actions(p: Plan) -> list[tuple[str, str, str]]:
    return [(c.action, c.resource_type, c.key) for c in p.changes]


ALICE = "  - userName: alice@x.example\n    externalId: '1'\n    title: Engineer\n"


def test_create_everything_in_order() -> None:
    s = state(ALICE + "    groups: [Eng]\n", "  - displayName: Eng\n")
    p = plan(s)
    assert actions(p) == [
        ("create", "Group", "Eng"),
        ("create", "User", "alice@x.example"),
        ("add_member", "Group", "Eng"),
    ]
    assert p.changes[2].operations[0]["value"] == [{"value": {"$user": "alice@x.example"}}]
    assert p.summary == {"create": 2, "add_member": 1}


def test_no_changes_when_equal_modulo_case_and_server_fields() -> None:
    s = state(
        ALICE + "    emails: [Alice@X.example]\n    groups: [Eng]\n", "  - displayName: Eng\n"
    )
    u = live_user(
        "ALICE@x.example",
        "u1",
        externalId="1",
        title="Engineer",
        active="True",  # a string boolean, as Entra-era tenants send
        emails=[{"value": "alice@x.EXAMPLE", "type": "work", "primary": True}],
        schemas=["urn:ietf:params:scim:schemas:core:2.0:User"],
        meta={"version": 'W/"9"', "created": "2020-01-01", "location": "https://x/Users/u1"},
        nickName="not managed: left alone",
    )
    p = plan(s, [u], [live_group("ENG", "g1", ("u1",))])
    assert p.changes == ()
    assert p.plan_hash == plan(s, [u], [live_group("ENG", "g1", ("u1",))]).plan_hash


def test_an_email_or_phone_with_no_type_is_the_default_type_not_drift() -> None:
    """Tenants that keep no type are not drifted from `emails: [a@x]` (work by default);
    a type written in desired-state that differs is still a change."""
    s = state(ALICE + "    emails: [alice@x.example]\n    phoneNumbers: [{value: '+1 555'}]\n")
    u = live_user(
        "alice@x.example",
        "u1",
        externalId="1",
        title="Engineer",
        emails=[{"value": "alice@x.example", "primary": True}],
        phoneNumbers=[{"value": "+1 555"}],
    )
    assert plan(s, [u]).changes == ()
    home = state(ALICE + "    emails: [{value: alice@x.example, type: home, primary: true}]\n")
    [c] = plan(home, [u]).changes
    assert [f.path for f in c.fields] == ["emails"]


def test_update_with_field_level_before_after() -> None:
    p = plan(state(ALICE), [live_user("alice@x.example", externalId="1", title="Intern")])
    [c] = p.changes
    assert (c.action, c.reason) == ("update", "attributes differ from desired-state (title)")
    assert [(f.path, f.before, f.after) for f in c.fields] == [("title", "Intern", "Engineer")]
    assert c.operations == ({"op": "replace", "path": "title", "value": "Engineer"},)
    assert c.version == 'W/"1"'


def test_rename_by_stable_external_id() -> None:
    p = plan(state(ALICE), [live_user("alice.old@x.example", externalId="1", title="Engineer")])
    [c] = p.changes
    assert c.action == "rename" and "externalId 1 is stable" in c.reason
    assert [(f.path, f.before, f.after) for f in c.fields] == [
        ("userName", "alice.old@x.example", "alice@x.example")
    ]


def test_ambiguous_match_is_an_error_naming_both() -> None:
    s = state(
        "  - userName: a@x.example\n    emails: [shared@x.example]\n",
        tenant="url: https://scim.example/v2\nmatching: {users: [emails]}\n",
    )
    p = plan(
        s,
        [
            live_user("one@x.example", "id1", emails=[{"value": "shared@x.example"}]),
            live_user("two@x.example", "id2", emails=[{"value": "SHARED@x.example"}]),
        ],
    )
    assert p.blocked
    [d] = [d for d in p.diagnostics if d.severity == "error"]
    assert "ambiguous match by emails" in d.message
    assert "one@x.example" in d.message and "two@x.example" in d.message


def test_adopt_an_account_we_did_not_create() -> None:
    p = plan(state(ALICE), [live_user("alice@x.example", title="Engineer")])
    [c] = p.changes
    assert c.action == "adopt" and "matched by userName" in c.reason
    assert ("externalId", None, "1") in [(f.path, f.before, f.after) for f in c.fields]


RULES = """\
  - name: Admins
    priority: 10
    match: {groups_any: [Admins]}
    grants: {role: admin, products: [Resolve]}
  - name: Everyone
    priority: 90
    match: {groups_any: [Staff]}
    grants: {role: member, products: [Meeting], userGroup: Staff}
"""
GROUPS = "  - displayName: Admins\n  - displayName: Staff\n"


def test_rule_priority_single_from_highest_multi_merged() -> None:
    s = state(ALICE + "    groups: [Admins, Staff]\n", GROUPS, RULES)
    acc = evaluate(s)["alice@x.example"]
    assert acc.as_dict()["role"] == "admin"
    assert acc.as_dict()["products"] == ["Meeting", "Resolve"]
    assert acc.as_dict()["userGroup"] == "Staff"
    assert acc.explain("role", "admin") == "rule 'Admins' (priority 10) via group Admins"
    p = plan(s)
    [create] = [c for c in p.changes if c.resource_type == "User"]
    assert create.body is not None
    assert create.body["roles"] == [{"value": "admin", "primary": True}]
    assert create.body["entitlements"] == [{"value": "Meeting"}, {"value": "Resolve"}]
    assert create.body[ACCESS]["userGroup"] == "Staff"
    gains = {(a.grant, a.value): a.gains for a in p.access}
    assert gains[("products", "Resolve")] == ("alice@x.example",)


def test_lints_shadowed_and_unmatched_rules() -> None:
    rules = RULES + (
        "  - name: Shadow\n    priority: 95\n    match: {groups_any: [Staff]}\n"
        "    grants: {role: viewer}\n"
        "  - name: Nobody\n    priority: 99\n    match: {groups_any: [Admins]}\n"
        "    grants: {role: x}\n"
    )
    s = state("  - userName: a@x.example\n    groups: [Staff]\n", GROUPS, rules)
    warnings = {d.subject: d.message for d in plan(s).diagnostics if d.code == "rule-lint"}
    assert "shadowed" in warnings["Shadow"]
    assert warnings["Nobody"] == "rule 'Nobody' matches no user"
    assert "Admins" in warnings  # matches nobody here either


def test_a_sensitive_value_read_from_the_tenant_is_not_recorded_in_the_plan() -> None:
    """The plan file is a CI artifact and an auditor's record: a sensitive live value (never
    in git) must not be in it; the new one, from git, is what apply writes."""
    ext = "urn:acme:params:scim:schemas:extension:acme:1.0:User"
    files = {
        ROOT / "tenant.yaml": b"url: https://scim.example/v2\n",
        ROOT / "attributes.yaml": (
            f"attributes:\n  - name: badge\n    sensitive: true\n    scim: {{schema: '{ext}'}}\n"
        ).encode(),
        ROOT / "users.yaml": (
            b"users:\n" + ALICE.encode() + b"    attributes: {badge: NEW-FROM-GIT}\n"
        ),
    }
    result = load_files(ROOT, files)
    assert result.state is not None, result.diagnostics
    u = live_user(
        "alice@x.example", externalId="1", title="Engineer", **{ext: {"badge": "LIVE-99"}}
    )
    [c] = plan(result.state, [u]).changes
    [f] = c.fields
    assert f.sensitive and f.before == "(sensitive: not recorded)" and f.after == "NEW-FROM-GIT"
    assert "LIVE-99" not in c.model_dump_json()
    # An empty live value is no secret: it stays what it was.
    [c] = plan(
        result.state, [live_user("alice@x.example", externalId="1", title="Engineer")]
    ).changes
    assert c.fields[0].before is None


def test_grant_change_reason_names_the_rule() -> None:
    s = state(ALICE + "    groups: [Admins]\n", GROUPS, RULES)
    u = live_user(
        "alice@x.example",
        externalId="1",
        title="Engineer",
        roles=[{"value": "admin", "primary": True}],
        entitlements=[],
        **{ACCESS: {}},
    )
    [c] = plan(
        s, [u], [live_group("Admins", "g", ("alice@x.example",)), live_group("Staff")]
    ).changes
    assert c.reason == "rule 'Admins' (priority 10) via group Admins grants products: Resolve"


@pytest.mark.parametrize(
    ("rules", "lacks"),
    [
        (RULES, "rule 'Admins' (priority 10) grants it, but not in group Admins"),
        (
            RULES.replace("groups_any: [Admins]", "groups_any: [Admins, Ops]"),
            "rule 'Admins' (priority 10) grants it, but in none of the groups Admins, Ops",
        ),
        (
            RULES.replace(
                "groups_any: [Admins]",
                "groups_all: [Staff], conditions: [{attribute: title, op: eq, value: Boss}]",
            ),
            "rule 'Admins' (priority 10) grants it, but its conditions do not hold",
        ),
        (RULES.replace("products: [Resolve]", "products: [Other]"), "no rule grants it"),
        (
            # Every rule that grants it: the one the user left need not be the first.
            RULES + "  - name: Ops\n    priority: 50\n    match: {groups_any: [Ops]}\n"
            "    grants: {products: [Resolve]}\n",
            "rule 'Admins' (priority 10) grants it, but not in group Admins; rule 'Ops' "
            "(priority 50) grants it, but not in group Ops",
        ),
    ],
)
def test_a_lost_grant_says_which_rule_gave_it_and_what_the_user_lacks(
    rules: str, lacks: str
) -> None:
    """A user who left a group: not "no rule grants it", as if the rule had gone."""
    groups = GROUPS + "  - displayName: Ops\n"
    s = state(ALICE + "    groups: [Staff]\n", groups, rules)
    u = live_user(
        "alice@x.example",
        externalId="1",
        title="Engineer",
        roles=[{"value": "member", "primary": True}],
        entitlements=[{"value": "Meeting"}, {"value": "Resolve"}],
        **{ACCESS: {"userGroup": "Staff"}},
    )
    live = [live_group("Admins", "g1"), live_group("Staff", "g2", ("alice@x.example",))]
    [c] = [c for c in plan(s, [u], [*live, live_group("Ops", "g3")]).changes]
    assert c.reason == f"loses products: Resolve ({lacks})"
    assert {f.path: f.why for f in c.fields}["entitlements"] == (f"- Resolve: {lacks}",)


def test_every_grant_value_gained_or_lost_is_explained() -> None:
    """Not only the first: each value of each grant attribute says which rule (and group)
    gives it, or why it goes, including a role outranked by a higher-priority rule."""
    s = state(ALICE + "    groups: [Admins, Staff]\n", GROUPS, RULES)
    u = live_user(
        "alice@x.example",
        externalId="1",
        title="Engineer",
        roles=[{"value": "member", "primary": True}],
        entitlements=[{"value": "Meeting"}, {"value": "Legacy"}],
        **{ACCESS: {"userGroup": "Staff"}},
    )
    groups = [live_group("Admins", "g1", ("alice@x.example",)), live_group("Staff", "g2")]
    [c] = [c for c in plan(s, [u], groups).changes if c.resource_type == "User"]
    why = {f.path: f.why for f in c.fields}
    assert why["entitlements"] == (
        "+ Resolve: rule 'Admins' (priority 10) via group Admins",
        "- Legacy: no rule grants it",
    )
    assert why["roles"] == (
        "+ admin: rule 'Admins' (priority 10) via group Admins",
        "- member: rule 'Everyone' (priority 90) via group Staff grants it, but rule 'Admins' "
        "(priority 10) wins",
    )
    text = render_text(plan(s, [u], groups))
    assert "# + admin: rule 'Admins' (priority 10) via group Admins" in text
    # Explanations are not intent: the hash is the same without them.
    bare = c.model_copy(
        update={"fields": tuple(f.model_copy(update={"why": ()}) for f in c.fields)}
    )
    assert plan_hash("t", [c]) == plan_hash("t", [bare])


def test_reactivate_brings_grants_back() -> None:
    s = state(ALICE + "    groups: [Staff]\n", GROUPS, RULES)
    u = live_user("alice@x.example", externalId="1", title="Engineer", active=False)
    [c] = plan(
        s, [u], [live_group("Admins"), live_group("Staff", members=("alice@x.example",))]
    ).changes
    assert c.action == "reactivate"
    paths = [op["path"] for op in c.operations]
    assert "active" in paths and "entitlements" in paths and "roles" in paths


REMOVED = {"bob@x.example": Removal(when=NOW - dt.timedelta(days=10), commit="abc1234def")}


@pytest.mark.parametrize(
    ("lifecycle", "can_delete", "live_active", "expected"),
    [
        ("delete_after: 21d", True, True, ["suspend"]),
        # Past the grace period but active (no apply since, or reactivated outside git):
        # suspended first, never deleted in one step.
        ("delete_after: 7d", True, True, ["suspend"]),
        ("delete_after: 7d", True, False, ["delete"]),
        ("delete_after: 21d", True, False, []),
        ("delete_after: never", True, True, ["suspend"]),
        ("delete_after: 7d", False, True, ["suspend"]),  # GoTo never deletes by sync
    ],
)
def test_lifecycle_grace_period(
    lifecycle: str, can_delete: bool, live_active: bool, expected: list[str]
) -> None:
    s = state(ALICE, tenant=f"url: https://scim.example/v2\nlifecycle: {{{lifecycle}}}\n")
    users = [
        live_user("alice@x.example", externalId="1", title="Engineer"),
        live_user("bob@x.example", active=live_active),
    ]
    p = plan(s, users, caps=Capabilities(can_delete_users=can_delete), removed=REMOVED)
    assert [c.action for c in p.changes] == expected
    for c in p.changes:
        assert c.reason.startswith("removed from desired-state in abc1234def on 2026-06-21")
        # Never a promise the tenant cannot keep.
        assert ("deleted after" in c.reason) is (
            can_delete and c.action == "suspend" and "21d" in lifecycle
        )
        assert ("suspended first, deleted by a later plan" in c.reason) is (
            can_delete and live_active and "7d" in lifecycle
        )


@pytest.mark.parametrize(
    ("live_external_id", "mode", "expected"),
    [
        ("7", "report", ["suspend"]),  # the account the removed entry described
        (None, "report", ["suspend"]),  # no externalId to tell: by its userName, as before
        ("99", "report", []),  # another account that holds the name: not ours to suspend
        ("99", "suspend", ["suspend"]),  # …unless every unmanaged account is suspended
    ],
)
def test_a_removed_user_is_not_confused_with_another_account_of_that_name(
    live_external_id: str | None, mode: str, expected: list[str]
) -> None:
    s = state(ALICE, tenant=f"url: https://scim.example/v2\nownership: {{users: {mode}}}\n")
    bob = live_user("bob@x.example")
    if live_external_id is not None:
        bob["externalId"] = live_external_id
    removed = Removal(when=NOW - dt.timedelta(days=10), commit="abc1234def", external_id="7")
    users = [live_user("alice@x.example", externalId="1", title="Engineer"), bob]
    p = plan(s, users, removed={"bob@x.example": removed})
    assert [c.action for c in p.changes] == expected
    warned = [d.message for d in p.diagnostics if d.code == "not-ours"]
    if live_external_id == "99":
        assert warned == [
            "user 'bob@x.example' was removed from desired-state, but the tenant's account with "
            "that userName has externalId '99', not '7' as the removed entry had: it is another "
            f"account, left to ownership.users ({mode})"
        ]
        assert [c.reason for c in p.changes] == (
            ["not in desired-state (ownership: suspend)"] if mode == "suspend" else []
        )
    else:
        assert warned == []
        assert p.changes[0].reason.startswith("removed from desired-state in abc1234def")


GONE = {"sales": Removal(when=NOW - dt.timedelta(days=10), commit="abc1234def", external_id="g7")}


@pytest.mark.parametrize(
    ("lifecycle", "members", "can_delete", "expected", "until"),
    [
        # Emptied now; kept, empty, by default.
        ("{}", ("u1",), True, ["remove_member"], "; kept empty (delete_after: never)"),
        ("{delete_after: 21d}", ("u1",), True, ["remove_member"], "; deleted after 2026-07-12"),
        ("{delete_after: 21d}", (), True, [], None),  # emptied already: wait
        # Grace over: an empty group is deleted, one with members is emptied first.
        ("{delete_after: 7d}", (), True, ["delete"], "; grace period 7d is over"),
        (
            "{delete_after: 7d}",
            ("u1",),
            True,
            ["remove_member"],
            "; grace period 7d is over: emptied first, deleted by a later plan",
        ),
        ("{removed_groups: delete}", ("u1",), True, ["delete"], ""),
        # A tenant that cannot delete groups (Genesys) keeps it, empty.
        (
            "{removed_groups: delete}",
            ("u1",),
            False,
            ["remove_member"],
            "; this tenant cannot delete groups: it stays, empty",
        ),
        ("{delete_after: 7d}", (), False, [], None),
    ],
)
def test_a_group_removed_from_git_is_emptied_then_deleted(
    lifecycle: str,
    members: tuple[str, ...],
    can_delete: bool,
    expected: list[str],
    until: str | None,
) -> None:
    s = state(
        ALICE + "    groups: [Eng]\n",
        "  - displayName: Eng\n",
        tenant=f"url: https://scim.example/v2\nlifecycle: {lifecycle}\n",
    )
    alice = live_user("alice@x.example", "u1", externalId="1", title="Engineer")
    groups = [live_group("Eng", "g1", ("u1",)), live_group("Sales", "g7", members, externalId="g7")]
    p = plan(s, [alice], groups, Capabilities(can_delete_groups=can_delete), removed_groups=GONE)
    assert [c.action for c in p.changes] == expected
    assert [d.code for d in p.diagnostics] == []  # not reported as drift
    for c in p.changes:
        assert (c.resource_type, c.key, c.id, c.version) == ("Group", "Sales", "g7", 'W/"1"')
        assert c.reason == "group removed from desired-state in abc1234def on 2026-06-21" + (
            until or ""
        )
        if c.action == "remove_member":
            assert c.members == ("alice@x.example",)
            assert c.operations == ({"op": "remove", "path": 'members[value eq "u1"]'},)


REMOVALS_GATE = (
    "safety gate membership_removals: 3 would be removed from groups (limit 1): p0@x.example "
    "from Sales, p1@x.example from Sales, p2@x.example from Sales"
)


@pytest.mark.parametrize(
    ("lifecycle", "gates"),
    [
        ("{}", [REMOVALS_GATE]),
        # Deleted at once: its members leave with it, named and counted all the same.
        (
            "{removed_groups: delete}",
            ["safety gate deletions: 1 would be deleted (limit 0): Sales", REMOVALS_GATE],
        ),
    ],
)
def test_a_removed_group_counts_against_the_gates(lifecycle: str, gates: list[str]) -> None:
    tenant = (
        f"url: https://scim.example/v2\nlifecycle: {lifecycle}\n"
        "safety: {deletions: {max: 0}, membership_removals: {max: 1}}\n"
    )
    s = state(ALICE, tenant=tenant)
    alice = live_user("alice@x.example", "u1", externalId="1", title="Engineer")
    people = [live_user(f"p{n}@x.example", f"p{n}", externalId=f"p{n}") for n in range(3)]
    gone = live_group("Sales", "g7", ("p0", "p1", "p2"), externalId="g7")
    users = [alice, *people]
    removed = {u["userName"]: Removal(when=NOW) for u in people}  # suspended, not unmanaged
    p = guard(
        plan(s, users, [gone], removed=removed, removed_groups=GONE), s, evaluate(s), allow={}
    )
    assert p.blocked
    assert [d.message for d in p.diagnostics if d.code == "gate"] == gates
    [change] = [c for c in p.changes if c.resource_type == "Group"]
    assert change.members == ("p0@x.example", "p1@x.example", "p2@x.example")
    assert "- members: p0@x.example, p1@x.example, p2@x.example" in render_text(p)


def test_a_nested_group_is_named_when_a_removed_group_is_emptied() -> None:
    s = state(ALICE + "    groups: [Eng]\n", "  - displayName: Eng\n")
    alice = live_user("alice@x.example", "u1", externalId="1", title="Engineer")
    eng = live_group("Eng", "g1", ("u1",))
    gone = live_group("Sales", "g7", ("u1", "g1", "x9"), externalId="g7")
    p = plan(s, [alice], [eng, gone], removed_groups=GONE)
    [c] = p.changes
    assert c.members == ("alice@x.example", "group Eng", "x9")


def test_a_removed_group_is_not_confused_with_another_of_that_name() -> None:
    s = state(ALICE)
    alice = live_user("alice@x.example", "u1", externalId="1", title="Engineer")
    other = live_group("Sales", "g8", ("u1",), externalId="console-1")
    p = plan(s, [alice], [other], removed_groups=GONE)
    assert p.changes == ()
    assert [d.code for d in p.diagnostics] == ["not-ours", "unmanaged"]
    assert p.diagnostics[0].message == (
        "group 'Sales' was removed from desired-state, but the tenant's group with that "
        "displayName has externalId 'console-1', not 'g7' as the removed entry had: it is "
        "another group, left to ownership.groups (report)"
    )


def test_a_removed_group_in_a_partial_plan_loses_only_its_targets() -> None:
    """Targeting a user removes it from a removed group (one of its memberships), and
    nobody else; targeting the group empties it, and deletes it when due."""
    s = state(ALICE + "  - userName: bob@x.example\n    externalId: '2'\n")
    alice = live_user("alice@x.example", "u1", externalId="1", title="Engineer")
    bob = live_user("bob@x.example", "u2", externalId="2")
    gone = live_group("Sales", "g7", ("u1", "u2"), externalId="g7")
    p = plan(s, [alice, bob], [gone], removed_groups=GONE, targets=("alice@x.example",))
    [c] = p.changes
    assert (c.action, c.key, c.members) == ("remove_member", "Sales", ("alice@x.example",))
    assert c.operations == ({"op": "remove", "path": 'members[value eq "u1"]'},)
    assert c.reason.endswith("; this partial plan removes only its targets")
    # Even when the group is due for deletion: a partial plan for a user deletes no group.
    p = build_plan(
        state(
            ALICE + "  - userName: bob@x.example\n    externalId: '2'\n",
            tenant="url: https://scim.example/v2\nlifecycle:\n  removed_groups: delete\n",
        ),
        LiveState("https://scim.example/v2", (alice, bob), (gone,)),
        PlanContext(now=NOW, removed_groups=GONE, targets=("alice@x.example",)),
    )
    assert [(c.action, c.members) for c in p.changes] == [("remove_member", ("alice@x.example",))]
    p = plan(s, [alice, bob], [gone], removed_groups=GONE, targets=("sales",))
    [c] = p.changes
    assert (c.action, c.members) == ("remove_member", ("alice@x.example", "bob@x.example"))
    # A targeted user who is not a member: nothing to do with the group.
    p = plan(
        s,
        [alice, bob],
        [live_group("Sales", "g7", ("u2",), externalId="g7")],
        removed_groups=GONE,
        targets=("alice@x.example",),
    )
    assert p.changes == ()


def test_a_partial_plan_removes_a_targeted_user_from_groups_it_left() -> None:
    """`--target USER` covers the user's memberships both ways: the groups desired-state
    adds it to, and those it is in now but no longer in git. Other members stay as they
    are, even when they too would leave."""
    s = state(
        ALICE + "    groups: [Eng]\n  - userName: bob@x.example\n    externalId: '2'\n",
        "  - displayName: Eng\n  - displayName: Sales\n",
    )
    alice = live_user("alice@x.example", "u1", externalId="1", title="Engineer")
    bob = live_user("bob@x.example", "u2", externalId="2")
    groups = [live_group("Eng", "g1", ("u1",)), live_group("Sales", "g2", ("u1", "u2"))]
    p = plan(s, [alice, bob], groups, targets=("alice@x.example",))
    [c] = p.changes
    assert (c.action, c.key, c.members) == ("remove_member", "Sales", ("alice@x.example",))
    assert p.partial
    whole = plan(s, [alice, bob], groups)
    [c] = whole.changes
    assert c.members == ("alice@x.example", "bob@x.example")


def test_a_shallow_history_blocks_rather_than_miss_a_group_removal() -> None:
    s = state(ALICE)
    alice = live_user("alice@x.example", "u1", externalId="1", title="Engineer")
    groups = [
        live_group("Sales", "g7", ("u1",), externalId="g7"),  # dated: emptied
        live_group("Console", "g9", ("u1",)),
    ]
    p = plan(s, [alice], groups, removed_groups=GONE, shallow=True)
    assert actions(p) == [("remove_member", "Group", "Sales")] and p.blocked
    [d] = [d for d in p.diagnostics if d.code == "shallow-history"]
    assert d.message == (
        "desired-state's git history is shallow, so whether 1 live group not in desired-state "
        "('Console') was removed from it, and when, cannot be read: a removed group would keep "
        "its members"
    )
    assert not plan(s, [alice], groups[:1], removed_groups=GONE, shallow=True).blocked


def test_a_shallow_history_blocks_rather_than_miss_a_removal() -> None:
    """In a shallow clone a removed user cannot be told from an account made outside git:
    neither "unmanaged" nor a delete without its grace period, but an error."""
    s = state(ALICE, tenant="url: https://scim.example/v2\nownership: {users: delete}\n")
    users = [
        live_user("alice@x.example", externalId="1", title="Engineer"),
        live_user("bob@x.example"),  # its removal is in the history that was fetched
        live_user("mei@x.example"),
        live_user("zoe@x.example"),
    ]
    p = plan(s, users, removed=REMOVED, shallow=True)
    assert actions(p) == [("suspend", "User", "bob@x.example")] and p.blocked
    [d] = [d for d in p.diagnostics if d.code == "shallow-history"]
    assert d.severity == "error"
    assert d.message == (
        "desired-state's git history is shallow, so whether 2 live users not in desired-state "
        "('mei@x.example', 'zoe@x.example') were removed from it, and when, cannot be read: a "
        "removed user would be neither suspended nor given its grace period"
    )
    assert "fetch-depth: 0" in d.hint
    # Nothing to tell apart: no error.
    assert not plan(s, users[:2], removed=REMOVED, shallow=True).blocked


@pytest.mark.parametrize(
    ("mode", "expected", "warned"),
    [
        ("ignore", [], False),
        ("report", [], True),
        ("suspend", ["suspend"], False),
        ("delete", ["delete"], False),
    ],
)
def test_unmanaged_users_follow_ownership(mode: str, expected: list[str], warned: bool) -> None:
    s = state(ALICE, tenant=f"url: https://scim.example/v2\nownership: {{users: {mode}}}\n")
    p = plan(
        s,
        [
            live_user("alice@x.example", externalId="1", title="Engineer"),
            live_user("stranger@x.example"),
        ],
    )
    assert [c.action for c in p.changes] == expected
    assert any(d.code == "unmanaged" for d in p.diagnostics) is warned


def test_protected_accounts_are_never_touched() -> None:
    s = state(
        ALICE,
        tenant="url: https://scim.example/v2\nownership: {users: delete}\n"
        "protected: [breakglass@x.example]\n",
    )
    users = [
        live_user("alice@x.example", externalId="1", title="Engineer"),
        live_user("breakglass@x.example"),
    ]
    p = plan(s, users, removed={"breakglass@x.example": REMOVED["bob@x.example"]})
    assert p.changes == () and p.blocked
    [d] = p.diagnostics
    assert d.message.startswith("protected account 'breakglass@x.example' would be suspended")
    # Not an error when nothing would be done to it (ownership report, not removed).
    s2 = state(ALICE, tenant="url: https://scim.example/v2\nprotected: [breakglass@x.example]\n")
    assert not plan(s2, users).blocked


def test_members_added_and_removed() -> None:
    s = state(ALICE + "    groups: [Eng]\n  - userName: bob@x.example\n", "  - displayName: Eng\n")
    users = [
        live_user("alice@x.example", "u1", externalId="1", title="Engineer"),
        live_user("bob@x.example", "u2"),
    ]
    p = plan(s, users, [live_group("Eng", "g1", ("u2",))])
    assert actions(p) == [("add_member", "Group", "Eng"), ("remove_member", "Group", "Eng")]
    assert p.changes[0].operations[0]["value"] == [{"value": "u1"}]
    assert p.changes[1].operations == ({"op": "remove", "path": 'members[value eq "u2"]'},)


def test_memberships_union_both_ways_of_writing_them() -> None:
    s = state(
        "  - userName: Ann@x.example\n    groups: [Eng, Sales]\n"
        "  - userName: bob@x.example\n    groups: [eng, SALES]\n"  # same groups, spelt otherwise
        "  - userName: cy@x.example\n    groups: [Eng]\n"
        "  - userName: dee@x.example\n",
        "  - displayName: Eng\n    members: [DEE@x.example]\n"
        "  - displayName: Sales\n  - displayName: Empty\n",
    )
    assert s.members == {
        "eng": {"ann@x.example", "bob@x.example", "cy@x.example", "dee@x.example"},
        "sales": {"ann@x.example", "bob@x.example"},
        "empty": frozenset(),
    }
    assert s.groups_of == {
        "ann@x.example": {"eng", "sales"},
        "bob@x.example": {"eng", "sales"},
        "cy@x.example": {"eng"},
        "dee@x.example": {"eng"},
    }
    # Users with the same groups share one set (rules are evaluated once per set).
    assert s.groups_of["ann@x.example"] is s.groups_of["bob@x.example"]


def test_missing_capability_is_a_plan_error() -> None:
    s = state(groups="  - displayName: Queue A\n")
    p = plan(s, caps=Capabilities(can_create_groups=False))
    assert p.blocked and p.changes == ()
    assert "cannot create groups" in p.diagnostics[0].message


def test_partial_plan_by_target() -> None:
    s = state(ALICE + "  - userName: bob@x.example\n")
    p = plan(s, [live_user("stranger@x.example")], targets=("bob@x.example",))
    assert p.partial and actions(p) == [("create", "User", "bob@x.example")]


def test_partial_plan_finds_a_renamed_user_or_group_by_its_old_name() -> None:
    """`--target` the name people know (the live one) after a rename in git: the plan holds
    the rename and the memberships under the new name, not 'No changes'."""
    s = state(
        "  - userName: alice.new@x.example\n    externalId: '1'\n    groups: [Engineering]\n"
        "  - userName: bob@x.example\n    externalId: '2'\n",
        "  - displayName: Engineering\n    externalId: g\n",
    )
    users = [
        live_user("alice@x.example", "u1", externalId="1"),
        live_user("bob@x.example", "u2", externalId="2", title="Boss"),
    ]
    groups = [live_group("Eng", "g1", externalId="g")]
    p = plan(s, users, groups, targets=("ALICE@x.example",))
    assert p.partial and actions(p) == [
        ("rename", "User", "alice.new@x.example"),
        ("add_member", "Group", "Engineering"),
    ]
    assert not [d for d in p.diagnostics if d.code == "target"]
    p = plan(s, users, groups, targets=("Eng",))
    assert actions(p) == [
        ("rename", "Group", "Engineering"),
        ("add_member", "Group", "Engineering"),
    ]


def test_json_round_trip_and_hash_ignores_time() -> None:
    s = state(ALICE + "    groups: [Admins]\n", GROUPS, RULES)
    p = plan(s)
    again = Plan.model_validate_json(p.model_dump_json())
    assert again == p
    later = build_plan(
        s, LiveState("https://scim.example/v2", (), ()), PlanContext(now=NOW + dt.timedelta(days=3))
    )
    assert later.plan_hash == p.plan_hash and later.created_at != p.created_at


def test_multi_valued_compare_as_sets_with_primary() -> None:
    s = state(
        "  - userName: alice@x.example\n    externalId: '1'\n    emails:\n"
        "      - {value: alice@x.example, primary: true}\n"
        "      - {value: al@x.example, type: other}\n"
    )
    work = {"value": "ALICE@x.example", "type": "work", "primary": True}
    other = {"value": "al@x.example", "type": "other", "primary": False}
    # Another order, another case: the same set, no change.
    same = live_user("alice@x.example", externalId="1", emails=[other, work])
    assert plan(s, [same]).changes == ()
    # The same addresses with the primary moved: a change.
    swapped = live_user(
        "alice@x.example",
        externalId="1",
        emails=[{**work, "primary": False}, {**other, "primary": True}],
    )
    [c] = plan(s, [swapped]).changes
    assert (c.action, [f.path for f in c.fields]) == ("update", ["emails"])


def test_grants_compare_as_sets() -> None:
    s = state(ALICE + "    groups: [Admins, Staff]\n", GROUPS, RULES)
    u = live_user(
        "alice@x.example",
        externalId="1",
        title="Engineer",
        # Another order, keys reordered, a string boolean: the same grants.
        roles=[{"primary": "true", "value": "admin"}],
        entitlements=[{"value": "Resolve"}, {"value": "Meeting"}],
        **{ACCESS: {"userGroup": "Staff"}},
    )
    ids = ("alice@x.example",)
    groups = [live_group("Admins", "g1", ids), live_group("Staff", "g2", ids)]
    assert plan(s, [u], groups).changes == ()
    # "false" as a string is not primary.
    u2 = {**u, "roles": [{"primary": "false", "value": "admin"}]}
    [c] = plan(s, [u2], groups).changes
    assert [f.path for f in c.fields] == ["roles"]


def test_ambiguous_match_names_the_desired_object() -> None:
    s = state("  - userName: new@x.example\n    externalId: '9'\n    emails: [shared@x.example]\n")
    p = plan(
        s,
        [
            live_user("one@x.example", "id1", emails=[{"value": "shared@x.example"}]),
            live_user("two@x.example", "id2", emails=[{"value": "shared@x.example"}]),
        ],
    )
    [d] = [d for d in p.diagnostics if d.severity == "error"]
    assert d.message.startswith("user 'new@x.example': ambiguous match by emails: user 'one@")


def test_one_live_account_claimed_twice_names_both_desired_objects() -> None:
    s = state(
        "  - userName: a@x.example\n    externalId: '1'\n"
        "  - userName: b@x.example\n    emails: [a@x.example]\n",
        tenant="url: https://scim.example/v2\nmatching: {users: [externalId, emails]}\n",
    )
    p = plan(
        s, [live_user("a@x.example", "id1", externalId="1", emails=[{"value": "a@x.example"}])]
    )
    [d] = [d for d in p.diagnostics if d.severity == "error"]
    assert d.message == (
        "user 'b@x.example': live user 'a@x.example' (id id1) by emails is already matched by "
        "user 'a@x.example'"
    )


def test_protected_account_leaves_no_empty_access_rows() -> None:
    s = state(ALICE, tenant="url: https://scim.example/v2\nprotected: [bg@x.example]\n")
    users = [
        live_user("alice@x.example", externalId="1", title="Engineer"),
        live_user("bg@x.example", entitlements=[{"value": "Meeting"}]),
    ]
    p = plan(s, users, removed={"bg@x.example": REMOVED["bob@x.example"]})
    assert p.blocked and p.changes == () and p.access == ()


def test_partial_plan_handles_a_targeted_live_only_user_and_blocks_on_typos() -> None:
    s = state(ALICE)
    users = [
        live_user("alice@x.example", externalId="1", title="Engineer"),
        live_user("bob@x.example"),
        live_user("carol@x.example"),
    ]
    p = plan(s, users, removed=REMOVED, targets=("bob@x.example",))
    assert p.partial and actions(p) == [("suspend", "User", "bob@x.example")]
    assert p.diagnostics == () and not p.blocked
    # A typo is an error, not "No changes for the targets": nobody is provisioned by mistake.
    p = plan(s, users, removed=REMOVED, targets=("bob@x.example", "Carol@x.exampel"))
    [d] = p.diagnostics
    assert (d.severity, d.code) == ("error", "target") and p.blocked
    assert "'Carol@x.exampel' names no user or group" in d.message
    assert d.hint.startswith("did you mean 'carol@x.example'?")


def test_uncommitted_removal_reason() -> None:
    s = state(ALICE)
    users = [live_user("alice@x.example", externalId="1", title="Engineer"), live_user("bob@x")]
    p = plan(s, users, removed={"bob@x": Removal(when=NOW)})
    [c] = p.changes
    assert (c.action, c.reason) == ("suspend", "removed from desired-state (not committed yet)")


def test_hash_ignores_the_live_version() -> None:
    s = state(ALICE)
    one = plan(s, [live_user("alice@x.example", externalId="1", title="Intern")])
    moved = live_user("alice@x.example", externalId="1", title="Intern", meta={"version": "W/9"})
    two = plan(s, [moved])
    assert one.changes[0].version != two.changes[0].version
    assert one.plan_hash == two.plan_hash
    other = plan(s, [live_user("alice@x.example", externalId="1", title="Boss")])
    assert other.plan_hash != one.plan_hash  # what the change would do is in the hash


def test_fast_path_agrees_with_the_field_level_compare() -> None:
    """``same_as_live`` (raw equality first) and ``Managed.differs`` (normalised) agree on
    every perturbation of a live user, so the shortcut never hides a change."""
    from reconciler.plan import scimmap

    s = state(
        ALICE + "    name: {givenName: Al, familyName: Ice}\n    emails: [alice@x.example]\n"
        "    manager: bob@x.example\n    groups: [Admins]\n  - userName: bob@x.example\n",
        GROUPS,
        RULES,
    )
    user = s.users[0]
    acc = evaluate(s)["alice@x.example"]
    values = scimmap.desired_values(user, s, acc, {"bob@x.example": "u2"})
    base = scimmap.scim_body(scimmap.managed(values), [])
    perturbations: list[tuple[str, Any]] = [
        ("title", "engineer"),
        ("title", "Engineer "),
        ("title", None),
        ("userName", "ALICE@X.EXAMPLE"),
        ("active", "true"),
        ("active", False),
        ("active", 1),
        ("emails", [{"value": "Alice@x.example", "type": "work", "primary": "true"}]),
        ("emails", [{"value": "alice@x.example", "type": "home", "primary": True}]),
        ("roles", [{"value": "admin", "primary": True}, {"value": "x"}]),
        ("entitlements", list(reversed(base["entitlements"]))),
        ("name", {"givenName": "al", "familyName": "Ice"}),
        ("externalId", 1),
    ]
    for path, value in perturbations:
        live = {**base, "id": "u1"}
        if value is None:
            live.pop(path)
        else:
            live[path] = value
        differs = any(m.differs(live) for m in scimmap.managed(values).values())
        assert scimmap.same_as_live(values, live) is not differs, (path, value)


@pytest.mark.parametrize(
    ("selector", "protected"),
    [
        ('"super-admin" in user.roles', True),
        ('user.userType == "service"', False),
        ('user.entitlements.exists(e, e.startsWith("Res"))', True),
        # Cannot be evaluated for this account (it has no sixth email): fails closed.
        ('user.emails[5] == "x"', True),
    ],
)
def test_protected_by_selector_over_the_live_account(selector: str, protected: bool) -> None:
    tenant = (
        "url: https://scim.example/v2\nownership: {users: delete}\n"
        f"protected:\n  - selector: '{selector}'\n"
    )
    s = state(ALICE, tenant=tenant)
    root = live_user(
        "root@x.example",
        roles=[{"value": "super-admin", "primary": True}],
        entitlements=[{"value": "Resolve"}],
    )
    p = plan(s, [live_user("alice@x.example", externalId="1", title="Engineer"), root])
    if protected:
        assert p.changes == () and p.blocked
        assert p.diagnostics[0].message.startswith("protected account 'root@x.example' would")
    else:
        assert [c.action for c in p.changes] == ["delete"] and not p.blocked


def test_a_broken_protected_selector_is_a_validation_error() -> None:
    files = {
        ROOT / "tenant.yaml": b"url: https://scim.example/v2\nprotected:\n"
        b"  - admin@x.example\n  - selector: 'user.title =='\n  - selector: 'usr.x == 1'\n"
    }
    result = load_files(ROOT, files)
    assert not result.ok
    got = [(d.line, d.message.split(":")[0]) for d in result.diagnostics]
    assert got == [(4, "protected selector"), (5, "protected selector uses unknown variable 'usr'")]


# ---- ambiguous matches change nothing ---------------------------------------------------


def test_an_ambiguous_group_is_not_created_and_its_candidates_are_left_alone() -> None:
    tenant = "url: https://scim.example/v2\nownership: {groups: delete}\n"
    s = state(ALICE, groups="  - displayName: NewG\n", tenant=tenant)
    p = plan(
        s,
        [live_user("alice@x.example", externalId="1", title="Engineer")],
        [live_group("NewG", "g1"), live_group("newg", "g2")],
    )
    [d] = p.diagnostics
    assert d.code == "ambiguous-match" and d.message.startswith("group 'NewG': ambiguous")
    # Neither a third group, nor either candidate deleted as not in desired-state.
    assert p.blocked and p.changes == ()


def test_an_ambiguous_user_joins_no_group_and_its_candidates_are_left_alone() -> None:
    s = state(
        "  - userName: new@x.example\n    emails: [shared@x.example]\n    groups: [Staff]\n",
        groups="  - displayName: Staff\n",
        tenant="url: https://scim.example/v2\nmatching: {users: [emails]}\n"
        "ownership: {users: delete}\n",
    )
    one = live_user("one@x.example", "id1", emails=[{"value": "shared@x.example"}])
    two = live_user("two@x.example", "id2", emails=[{"value": "shared@x.example"}])
    p = plan(s, [one, two], [live_group("Staff", "g1", ("id1",))])
    assert [d.code for d in p.diagnostics] == ["ambiguous-match"]
    # No "+ add member" of an account nobody can name, no removal or deletion of either
    # account that may be it.
    assert p.changes == ()


# ---- renames onto a name another live object holds ---------------------------------------


def test_a_rename_onto_a_userName_another_account_holds_is_an_error() -> None:
    s = state("  - userName: alice2@x.example\n    externalId: '1'\n")
    alice = live_user("alice@x.example", "id1", externalId="1")
    console = live_user("ALICE2@x.example", "id9")
    p = plan(s, [alice, console])
    errors = [d for d in p.diagnostics if d.severity == "error"]
    assert [d.code for d in errors] == ["name-taken"]
    assert errors[0].message == (
        "user 'alice2@x.example': renaming live user 'alice@x.example' (id id1) to this "
        "userName would collide with live user 'ALICE2@x.example' (id id9), which holds it "
        "already"
    )
    assert p.blocked and "rename" not in [c.action for c in p.changes]
    # The same account, only in another case, is no collision.
    p = plan(state("  - userName: Alice@x.example\n    externalId: '1'\n"), [alice])
    assert not p.blocked


def test_a_group_renamed_onto_a_displayName_another_group_holds_is_an_error() -> None:
    s = state(groups="  - displayName: Sales EMEA\n    externalId: g-1\n")
    p = plan(
        s,
        [],
        [live_group("Sales", "g1", externalId="g-1"), live_group("Sales EMEA", "g2")],
    )
    [d] = [d for d in p.diagnostics if d.severity == "error"]
    assert d.code == "name-taken" and "(id g2), which holds it already" in d.message
    assert "rename" not in [c.action for c in p.changes]


# ---- the artifact --------------------------------------------------------------------------


def test_membership_changes_record_the_groups_live_version() -> None:
    s = state(
        ALICE + "    groups: [Staff]\n  - userName: bob@x.example\n",
        groups="  - displayName: Staff\n",
    )
    users = [
        live_user("alice@x.example", "u1", externalId="1", title="Engineer"),
        live_user("bob@x.example", "u2"),
    ]
    staff = {**live_group("Staff", "g1", ("u2",)), "meta": {"version": 'W/"7"'}}
    p = plan(s, users, [staff])
    assert [(c.action, c.version) for c in p.changes] == [
        ("add_member", 'W/"7"'),
        ("remove_member", 'W/"7"'),
    ]


def test_a_manager_change_names_the_users_not_their_ids() -> None:
    s = state(
        ALICE + "    manager: bob@x.example\n  - userName: bob@x.example\n"
        "  - userName: carol@x.example\n"
    )
    enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    users = [
        live_user("alice@x.example", "u1", externalId="1", title="Engineer")
        | {enterprise: {"manager": {"value": "u3"}}},
        live_user("bob@x.example", "u2"),
        live_user("carol@x.example", "u3"),
    ]
    p = plan(s, users)
    assert len(p.changes) == 1
    assert {"bob@x.example": "u2", "carol@x.example": "u3"}.items() <= p.ids.items()
    text = render_text(p)
    assert f"{enterprise}:manager: (user carol@x.example) → (user bob@x.example)" in text
    assert '"u3"' not in text


def test_a_mistyped_target_is_suggested_as_git_spells_it() -> None:
    s = state("  - userName: Lukas.Schmidt@x.example\n    externalId: '7'\n")
    live = [live_user("LUKAS.SCHMIDT@X.EXAMPLE", externalId="7")]
    [d] = [d for d in plan(s, live, targets=("lukas.schmit@x.example",)).diagnostics]
    assert d.hint.startswith("did you mean 'Lukas.Schmidt@x.example'?")


def test_a_rule_matched_through_several_groups_names_them_all() -> None:
    from reconciler.plan.rules import Because

    assert str(Because("R", 5, ("Support",))) == "rule 'R' (priority 5) via group Support"
    assert str(Because("R", 5, ("A", "B", "C"))) == "rule 'R' (priority 5) via groups A, B and C"
    assert str(Because("R", 5, ())) == "rule 'R' (priority 5)"


@pytest.mark.parametrize(
    "targets", [(), ("bob@x.example",), ("nobody-else@x.example", "eve@x.example")]
)
def test_live_grants_counts_every_live_user_once_whatever_path_counts_it(
    targets: tuple[str, ...],
) -> None:
    """The base of lost_grants' relative limit is every grant value live users hold. The plan
    counts a user the quick check found exactly as the rules give it from the rules, and
    reads the others (changed, not paired, not covered by a partial plan): the sum must be
    the same as reading every live user."""
    users = "".join(
        f"  - userName: {n}@x.example\n    externalId: '{n}'\n    title: T\n    groups: [{g}]\n"
        for n, g in (("alice", "Admins, Staff"), ("bob", "Staff"), ("carol", "Staff"))
    )
    s = state(users + "  - userName: dave@x.example\n    groups: [Admins]\n", GROUPS, RULES)
    created = plan(s).changes
    bodies = {c.key: c.body for c in created if c.action == "create" and c.resource_type == "User"}
    live = [{**body, "id": f"u-{key}"} for key, body in bodies.items() if key != "dave@x.example"]
    live[1]["title"] = "changed outside git"  # bob: compared fully
    live[2]["entitlements"] = [*live[2]["entitlements"], {"value": "Extra"}]  # carol
    eve = live_user("eve@x.example", "u-eve", roles=[{"value": "admin"}], entitlements=[])
    live.append(eve)  # not in desired-state

    def held(u: dict[str, Any]) -> int:
        n = len(u.get("entitlements") or []) + len(u.get("roles") or [])
        return n + sum(1 if isinstance(v, str) else len(v) for v in u.get(ACCESS, {}).values())

    p = plan(s, live, targets=targets)
    assert p.live_grants == sum(map(held, live)) == 12
