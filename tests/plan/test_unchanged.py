"""The plan's quick check (``scimmap.unchanged``) against its full comparison.

At scale most users are unchanged, and the plan answers "unchanged" for them from exact
equality alone. That answer must never hide a change: whenever it says unchanged, the full,
normalising comparison must agree. Custom attributes compare by value (``5`` is ``5.0``,
``true`` is ``"True"``), so the two never disagree on numbers either.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.desired.loader import load_files
from reconciler.desired.models import ENTERPRISE_USER
from reconciler.desired.state import DesiredState
from reconciler.live import LiveState
from reconciler.plan import scimmap
from reconciler.plan.build import PlanContext, build_plan
from reconciler.plan.rules import evaluate
from tests.plan.test_build import NOW

ROOT = Path("/state")
ACME = "urn:example:params:scim:schemas:extension:acme:1.0:User"
ATTRIBUTES = f"""\
attributes:
  - name: costCenter
  - name: badge
    type: integer
  - name: remote
    type: boolean
  - name: rate
    type: decimal
  - name: skills
    multi_valued: true
  - name: tier
    scim: {{schema: '{ACME}'}}
"""
USERS = """\
users:
  - userName: alice@x.example
    externalId: '1'
    name: {givenName: Alice, familyName: Liddell}
    displayName: Alice Liddell
    title: Engineer
    emails: [alice@x.example]
    phoneNumbers: [{value: '+1 555 0100'}]
    manager: bob@x.example
    groups: [Admins, Staff]
    attributes: {costCenter: CC-1, badge: 5, remote: true, rate: 1.5, skills: [go, sql],
                 tier: gold}
  - userName: bob@x.example
    externalId: '2'
    groups: [Staff]
"""
RULES = """\
rules:
  - name: Admins
    priority: 10
    match: {groups_any: [Admins]}
    grants: {role: admin, products: [Resolve], deviceGroups: [dg-1]}
  - name: Everyone
    priority: 90
    match: {groups_any: [Staff]}
    grants: {role: member, products: [Meeting], userGroup: Staff}
"""
GROUPS = "groups:\n  - displayName: Admins\n  - displayName: Staff\n"


def _state() -> DesiredState:
    files = {
        ROOT / "tenant.yaml": b"url: https://scim.example/v2\n",
        ROOT / "attributes.yaml": ATTRIBUTES.encode(),
        ROOT / "users.yaml": USERS.encode(),
        ROOT / "rules.yaml": RULES.encode(),
        ROOT / "groups.yaml": GROUPS.encode(),
    }
    result = load_files(ROOT, files)
    assert result.ok and result.state is not None, result.diagnostics
    return result.state


STATE = _state()
ALICE = STATE.users[0]
ACCESS = evaluate(STATE)["alice@x.example"]
IDS = {"alice@x.example": "u1", "bob@x.example": "u2"}
VALUES = scimmap.desired_values(ALICE, STATE, ACCESS, IDS)
# The live Alice exactly as the reconciler would have written her.
BASE = {
    **scimmap.scim_body(scimmap.managed(VALUES), []),
    "id": "u1",
    "meta": {"version": 'W/"1"'},
}


SPEC = scimmap.quick_spec(STATE.attributes)
assert SPEC is not None


def _unchanged(live: dict[str, Any]) -> bool:
    return scimmap.unchanged(ALICE, SPEC, scimmap.quick_grants(ACCESS), IDS, live)


def _same(live: dict[str, Any]) -> bool:
    return scimmap.same_as_live(VALUES, live)


def test_an_exact_copy_takes_the_quick_answer() -> None:
    assert _unchanged(copy.deepcopy(BASE))
    assert _same(BASE)


# Where a perturbation lands: a top-level attribute, or one inside a complex attribute or an
# extension.
PLACES = [
    ("userName",),
    ("externalId",),
    ("displayName",),
    ("title",),
    ("nickName",),
    ("active",),
    ("emails",),
    ("phoneNumbers",),
    ("entitlements",),
    ("roles",),
    ("name", "givenName"),
    ("name", "formatted"),
    (ENTERPRISE_USER, "costCenter"),
    (ENTERPRISE_USER, "badge"),
    (ENTERPRISE_USER, "remote"),
    (ENTERPRISE_USER, "rate"),
    (ENTERPRISE_USER, "skills"),
    (ENTERPRISE_USER, "manager"),
    (ENTERPRISE_USER, "organization"),
    (ACME, "tier"),
    (scimmap.ACCESS_EXT, "userGroup"),
    (scimmap.ACCESS_EXT, "deviceGroups"),
]


# What the reader guarantees before the plan sees a user (reconciler.scim.read.problem):
# these are lists of objects when present, and ``active`` is a boolean.
LISTS = {"emails", "phoneNumbers", "entitlements", "roles"}


def _variants(place: tuple[str, ...], value: Any) -> st.SearchStrategy[Any]:
    """Values a tenant might send instead of ``value``: the same after normalising (case,
    order, a number or boolean spelled otherwise) or really different."""
    if place == ("active",):
        return st.sampled_from([None, True, False])
    options: list[Any] = [None, "", [], "other", 7, 7.0, True, False, "true", "False", 1, 0]
    if isinstance(value, str):
        options += [value.upper(), value.lower(), value + " ", value.swapcase()]
    if isinstance(value, bool):
        options += [str(value).lower(), str(value), int(value)]
    elif isinstance(value, int | float):
        options += [float(value), int(value), str(value), value + 1]
    if isinstance(value, list):
        options += [list(reversed(value)), value[:1], [*value, value[0]]]
        if value and isinstance(value[0], dict):
            options += [
                [{**value[0], "primary": not value[0].get("primary")}, *value[1:]],
                [{**value[0], "display": "x"}, *value[1:]],
                [{k: v for k, v in value[0].items() if k != "type"}, *value[1:]],
            ]
    if isinstance(value, dict):
        options += [{**value, "display": "Bob"}, {"value": "u3"}]
    if place[0] in LISTS:
        options = [o for o in options if o is None or isinstance(o, list)]
    return st.sampled_from(options)


@st.composite
def _live(draw: st.DrawFn) -> dict[str, Any]:
    live = copy.deepcopy(BASE)
    for place in draw(st.lists(st.sampled_from(PLACES), min_size=1, max_size=4, unique=True)):
        parent = live
        for step in place[:-1]:
            parent = parent.setdefault(step, {})
        key = place[-1]
        new = draw(_variants(place, parent.get(key, "x")))
        if new is None and draw(st.booleans()):
            parent.pop(key, None)
        else:
            parent[key] = new
    return live


@settings(max_examples=400, deadline=None)
@given(_live())
def test_the_quick_answer_never_hides_a_change(live: dict[str, Any]) -> None:
    differs = any(m.differs(live) for m in scimmap.managed(VALUES).values())
    assert _same(live) is not differs
    if _unchanged(live):
        assert _same(live), "the quick check called a changed user unchanged"


def _plan_for(live_alice: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """The field changes of the users in a plan against ``live_alice`` and an unchanged Bob."""
    bob_access = evaluate(STATE)["bob@x.example"]
    bob_values = scimmap.desired_values(STATE.users[1], STATE, bob_access, IDS)
    bob = {**scimmap.scim_body(scimmap.managed(bob_values), []), "id": "u2"}
    live = LiveState("https://scim.example/v2", (live_alice, bob), ())
    plan = build_plan(STATE, live, PlanContext(now=NOW))
    return [
        (f.path, f.before, f.after)
        for c in plan.changes
        if c.resource_type == "User"
        for f in c.fields
    ]


def test_numbers_and_booleans_compare_by_value() -> None:
    for badge, remote, rate in [(5.0, "true", "1.50"), ("5", 1, 1.5), (5, "True", "1.5")]:
        live = copy.deepcopy(BASE)
        live[ENTERPRISE_USER].update(badge=badge, remote=remote, rate=rate)
        assert _plan_for(live) == [], (badge, remote, rate)
    live = copy.deepcopy(BASE)
    live[ENTERPRISE_USER].update(badge=6, remote="no")
    assert _plan_for(live) == [
        (f"{ENTERPRISE_USER}:badge", 6, 5),
        (f"{ENTERPRISE_USER}:remote", "no", True),
    ]


def test_the_plan_records_ids_of_the_users_it_names_only() -> None:
    live = copy.deepcopy(BASE)
    live["title"] = "Manager"
    bob = {"id": "u2", "userName": "bob@x.example", "externalId": "2"}
    plan = build_plan(
        STATE,
        LiveState("https://scim.example/v2", (live, bob), ()),
        PlanContext(now=NOW),
    )
    assert {c.key for c in plan.changes} >= {"alice@x.example"}
    named = {c.key.casefold() for c in plan.changes if c.resource_type == "User"}
    assert set(plan.ids) == named & {"alice@x.example", "bob@x.example"}
    assert plan.ids["alice@x.example"] == "u1"


def test_a_number_held_as_a_boolean_is_not_unchanged() -> None:
    # True == 1 and 1.0 == True, but an integer or decimal attribute normalises them apart
    # ("true" against 1): the quick check must not call that user unchanged.
    alice = ALICE.model_copy(update={"attributes": {**ALICE.attributes, "badge": 1, "rate": 1.0}})
    values = scimmap.desired_values(alice, STATE, ACCESS, IDS)
    base = {**scimmap.scim_body(scimmap.managed(values), []), "id": "u1"}
    for attr in ("badge", "rate"):
        live = copy.deepcopy(base)
        live[ENTERPRISE_USER][attr] = True
        assert not scimmap.same_as_live(values, live)
        assert not scimmap.unchanged(alice, SPEC, scimmap.quick_grants(ACCESS), IDS, live)
