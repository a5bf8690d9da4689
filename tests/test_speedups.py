"""reconciler/_speedups.c against the Python code each of its functions ports.

Each C function has a Python reference that runs where the module is not built. Where both
answer, they must agree: a plan must not depend on whether a C compiler was there at
install time. scan may be more cautious than its reference ("may differ" where the
reference says unchanged: the plan then compares that user fully); on the plain JSON a
tenant sends the two agree exactly, and that is what these tests hold them to.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.desired import state as state_module
from reconciler.desired.loader import load
from reconciler.desired.models import ENTERPRISE_USER, Group, Tenant, User
from reconciler.desired.state import DesiredState, user_groups_python
from reconciler.live import LiveState
from reconciler.plan import build, match, quick, scimmap
from reconciler.plan.build import PlanContext, build_plan, ids_of_python
from reconciler.plan.match import index_strings_python
from reconciler.plan.rules import Evaluator
from tests.bench.bench_plan import live_pages
from tests.bench.generate import generate
from tests.plan import test_unchanged as one

try:
    from reconciler import _speedups
except ImportError:  # reported by the first test, which says what to do
    _speedups = None  # type: ignore[assignment]

NOW = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)


def test_the_c_module_is_built_and_used() -> None:
    # The plan's speed at 100,000 users rests on it (make bench); the suite runs where a C
    # compiler is installed, so a module left out by the build is an error, not a fallback.
    assert _speedups is not None, (
        "reconciler._speedups was not built: install a C compiler and the Python headers "
        "(Debian: gcc python3-dev), then make install"
    )
    assert quick.NATIVE and quick.scan is _speedups.scan
    assert state_module._native is _speedups.user_groups
    assert match.index_strings is _speedups.index_strings
    assert build.ids_of is _speedups.ids_of
    assert build.field_values is _speedups.field_values
    assert match._native_find is _speedups.find
    assert build._native_same is _speedups.same_members


# ---- scan -------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(one._live())
def test_scan_agrees_with_unchanged_on_every_variant(live: dict[str, Any]) -> None:
    grants = [scimmap.quick_grants(one.ACCESS)]
    args = ([one.ALICE], [live], grants, one.IDS, one.SPEC)
    assert _speedups.scan(*args) == quick.scan_python(*args)


def test_scan_skips_the_unpaired_and_is_cautious_with_what_is_not_plain_json() -> None:
    base = copy.deepcopy(one.BASE)
    grants = [scimmap.quick_grants(one.ACCESS)] * 4

    class Mapping(dict[str, Any]):
        pass

    lives: list[Any] = [None, base, Mapping(base), {**base, "name": Mapping(base["name"])}]
    assert quick.scan_python([one.ALICE] * 4, lives, grants, one.IDS, one.SPEC) == [2, 3]
    assert _speedups.scan([one.ALICE] * 4, lives, grants, one.IDS, one.SPEC) == [2, 3]
    # Without rules (grants None) the grant attributes are not read at all.
    no_rules = {k: v for k, v in base.items() if k not in ("entitlements", "roles")}
    assert _speedups.scan([one.ALICE], [no_rules], None, one.IDS, one.SPEC) == []


def test_scan_refuses_arguments_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        _speedups.scan([one.ALICE], [], None, one.IDS, one.SPEC)
    with pytest.raises(TypeError, match="QuickSpec"):
        _speedups.scan([one.ALICE], [one.BASE], None, one.IDS, ("not", "a", "spec"))


# ---- a generated tenant, drifted at random ------------------------------------------------


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> tuple[DesiredState, LiveState]:
    root = tmp_path_factory.mktemp("speedups") / "desired-state"
    generate(root, users=400, groups=40, rules=12, url="https://scim.example/v2")
    result = load(root)
    assert result.state is not None
    desired = result.state
    upages, gpages = live_pages(desired, 0.0)
    users = [r for p in upages for r in json.loads(p)["Resources"]]
    groups = [r for p in gpages for r in json.loads(p)["Resources"]]
    return desired, LiveState("https://scim.example/v2", tuple(users), tuple(groups))


def _drift(users: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """The live users, each changed in one of the ways a tenant changes them (or not)."""
    ways = [
        lambda u: u.update(title=u.get("title", "").upper()),  # case only: no change
        lambda u: u.update(title="Changed outside git"),
        lambda u: u.pop("displayName", None),
        lambda u: u.update(active=False),
        lambda u: u.update(nickName="extra"),  # not managed
        lambda u: u["name"].update(givenName="Zed"),
        lambda u: u["emails"][0].update(display="x"),
        lambda u: u["emails"].reverse(),
        lambda u: u.setdefault(ENTERPRISE_USER, {}).update(costCenter="CC-000"),
        lambda u: u.setdefault(ENTERPRISE_USER, {}).update(manager={"value": "nobody"}),
        lambda u: u.setdefault(ENTERPRISE_USER, {}).pop("manager", None),
        lambda u: u.update(entitlements=list(reversed(u.get("entitlements") or []))),
        lambda u: u.update(roles=None),
        lambda u: u.setdefault(scimmap.ACCESS_EXT, {}).update(userGroup="ug-x"),
    ]
    out = copy.deepcopy(users)
    for u in out:
        if rng.random() < 0.5:
            rng.choice(ways)(u)
    return out


@pytest.mark.parametrize("seed", range(5))
def test_scan_agrees_on_a_drifted_tenant(tenant: tuple[DesiredState, LiveState], seed: int) -> None:
    desired, live = tenant
    lives = _drift(list(live.users), random.Random(seed))
    names = desired.user_names
    ids = ids_of_python(names, lives)
    accs = Evaluator(desired).each(desired)
    grants = [scimmap.quick_grants(a) for a in accs]
    spec = scimmap.quick_spec(desired.attributes)
    assert spec is not None
    args = (desired.users, lives, grants, ids, spec)
    flagged = _speedups.scan(*args)
    assert flagged == quick.scan_python(*args)
    assert 0 < len(flagged) < len(lives)  # the drift took both ways


@pytest.mark.parametrize("seed", range(3))
def test_a_plan_is_the_same_without_the_c_module(
    tenant: tuple[DesiredState, LiveState], seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    desired, live = tenant
    rng = random.Random(seed)
    users = _drift(list(live.users), rng)
    del users[rng.randrange(len(users))]  # someone to create
    groups = copy.deepcopy(list(live.groups))
    everyone = [{"value": str(u["id"])} for u in users]
    for n, g in enumerate(rng.sample(groups, 4)):  # members gone; others added in the console
        outsider = next(m for m in everyone if m not in g["members"])
        g["members"] = g["members"][1:] if n < 2 else [*g["members"], outsider]
    drifted = LiveState(live.url, tuple(users), tuple(groups))

    def fresh() -> DesiredState:
        for name in ("user_names", "members", "member_lists", "groups_of", "user_groups"):
            desired.__dict__.pop(name, None)
        desired.__dict__.pop("_memberships", None)
        return desired

    native = build_plan(fresh(), drifted, PlanContext(now=NOW))
    monkeypatch.setattr(quick, "scan", quick.scan_python)
    monkeypatch.setattr(state_module, "_native", None)
    monkeypatch.setattr(match, "index_strings", index_strings_python)
    monkeypatch.setattr(build, "ids_of", ids_of_python)
    monkeypatch.setattr(build, "field_values", build.field_values_python)
    monkeypatch.setattr(match, "_native_find", None)
    monkeypatch.setattr(build, "_native_same", None)
    python = build_plan(fresh(), drifted, PlanContext(now=NOW))
    assert native.changes and native.plan_hash == python.plan_hash
    assert native.model_dump() == python.model_dump()
    assert {c.action for c in native.changes} >= {"add_member", "remove_member", "create"}


# ---- user_groups --------------------------------------------------------------------------

_SPELLINGS = st.sampled_from(["Sales", "sales", "SALES", "Support", "Eng", "eng", "Ops", "ẞtraße"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(_SPELLINGS, max_size=5), max_size=30))
def test_user_groups_agrees_with_its_reference(lists: list[list[str]]) -> None:
    users = [User(userName=f"u{i}@x.example", groups=g) for i, g in enumerate(lists)]
    names = [u.userName for u in users]
    got = _speedups.user_groups(users, names, {})
    assert got is not None
    sets, members = got
    ref_sets, ref_members = user_groups_python(users, names, {})
    assert sets == ref_sets
    assert sets == [frozenset(g.casefold() for g in gs) for gs in lists]
    # Users of the same groups share one set object.
    assert len({id(s) for s in sets}) == len(set(sets))
    assert {g: sorted(v) for g, v in members.items()} == {
        g: sorted(v) for g, v in ref_members.items()
    }
    for holders in members.values():
        assert len(holders) == len(set(holders))  # a group listed twice: one membership


def test_user_groups_leaves_what_is_not_a_list_of_strings_to_python() -> None:
    user = User(userName="u@x.example", groups=["Sales"])
    object.__setattr__(user, "groups", ("Sales",))  # a tuple, not a list
    assert _speedups.user_groups([user], ["u@x.example"], {}) is None


def test_memberships_are_the_same_without_the_c_module(monkeypatch: pytest.MonkeyPatch) -> None:
    def desired() -> DesiredState:
        return DesiredState(
            root=Path("/state"),
            tenant=Tenant(url="https://scim.example/v2"),
            users=tuple(
                User(userName=f"U{i}@x.example", groups=g)
                for i, g in enumerate([["Sales", "eng"], ["ENG"], [], ["sales", "Eng"], ["Ops"]])
            ),
            groups=(
                Group(displayName="Sales", members=["u2@x.example", "nobody@x.example"]),
                Group(displayName="Eng"),
                Group(displayName="Empty"),
            ),
            rules=(),
            attributes=(),
        )

    native = desired()
    views = (native.members, native.member_lists, native.groups_of, native.user_groups)
    monkeypatch.setattr(state_module, "_native", None)
    python = desired()
    assert views[0] == python.members
    assert views[2:] == (python.groups_of, python.user_groups)
    assert {g: sorted(v) for g, v in views[1].items()} == {
        g: sorted(v) for g, v in python.member_lists.items()
    }
    assert native.members["sales"] == {
        "u0@x.example",
        "u2@x.example",
        "u3@x.example",
        "nobody@x.example",
    }
    assert native.members["empty"] == frozenset()
    assert native.groups_of["nobody@x.example"] == {"sales"}


# ---- index_strings and ids_of ---------------------------------------------------------------

_VALUES = st.one_of(
    st.sampled_from(["a", "b", "A", "", None, "Ünï"]), st.integers(0, 3), st.just("absent")
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_VALUES, max_size=12), st.booleans())
def test_index_strings_agrees_with_its_reference(values: list[Any], fold: bool) -> None:
    live = [
        {"id": str(i)} if v == "absent" else {"id": str(i), "k": v} for i, v in enumerate(values)
    ]
    got = _speedups.index_strings(live, "k", fold)
    ref = index_strings_python(live, "k", fold)
    assert got == ref
    if got is not None:
        assert all(got[k] is r for k, r in (ref or {}).items())  # the very resources


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["id", None, 7]), max_size=10))
def test_ids_of_agrees_with_its_reference(ids: list[Any]) -> None:
    names = [f"u{i}" for i in range(len(ids))]
    matched = [
        None if v is None else {"id": f"{v}{i}" if v == "id" else v} for i, v in enumerate(ids)
    ]
    got = _speedups.ids_of(names, matched)
    ref = ids_of_python(names, matched)
    if any(v == 7 for v in ids):
        assert got is None  # not a string: the reference, which converts, runs instead
    else:
        assert got == ref


# ---- field_values and find (pairing by the first key, in bulk) ------------------------------


def test_field_values_agrees_with_its_reference() -> None:
    users = [
        User(userName=f"u{i}@x", externalId=None if i % 3 == 0 else f"e{i}") for i in range(150)
    ]
    for name in ("externalId", "userName", "groups"):
        got = _speedups.field_values(users, name)
        assert got == build.field_values_python(users, name)
        assert got is not None and all(
            a is b for a, b in zip(got, map(getattr, users, [name] * 150), strict=True)
        )

    class Plain:  # attributes, but none in its __dict__ under that name
        externalId = "class attribute"

    assert build.field_values_python([Plain()], "externalId") == ["class attribute"]
    assert _speedups.field_values([Plain()], "externalId") is None  # left to the reference
    assert build._first_keys([Plain()], ["p"], "externalId") == ["class attribute"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", "c", "A", "", None, "z"]), max_size=12),
    st.sets(st.sampled_from(["a", "b", "c", "A", ""]), max_size=5),
)
def test_find_agrees_with_its_reference(values: list[str | None], keys: set[str]) -> None:
    index = {k: {"id": k} for k in keys}
    got = _speedups.find(index, values)
    assert got == match.find_python(index, values)
    if got is not None:  # the very resources
        assert all(
            r is (None if v is None else index.get(v)) for r, v in zip(got[0], values, strict=True)
        )


def test_find_leaves_what_is_not_a_str_to_its_reference() -> None:
    index = {"a": {"id": "a"}}
    assert _speedups.find(index, ["a", 1]) is None
    assert match.find(index, ["a", 1]) == ([{"id": "a"}, None], 1)  # type: ignore[list-item]
    assert _speedups.find(index, ["a", "a"]) is None  # two find one: pair one at a time
    assert match.find_python(index, ["a", "a"]) is None


def test_find_is_cautious_where_two_values_find_one_resource() -> None:
    # An index of one resource under two values (index_strings never makes one): the C pass
    # tells found resources apart by address, so two values finding one answer None, and
    # the caller pairs one object at a time, where the second claim is an error.
    r = {"id": "r"}
    index = {"a": r, "b": r}
    assert _speedups.find(index, ["a", "b"]) is None
    assert _speedups.find(index, ["a", None, "c"]) == ([r, None, None], 1)
    # Thousands of distinct resources: none is taken for another.
    many = {f"k{i}": {"id": i} for i in range(5000)}
    found, hits = _speedups.find(many, [*many, None])
    assert hits == 5000 and all(f is many[k] for f, k in zip(found, many, strict=False))


# ---- same_members ----------------------------------------------------------------------------

_NAMES = [f"u{i}@x" for i in range(40)]
_IDS = {n: f"id{i}" for i, n in enumerate(_NAMES) if i % 9}  # every ninth user not paired


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(_NAMES), max_size=40, unique=True),
    st.lists(
        st.one_of(
            st.sampled_from(sorted(_IDS.values())).map(lambda v: {"value": v}),
            st.sampled_from(sorted(_IDS.values())).map(lambda v: {"value": v, "display": "x"}),
            st.just({"value": "stranger"}),
        ),
        max_size=45,
    ),
    st.booleans(),
)
def test_same_members_agrees_with_its_reference(
    desired: list[str], members: list[dict[str, Any]], exact: bool
) -> None:
    if exact:  # the common case: the live group holds exactly the desired members
        members = [{"value": _IDS[n]} for n in reversed(desired) if n in _IDS]
    got = _speedups.same_members(desired, members, _IDS)
    assert got == build.same_members_python(desired, members, _IDS)
    assert got == build.same_members(desired, members, _IDS)


def test_same_members_leaves_what_is_not_plain_json_to_its_reference() -> None:
    ids = {"a@x": "1", "b@x": "2"}
    for members in (None, [{"value": 1}], [{"display": "no value"}], ["1"], ({"value": "1"},)):
        assert _speedups.same_members(["a@x"], members, ids) is None
    assert _speedups.same_members(["a@x"], [{"value": "1"}], {"a@x": 1}) is None
    assert _speedups.same_members([1], [{"value": "1"}], ids) is None
    assert _speedups.same_members(["a@x", "b@x"], [{"value": "2"}, {"value": "1"}], ids) is True
    # Listed twice live: one member, as the reference's set of ids counts it.
    twice = [{"value": "1"}, {"value": "1"}]
    assert _speedups.same_members(["a@x"], twice, ids) is True
    assert build.same_members_python(["a@x"], twice, ids) is True


# ---- Python code run by a comparison, and inputs off the plain JSON ---------------------------
# Comparing runs Python code (__eq__, __bool__, __hash__, a str subclass's casefold, a model's
# __dict__) that may mutate or free what is being scanned: the C module must hold what it
# uses (these crashed it), and must never be less cautious than its reference.


class _Evil:
    """Equal to anything, after running ``act``."""

    def __init__(self, act: Any) -> None:
        self.act = act

    def __eq__(self, other: object) -> bool:
        self.act()
        return True

    __hash__ = None  # type: ignore[assignment]


def test_scan_survives_comparisons_that_mutate_what_it_scans() -> None:
    grants = scimmap.quick_grants(one.ACCESS)
    lives = [copy.deepcopy(one.BASE) for _ in range(20)]
    lives[0][scimmap.ACCESS_EXT]["userGroup"] = _Evil(lambda: lives[0].pop(scimmap.ACCESS_EXT))
    lives[1]["displayName"] = _Evil(lives.clear)
    assert _speedups.scan([one.ALICE] * 20, lives, [grants] * 20, one.IDS, one.SPEC) == []
    live = copy.deepcopy(one.BASE)
    emails = live["emails"] = [dict(live["emails"][0])]
    emails[0]["type"] = _Evil(emails.clear)  # the live list is empty after: may differ
    assert _speedups.scan([one.ALICE], [live], None, one.IDS, one.SPEC) == [0]
    mine = [(list(grants[0]), list(grants[1]), tuple(grants[2]))]
    live = {**copy.deepcopy(one.BASE), "entitlements": _Evil(mine.clear)}
    assert _speedups.scan([one.ALICE], [live], mine, one.IDS, one.SPEC) == []

    class Mid(str):
        def __bool__(self) -> bool:
            ids.clear()
            return True

    ids = {"bob@x.example": Mid("u2")}
    assert _speedups.scan([one.ALICE], [copy.deepcopy(one.BASE)], None, ids, one.SPEC) == []


def test_the_others_survive_hashing_that_mutates_their_input() -> None:
    live = [{"k": f"v{i}"} for i in range(20)]

    class Key(str):
        def __hash__(self) -> int:
            live.clear()
            return str.__hash__(self)

        def __eq__(self, other: object) -> bool:
            return str.__eq__(self, other)

    assert len(_speedups.index_strings(live, Key("k"), False) or {}) == 20
    matched: list[Any] = [{"id": f"x{i}"} for i in range(20)]

    class Name:
        def __hash__(self) -> int:
            matched.clear()
            return 1

    assert len(_speedups.ids_of([Name() for _ in range(20)], matched) or {}) == 20

    class Model:
        groups: list[str]

    user = Model()
    user.groups = ["A", "B", "C"] * 10

    class Folded:
        def __hash__(self) -> int:
            user.groups = []
            return 1

    assert _speedups.user_groups([user], ["n"], {"A": Folded()}) is None


def test_scan_compares_as_its_reference_writes_it() -> None:
    # Live value on the left of ==, and != where the reference writes !=.
    class Yes:
        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = None  # type: ignore[assignment]

    class No:
        def __eq__(self, other: object) -> bool:
            return False

        __hash__ = None  # type: ignore[assignment]

    class AlwaysEqual(dict[str, Any]):
        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = None  # type: ignore[assignment]

    grants = [scimmap.quick_grants(one.ACCESS)]
    alice = one.ALICE.model_copy(
        update={"attributes": {**one.ALICE.attributes, "costCenter": Yes()}}
    )
    live = copy.deepcopy(one.BASE)
    live[ENTERPRISE_USER]["costCenter"] = No()
    manager = copy.deepcopy(one.BASE)
    manager[ENTERPRISE_USER]["manager"] = AlwaysEqual(value="someone else")

    class Ids(dict[str, str]):
        def get(self, key: str, default: Any = None) -> Any:
            return "someone else"

    for args in [
        ([alice], [live], grants, one.IDS, one.SPEC),
        ([one.ALICE], [manager], grants, {}, one.SPEC),
        ([one.ALICE], [copy.deepcopy(one.BASE)], grants, Ids(one.IDS), one.SPEC),
    ]:
        assert quick.scan_python(*args) == [0]
        assert _speedups.scan(*args) == [0]


def test_user_groups_and_index_strings_agree_off_the_usual_inputs() -> None:
    users = [User(userName="a@x", groups=["Sales"]), User(userName="b@x", groups=["Sales"])]
    name = "one object"  # two users of one name object: two memberships, as in the reference
    assert _speedups.user_groups(users, [name, name], {}) == user_groups_python(
        users, [name, name], {}
    )
    # folded holding None for a spelling: the reference folds it again.
    assert _speedups.user_groups(users[:1], ["a@x"], {"Sales": None}) == (
        [frozenset({"sales"})],
        {"sales": ["a@x"]},
    )
    r = {"k": "a"}  # one resource listed twice shares its value with itself
    assert index_strings_python([r, r], "k", False) is None
    assert _speedups.index_strings([r, r], "k", False) is None


# ---- warming (reading a block of users ahead, breadth-first) ---------------------------------


def test_warming_a_block_never_changes_an_answer_whatever_the_live_resources_hold() -> None:
    # Before each block of 32 users, scan and user_groups read ahead what the block reaches,
    # a level at a time, into a buffer of fixed room. Whatever they meet (cycles, a dict
    # with more items than the room, objects with or without a __dict__, other types), the
    # answers are the reference's, and nothing is changed.
    grants = scimmap.quick_grants(one.ACCESS)
    cyclic: dict[str, Any] = copy.deepcopy(one.BASE)
    cyclic["self"] = cyclic
    huge = {**copy.deepcopy(one.BASE), "x": {str(i): [i, str(i)] for i in range(20_000)}}

    class Slotted:
        __slots__ = ("a",)

    odd = {**copy.deepcopy(one.BASE), "y": [Slotted(), object(), 1.5, b"b", (1, [2]), {3}]}
    changed = {**copy.deepcopy(one.BASE), "displayName": "Someone else"}
    lives: list[Any] = [copy.deepcopy(one.BASE) for _ in range(200)]
    lives[3], lives[70], lives[130], lives[131], lives[199] = cyclic, huge, odd, changed, None

    def snapshot() -> str:
        kept = [lv for lv in lives if lv is not cyclic]
        return json.dumps(kept, default=lambda o: f"{type(o).__name__} at {id(o)}")

    before = snapshot()
    users = [one.ALICE] * 200
    args = (users, lives, [grants] * 200, one.IDS, one.SPEC)
    assert _speedups.scan(*args) == quick.scan_python(*args) == [131]
    assert snapshot() == before
    many = [
        User(userName=f"u{i}@x", groups=["Sales", "sales", f"Team {i % 7}"]) for i in range(150)
    ]
    names = [u.userName for u in many]
    got, want = _speedups.user_groups(many, names, {}), user_groups_python(many, names, {})
    assert got[0] == want[0]
    assert {g: sorted(m) for g, m in got[1].items()} == {g: sorted(m) for g, m in want[1].items()}
