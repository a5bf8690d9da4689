"""The plan core: desired state + live state + context → a frozen :class:`Plan`. Pure.

No I/O, no clock, no git: the time and the removal dates come in ``PlanContext``.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import compress, repeat
from operator import attrgetter, is_not, itemgetter
from typing import Any

from reconciler.desired.models import CORE_USER, OwnershipMode, User
from reconciler.desired.state import DesiredState
from reconciler.live import LiveState
from reconciler.plan import quick, scimmap
from reconciler.plan.fielddiff import item_changes
from reconciler.plan.hashing import plan_hash
from reconciler.plan.match import group_key_values, pair, user_key_values
from reconciler.plan.model import (
    SENSITIVE_BEFORE,
    STAGES,
    AccessChange,
    Change,
    FieldChange,
    Plan,
    PlanDiagnostic,
    count_actions,
)
from reconciler.plan.protection import GRANT_PATHS, Protection, grant_values
from reconciler.plan.rules import EffectiveAccess, Evaluator, lint

CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


@dataclass(frozen=True)
class Removal:
    """When (and in which commit) a user or group was removed from desired-state, and the
    externalId its entry had then (None: it had none, or it is not known)."""

    when: dt.datetime
    commit: str = ""
    external_id: str | None = None


@dataclass(frozen=True)
class PlanContext:
    now: dt.datetime
    commit: str | None = None
    # The desired-state directory holds changes that ``commit`` does not.
    uncommitted: bool = False
    removed: Mapping[str, Removal] = field(default_factory=dict)
    # Casefolded group displayName → its removal.
    removed_groups: Mapping[str, Removal] = field(default_factory=dict)
    # The git history ``removed`` was read from stops short (a shallow clone): a live user
    # or group not in desired-state may have been removed before it, and cannot be told
    # apart.
    shallow: bool = False
    targets: tuple[str, ...] = ()
    # The tenant URL actually used (--tenant / RECONCILER_TENANT_URL), never credentials.
    url: str | None = None


@dataclass
class _Builder:
    state: DesiredState
    live: LiveState
    ctx: PlanContext
    changes: list[Change] = field(default_factory=list)
    diags: list[PlanDiagnostic] = field(default_factory=list)
    gains: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    loses: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    # Casefolded names a partial plan covers: the targets as given, and the desired name of
    # an object targeted by its live name (a rename in git: its old name still finds it).
    targets: set[str] = field(default_factory=set)
    # How many grant values the live users hold (the lost_grants gate's base).
    live_grants: int = 0
    # Desired users whose match was ambiguous (casefolded userNames), and the ids of the live
    # users such a match named: the plan makes no change for either (the error says why).
    unmatched_desired: set[str] = field(default_factory=set)
    contested_ids: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.targets = {t.casefold() for t in self.ctx.targets}

    @cached_property
    def name_of_id(self) -> dict[str, str]:
        """Casefolded userName of each paired live user id (built only when a plan removes
        members)."""
        return {uid: name for name, uid in self.ids.items()}

    @cached_property
    def live_by_id(self) -> dict[str, dict[str, Any]]:
        return {str(r["id"]): r for r in self.live.users}

    @cached_property
    def live_names(self) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """Live users by casefolded userName and groups by casefolded displayName (built only
        when the plan renames something)."""
        out: dict[str, dict[str, list[dict[str, Any]]]] = {"User": {}, "Group": {}}
        for kind, resources, key in (
            ("User", self.live.users, "userName"),
            ("Group", self.live.groups, "displayName"),
        ):
            for r in resources:
                out[kind].setdefault(str(r.get(key) or "").casefold(), []).append(r)
        return out

    def error(self, message: str, hint: str = "", subject: str = "", code: str = "") -> None:
        self.diags.append(
            PlanDiagnostic(severity="error", message=message, hint=hint, subject=subject, code=code)
        )

    def warn(self, message: str, hint: str = "", subject: str = "", code: str = "") -> None:
        self.diags.append(
            PlanDiagnostic(
                severity="warning", message=message, hint=hint, subject=subject, code=code
            )
        )


def _label_user(r: Mapping[str, Any]) -> str:
    return f"user {r.get('userName')!r}"


def _label_group(r: Mapping[str, Any]) -> str:
    return f"group {r.get('displayName')!r}"


def _targeted(name: str, targets: set[str]) -> bool:
    """Whether a partial plan covers the object ``name`` (every object when not partial).
    ``targets`` are casefolded (_Builder.targets)."""
    return not targets or name.casefold() in targets


def build_plan(state: DesiredState, live: LiveState, ctx: PlanContext) -> Plan:
    b = _Builder(state, live, ctx)
    tenant = state.tenant
    _check_schemas(b)
    for warning in live.warnings:  # what reading the tenant had to work around
        b.warn(warning, subject=live.url, code="live-read")
    protected = Protection(tenant.protected)
    partial = bool(ctx.targets)

    # ---- users: pair, then compare ---------------------------------------------------
    # At 100,000 users this is most of the plan's time, and most users are unchanged: every
    # step runs over the whole list at once, and the quick check (quick.scan, in C where
    # built) leaves the full comparison to the few users that may differ.
    users = state.users
    names = state.user_names

    def user_keys(i: int, key: str) -> Sequence[str]:
        u = users[i]
        if key == "externalId":
            return (u.externalId,) if u.externalId else ()
        if key == "userName":
            return (names[i],)
        if key == "emails":
            return [e.value.casefold() for e in u.emails]
        return ()

    keys = tenant.matching.users
    mark = len(b.diags)
    pairing = pair(
        len(users),
        user_keys,
        live.users,
        keys,
        user_key_values,
        _label_user,
        lambda i: f"user {users[i].userName!r}",
        first=_first_keys(users, names, keys[0] if keys else ""),
    )
    accs = Evaluator(state).each(state)
    matched = pairing.matched
    ids = b.ids
    ids.update(ids_of(names, matched) or ids_of_python(names, matched))
    failed = {i for i, _ in pairing.errors}  # an ambiguous match: reported below
    b.unmatched_desired = {names[i] for i in failed}
    b.contested_ids = {str(r.get("id")) for r in pairing.contested}
    contested = set(map(id, pairing.contested))
    wanted = [i not in failed for i in range(len(users))] if failed else None
    targets = b.targets
    if targets:
        wanted = [
            (wanted is None or wanted[i])
            and (
                name in targets
                or (r is not None and str(r.get("userName", "")).casefold() in targets)
            )
            for i, (name, r) in enumerate(zip(names, matched, strict=True))
        ]
        # Targeted by its live name: renamed in git.
        targets.update(compress(names, wanted))
    # Each user to compare: paired (None: not paired, or not covered by a partial plan).
    compared = (
        matched
        if wanted is None
        else [r if w else None for r, w in zip(matched, wanted, strict=True)]
    )
    spec = scimmap.quick_spec(state.attributes)
    grants = _quick_grants(accs) if state.rules else None
    if spec is None:
        differ = [i for i, r in enumerate(compared) if r is not None]
    else:
        differ = quick.scan(users, compared, grants and grants[0], ids, spec)
    # Desired users no live one pairs with (most plans have none: then the list of pairs is
    # not read again to find them).
    created = (
        [i for i, r in enumerate(matched) if r is None and (wanted is None or wanted[i])]
        if pairing.paired < len(users)
        else []
    )
    for i in sorted((*differ, *created)) if created else differ:
        _user(b, users[i], accs[i], matched[i], pairing.how(i), protected)
    # Every live user read: the compared ones, and those no user pairs with or this plan
    # does not cover.
    b.live_grants = _live_grants_of(
        compared,
        wanted is None and pairing.paired == len(users),
        differ,
        grants,
        [
            *pairing.unmatched_live,
            *(r for r, c in zip(matched, compared, strict=True) if r is not None and c is None),
        ]
        if wanted is not None
        else pairing.unmatched_live,
    )

    # Diagnostics in reading order: rule lints, what came before the users (schemas, the
    # read), ambiguous matches, then the users' own.
    before, own = b.diags[:mark], b.diags[mark:]
    b.diags.clear()
    for rule, message in lint(state, accs):
        b.warn(message, "reorder, narrow or remove the rule", subject=rule.name, code="rule-lint")
    b.diags += before
    for i, message in pairing.errors:
        b.error(
            f"user {users[i].userName!r}: {message}",
            "give the objects distinct keys, or fix the tenant",
            users[i].userName,
            "ambiguous-match",
        )
    b.diags += own

    undated: list[str] = []
    for r in pairing.unmatched_live:
        if id(r) in contested:
            continue  # it may be the desired user an ambiguous match could not tell
        # A partial plan handles a live user only when it is targeted (e.g. one just removed
        # from git, to suspend it now).
        name = str(r.get("userName") or r.get("id"))
        if partial and not _targeted(name, b.targets):
            continue
        if ctx.shallow and name.casefold() not in ctx.removed:
            undated.append(name)
            continue
        _unmanaged_user(b, r, protected)
    _undated(b, "user", undated, "would be neither suspended nor given its grace period")

    # ---- groups -----------------------------------------------------------------------
    groups = list(state.groups)

    def group_keys(i: int, key: str) -> Sequence[str]:
        g = groups[i]
        if key == "externalId":
            return (g.externalId,) if g.externalId else ()
        if key == "displayName":
            return (g.displayName.casefold(),)
        return ()

    gpair = pair(
        len(groups),
        group_keys,
        live.groups,
        tenant.matching.groups,
        group_key_values,
        _label_group,
        lambda i: f"group {groups[i].displayName!r}",
    )
    for i, message in gpair.errors:
        b.error(
            f"group {groups[i].displayName!r}: {message}",
            "give the groups distinct keys, or fix the tenant",
            groups[i].displayName,
            "ambiguous-match",
        )
    # The live ids of targeted users: a partial plan also covers the groups they are in
    # now, to remove them where desired-state no longer puts them.
    targeted_ids = {b.ids[t] for t in b.targets if t in b.ids} if partial else set()
    member_lists = state.member_lists
    gfailed = {i for i, _ in gpair.errors}
    gcontested = set(map(id, gpair.contested))
    for i, g in enumerate(groups):
        if i in gfailed:
            continue  # an ambiguous match: neither created nor changed (the error says why)
        members = member_lists.get(g.displayName.casefold(), ())
        matched_g = gpair.matched[i]
        # A partial plan covers a group named by a target (by its desired or its live name),
        # and the memberships of targeted users (creating the group if it must).
        whole = _targeted(g.displayName, b.targets)
        if not whole and str((matched_g or {}).get("displayName", "")).casefold() in b.targets:
            b.targets.add(g.displayName.casefold())  # targeted by its live name
            whole = True
        if (
            not whole
            and not any(_targeted(m, b.targets) for m in members)
            and not (matched_g and targeted_ids & _member_ids(matched_g.get("members")))
        ):
            continue
        if matched_g is None:
            if not live.capabilities.can_create_groups:
                b.error(
                    f"group {g.displayName!r} does not exist in the tenant, and this tenant cannot "
                    "create groups",
                    "create it with the identity provider (same name), or remove it from "
                    "desired-state",
                    g.displayName,
                    "capability",
                )
                continue
            body: dict[str, Any] = {"schemas": [CORE_GROUP], "displayName": g.displayName}
            if g.externalId:
                body["externalId"] = g.externalId
            b.changes.append(
                Change(
                    action="create",
                    resource_type="Group",
                    key=g.displayName,
                    reason="in desired-state, not in the tenant",
                    body=body,
                    fields=tuple(
                        FieldChange(path=k, after=v) for k, v in body.items() if k != "schemas"
                    ),
                    lookup={"displayName": g.displayName},
                )
            )
            live_members: set[str] = set()
            gid, version = None, None
        else:
            r, how = matched_g, gpair.how(i)
            gid, version = str(r["id"]), (r.get("meta") or {}).get("version")
            if whole:
                _compare_group(b, g, r, how)
            if same_members(members, r.get("members"), b.ids):
                continue  # every desired member is a member already, and nobody else is
            live_members = _member_ids(r.get("members"))
        _members(b, g.displayName, gid, version, members, live_members, partial)

    undated = []
    for r in gpair.unmatched_live:
        if id(r) in gcontested:
            continue  # it may be the desired group an ambiguous match could not tell
        name = str(r.get("displayName") or r.get("id"))
        removal = ctx.removed_groups.get(name.casefold())
        if partial and not _targeted(name, b.targets):
            # Not targeted itself: a removed group of ours loses its targeted members only.
            if removal is not None and not _someone_else(removal, r):
                only = targeted_ids & _member_ids(r.get("members"))
                if only:
                    _removed_group(b, r, removal, only)
            continue
        if removal is not None and _someone_else(removal, r):
            b.warn(
                f"group {name!r} was removed from desired-state, but the tenant's group with "
                f"that displayName has externalId {r.get('externalId')!r}, not "
                f"{removal.external_id!r} as the removed entry had: it is another group, left "
                f"to ownership.groups ({tenant.ownership.groups.value})",
                "nothing to do if that group is not ours; to manage it, add it to "
                "desired-state with its own externalId",
                name,
                "not-ours",
            )
        elif removal is not None:
            _removed_group(b, r, removal)
            continue
        elif ctx.shallow:
            undated.append(name)
            continue
        _unmanaged_group(b, r)
    _undated(b, "group", undated, "would keep its members")
    if partial:
        _check_targets(b)

    return _finish(b, partial)


def field_values_python(models: Sequence[Any], name: str) -> list[Any]:
    """Each model's value of the field ``name``. The reference of
    ``reconciler._speedups.field_values``, which reads each model's fields from its
    ``__dict__``, as pydantic keeps them, and answers None where one is not there."""
    return list(map(attrgetter(name), models))


_native_fields: Callable[[Sequence[Any], str], list[Any] | None]
try:
    from reconciler._speedups import field_values as _native_fields
except ImportError:  # built without a C compiler: the reference runs
    _native_fields = field_values_python
field_values = _native_fields


def ids_of_python(names: Sequence[str], matched: Sequence[dict[str, Any] | None]) -> dict[str, str]:
    """``names[i]`` → the live id of ``matched[i]``, for each paired user. The reference of
    ``reconciler._speedups.ids_of``, which answers None where an id is not a string."""
    return {name: str(r["id"]) for name, r in zip(names, matched, strict=True) if r is not None}


_native_ids: Callable[[Sequence[str], Sequence[dict[str, Any] | None]], dict[str, str] | None]
try:
    from reconciler._speedups import ids_of as _native_ids
except ImportError:  # built without a C compiler: the reference runs
    _native_ids = ids_of_python
ids_of = _native_ids


def _first_keys(users: Sequence[User], names: Sequence[str], key: str) -> list[str | None] | None:
    """Each user's one value for the first matching key, for pairing in bulk (None: the key
    can hold several values)."""
    if key == "externalId":
        # "" finds nothing, as None does.
        found = field_values(users, key)
        return found if found is not None else field_values_python(users, key)
    if key == "userName":
        return list(names)
    return None


def _quick_grants(
    accs: Sequence[EffectiveAccess],
) -> tuple[list[scimmap.QuickGrants], dict[int, int]]:
    """What the rules give each user, for the quick check, built once per access object
    (users of the same groups share one); and, by the id() of each of those, how many grant
    values a user holding exactly it has (scimmap.grant_count)."""
    distinct = dict(zip(map(id, accs), accs, strict=True))
    built = {key: scimmap.quick_grants(a) for key, a in distinct.items()}
    counts = {id(g): scimmap.grant_count(g) for g in built.values()}
    return list(map(built.__getitem__, map(id, accs))), counts


def _live_grants_of(
    compared: Sequence[dict[str, Any] | None],
    all_compared: bool,
    differ: Sequence[int],
    grants: tuple[Sequence[scimmap.QuickGrants], dict[int, int]] | None,
    others: Sequence[dict[str, Any]],
) -> int:
    """:func:`_live_grants` of the live users ``compared`` and ``others``, counting a user
    the quick check found exactly as the rules give it (compared, not in ``differ``) from
    what the rules give (:func:`_quick_grants`), without reading it again. ``all_compared``:
    no item of ``compared`` is None (most plans: then the list is not read to find one)."""
    if grants is None:  # no rules: the quick check did not read the grant attributes
        return _live_grants([*filter(None, compared), *others])
    each, counts = grants
    # Paired users by "is not None", not by truth: the truth of a dict reads it, and reading
    # 100,000 resources again is what this function is here to avoid.
    held: Iterable[scimmap.QuickGrants] = each
    if not all_compared:
        held = compress(each, map(is_not, compared, repeat(None)))
    n = sum(map(counts.__getitem__, map(id, held)))
    n -= sum(counts[id(each[i])] for i in differ)
    return n + _live_grants([*filter(None, map(compared.__getitem__, differ)), *others])


def _undated(b: _Builder, kind: str, names: list[str], consequence: str) -> None:
    """The error for live ``kind``s (user, group) not in desired-state whose removal, if they
    were removed, a shallow history cannot date; ``consequence``: what a removed one would
    miss."""
    if not names:
        return
    listed = ", ".join(repr(n) for n in sorted(names)[:5])
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    b.error(
        f"desired-state's git history is shallow, so whether {len(names)} live "
        f"{kind}{'s' if len(names) > 1 else ''} not in desired-state ({listed}{more}) "
        f"{'were' if len(names) > 1 else 'was'} removed from it, and when, cannot be "
        f"read: a removed {kind} {consequence}",
        "plan from the whole history: git fetch --unshallow (actions/checkout: fetch-depth: 0)",
        code="shallow-history",
    )


def _user(
    b: _Builder,
    user: User,
    acc: EffectiveAccess,
    matched: dict[str, Any] | None,
    how: str,
    protected: Protection,
) -> None:
    """Create ``user``, or update the live one it pairs with (by the key ``how``) where they
    differ."""
    values = scimmap.desired_values(user, b.state, acc, b.ids, active=user.active)
    if matched is None:
        _create_user(b, user, scimmap.managed(values), acc)
    elif not scimmap.same_as_live(values, matched):
        _compare_user(b, user, scimmap.managed(values), acc, matched, how, protected)


def _check_targets(b: _Builder) -> None:
    """A target that names nothing is a typo, not an empty plan: an error (a provisioning
    job run on demand must not report success for nobody)."""
    # Live spellings first, so that a name also in git is suggested as git writes it.
    names = [str(r.get("userName", "")) for r in b.live.users]
    names += [str(r.get("displayName", "")) for r in b.live.groups]
    names += [u.userName for u in b.state.users] + [g.displayName for g in b.state.groups]
    by_fold = {n.casefold(): n for n in names}
    for t in b.ctx.targets:
        if t.casefold() not in by_fold:
            close = difflib.get_close_matches(t.casefold(), by_fold, n=1, cutoff=0.8)
            b.error(
                f"target {t!r} names no user or group in desired-state or in the tenant",
                (f"did you mean {by_fold[close[0]]!r}? " if close else "")
                + "targets are userNames or group displayNames; check the spelling",
                t,
                "target",
            )


def _check_schemas(b: _Builder) -> None:
    """A custom attribute whose schema the tenant does not declare is a plan error: writing
    it would fail for every user at apply time."""
    known = b.live.capabilities.extension_schemas
    if not known:
        return  # the tenant did not list /Schemas: nothing to check against
    for attr in b.state.attributes:
        urn = attr.scim.schema_
        if urn == CORE_USER:
            continue
        names = {n.casefold() for n in known.get(urn, ())}
        if urn not in known or attr.scim_path.casefold() not in names:
            b.error(
                f"custom attribute {attr.name!r} lives in {urn}, which the tenant does not declare"
                + ("" if urn not in known else f" with an attribute {attr.scim_path!r}"),
                "declare the schema in the tenant (for the embedded one: reconciler tenant init "
                "--schema-from desired-state), or fix attributes.yaml",
                attr.name,
                "capability",
            )


def _create_user(
    b: _Builder, user: User, managed: dict[str, scimmap.Managed], acc: EffectiveAccess | None
) -> None:
    body = scimmap.scim_body(managed, [CORE_USER])
    fields = tuple(
        FieldChange(
            path=m.path,
            after=m.value,
            sensitive=m.sensitive,
            why=_grant_why(m.path, set(), grant_values(m.value), acc),
        )
        for m in managed.values()
        if m.value is not None
    )
    lookup = {"userName": user.userName}
    if user.externalId:
        lookup["externalId"] = user.externalId
    b.changes.append(
        Change(
            action="create",
            resource_type="User",
            key=user.userName,
            reason="in desired-state, not in the tenant",
            body=body,
            fields=fields,
            lookup=lookup,
        )
    )
    if user.active:
        _record_access(b, user.userName, {}, managed)


def _record_access(
    b: _Builder, who: str, live: Mapping[str, Any], managed: Mapping[str, scimmap.Managed] | None
) -> None:
    """Gains and losses of grant values between ``live`` and ``managed`` (None: loses all)."""
    for path, grant in GRANT_PATHS.items():
        before = grant_values(scimmap.live_value(live, path)) if live else set()
        after = set()
        if managed is not None and path in managed:
            after = grant_values(managed[path].value)
        elif managed is not None:
            continue  # not managed: nothing changes
        for v in after - before:
            b.gains.setdefault((grant, v), set()).add(who)
        for v in before - after:
            b.loses.setdefault((grant, v), set()).add(who)


def _compare_user(
    b: _Builder,
    user: User,
    managed: dict[str, scimmap.Managed],
    acc: EffectiveAccess | None,
    r: dict[str, Any],
    how: str,
    protected: Protection,
) -> None:
    changed: list[scimmap.Managed] = []
    fields: list[FieldChange] = []
    for m in managed.values():
        if m.differs(r):
            changed.append(m)
            before = m.spec.live(r)
            items = (
                ()
                if m.sensitive
                else item_changes(
                    before, m.value, case_insensitive=scimmap.case_insensitive(m.norm)
                )
            )
            why = _grant_why(
                m.path,
                grant_values(before),
                grant_values(m.value),
                acc,
                lambda kinds, v: _not_granted(b.state, user, kinds, v),
            )
            fields.append(
                FieldChange(
                    path=m.path,
                    # A sensitive value read from the tenant is never in git: the artifact
                    # (uploaded by CI, kept by auditors) says only that there was one.
                    before=SENSITIVE_BEFORE if m.sensitive and before is not None else before,
                    after=m.value,
                    sensitive=m.sensitive,
                    items=items,
                    why=why,
                )
            )
    if not changed:
        return
    live_active = scimmap.live_value(r, "active")
    was_inactive = live_active is False or str(live_active).lower() == "false"
    renamed = str(r.get("userName", "")).casefold() != user.userName.casefold()
    adopt = (
        how != "externalId"
        and user.externalId is not None
        and r.get("externalId") != user.externalId
    )
    if was_inactive and user.active:
        action, reason = "reactivate", "back in desired-state: reactivated with its grants"
        # Genesys brings a re-enabled user back without roles: send every grant again.
        for path in GRANT_PATHS:
            if path in managed and managed[path] not in changed and managed[path].value is not None:
                changed.append(managed[path])
    elif renamed and how == "externalId":
        action, reason = (
            "rename",
            f"userName changed in desired-state (externalId {user.externalId} is stable)",
        )
    elif adopt:
        action, reason = (
            "adopt",
            f"matched by {how}: an existing account the reconciler did not create",
        )
    else:
        action, reason = "update", _update_reason(changed, acc, r, fields)
    if (renamed or _strips(changed, r)) and protected(user.userName, r):
        b.error(
            f"protected account {user.userName!r} would be "
            + ("renamed" if renamed else "stripped of access"),
            "protected accounts are never renamed or stripped; change tenant.yaml's protected "
            "list deliberately if this is intended",
            user.userName,
            "protected",
        )
        return
    if renamed and _taken(b, "User", user.userName, r):
        return
    b.changes.append(
        Change(
            action=action,
            resource_type="User",
            key=user.userName,
            reason=reason,
            id=str(r["id"]),
            version=(r.get("meta") or {}).get("version"),
            fields=tuple(fields),
            operations=tuple(scimmap.patch_ops(changed)),
            lookup={"userName": user.userName},
        )
    )
    _record_access(b, user.userName, {} if was_inactive else r, managed if user.active else None)


def _taken(b: _Builder, kind: str, name: str, r: Mapping[str, Any]) -> bool:
    """Whether renaming live ``r`` to ``name`` would collide with another live object of
    ``kind`` that holds the name already (the tenant would refuse it at apply): then an
    error names both, and the rename is not planned."""
    label = "userName" if kind == "User" else "displayName"
    others = [o for o in b.live_names[kind].get(name.casefold(), ()) if o is not r]
    if not others:
        return False
    other = others[0]
    b.error(
        f"{kind.lower()} {name!r}: renaming live {kind.lower()} {r.get(label)!r} (id "
        f"{r.get('id')}) to this {label} would collide with live {kind.lower()} "
        f"{other.get(label)!r} (id {other.get('id')}), which holds it already",
        f"rename or remove the other {kind.lower()} in the tenant first; if it is the one "
        "desired-state means, give it the externalId desired-state gives (or remove that "
        "externalId from desired-state) so the plan adopts it",
        name,
        "name-taken",
    )
    return True


def _strips(changed: list[scimmap.Managed], r: Mapping[str, Any]) -> bool:
    for m in changed:
        if m.path in GRANT_PATHS:
            before = grant_values(scimmap.live_value(r, m.path))
            if before - grant_values(m.value):
                return True
        if m.path == "active" and m.value is False:
            return True
    return False


# Where a SCIM grant target's values come from in the rules.
_GRANT_SOURCES = {
    "entitlements": ("products", "entitlements"),
    "roles": ("role", "roles"),
    f"{scimmap.ACCESS_EXT}:userGroup": ("userGroup",),
    f"{scimmap.ACCESS_EXT}:settingsTemplate": ("settingsTemplate",),
    f"{scimmap.ACCESS_EXT}:deviceGroups": ("deviceGroups",),
}


def _grant_why(
    path: str,
    before: set[str],
    after: set[str],
    acc: EffectiveAccess | None,
    not_granted: Callable[[tuple[str, ...], str], str] = lambda kinds, v: "no rule grants it",
) -> tuple[str, ...]:
    """For a grant attribute, why each value is gained (the rule and group that give it) or
    lost (a higher-priority rule wins, the rule that grants it does not apply to the user, or
    no rule grants it); ``()`` for others."""
    if path not in GRANT_PATHS or acc is None:
        return ()
    sources = _GRANT_SOURCES[path]
    out = []
    for v in sorted(after - before):
        why = next((w for g in sources if (w := acc.explain(g, v))), "set in desired-state")
        out.append(f"+ {v}: {why}")
    for v in sorted(before - after):
        why = next((w for g in sources if (w := acc.explain_loss(g, v))), "")
        out.append(f"- {v}: {why or not_granted(sources, v)}")
    return tuple(out)


def _not_granted(state: DesiredState, user: User, kinds: tuple[str, ...], value: str) -> str:
    """Why ``user`` does not get ``value`` (of one of the grant ``kinds``): each rule that
    grants it (by priority, at most three) and what the user lacks for it; or that no rule
    grants it (a value set outside git, or a rule gone)."""
    groups = state.groups_of.get(user.userName.casefold(), frozenset())
    out: list[str] = []
    granting = 0
    for rule in sorted(state.rules, key=lambda r: r.priority):
        grants = rule.grants
        if not any(
            value == got if isinstance(got := getattr(grants, k), str) else value in (got or ())
            for k in kinds
        ):
            continue
        granting += 1
        if len(out) == 3:
            continue
        match = rule.match
        missing = [g for g in match.groups_all if g.casefold() not in groups]
        if match.groups_any and not any(g.casefold() in groups for g in match.groups_any):
            lacks = (
                f"not in group {match.groups_any[0]}"
                if len(match.groups_any) == 1
                else "in none of the groups " + ", ".join(match.groups_any)
            )
        elif missing:
            lacks = "not in group " + ", ".join(missing)
        else:
            lacks = "its conditions do not hold"
        out.append(f"rule '{rule.name}' (priority {rule.priority}) grants it, but {lacks}")
    if not out:
        return "no rule grants it"
    more = granting - len(out)
    return "; ".join(out) + (f"; and {more} more rule{'s' if more > 1 else ''}" if more else "")


def _update_reason(
    changed: list[scimmap.Managed],
    acc: EffectiveAccess | None,
    r: Mapping[str, Any],
    fields: list[FieldChange],
) -> str:
    """The first gained grant and the rule that gives it; else the first lost grant and why
    (from its field's explanations); else the attributes that differ."""
    lost: list[tuple[str, str, str]] = []
    for m in changed:
        if m.path not in GRANT_PATHS or acc is None:
            continue
        live = grant_values(m.spec.live(r))
        for v in sorted(grant_values(m.value) - live):
            for grant in _GRANT_SOURCES[m.path]:
                why = acc.explain(grant, v)
                if why:
                    return f"{why} grants {grant}: {v}"
        lost += [(m.path, GRANT_PATHS[m.path], v) for v in sorted(live - grant_values(m.value))]
    if lost:
        path, grant, value = lost[0]
        whys = next((f.why for f in fields if f.path == path), ())
        why = next((w[len(value) + 4 :] for w in whys if w.startswith(f"- {value}: ")), "")
        return f"loses {grant}: {value}" + (f" ({why})" if why else "")
    if any(m.path in GRANT_PATHS for m in changed):
        return "access changed by rules"
    names = ", ".join(m.path.rsplit(":", 1)[-1] for m in changed[:4])
    return f"attributes differ from desired-state ({names})"


def _unmanaged_user(b: _Builder, r: dict[str, Any], protected: Protection) -> None:
    before = len(b.changes)
    _unmanaged_user_changes(b, r)
    name = str(r.get("userName") or r.get("id"))
    if len(b.changes) > before and protected(name, r):
        attempted = b.changes[before:]
        del b.changes[before:]
        for c in attempted:
            done = "deleted" if c.action == "delete" else "suspended"
            b.error(
                f"protected account {name!r} would be {done}: {c.reason}",
                "protected accounts are never suspended, deleted, renamed or stripped; put it "
                "back in desired-state, or remove it from tenant.yaml's protected list "
                "deliberately",
                name,
                "protected",
            )
        _unrecord(b, name)


def _unrecord(b: _Builder, name: str) -> None:
    for losers in b.loses.values():
        losers.discard(name)


def _unmanaged_user_changes(b: _Builder, r: dict[str, Any]) -> None:
    name = str(r.get("userName") or r.get("id"))
    cf = name.casefold()
    active = not (r.get("active") is False or str(r.get("active")).lower() == "false")
    tenant = b.state.tenant
    removal = b.ctx.removed.get(cf)
    if removal is not None and _someone_else(removal, r):
        b.warn(
            f"user {name!r} was removed from desired-state, but the tenant's account with that "
            f"userName has externalId {r.get('externalId')!r}, not {removal.external_id!r} as "
            "the removed entry had: it is another account, left to ownership.users "
            f"({tenant.ownership.users.value})",
            "nothing to do if that account is not ours; to manage it, add it to desired-state "
            "with its own externalId",
            name,
            "not-ours",
        )
        removal = None
    base = dict(
        id=str(r["id"]), version=(r.get("meta") or {}).get("version"), lookup={"userName": name}
    )
    if removal is not None:
        since = (
            f"removed from desired-state in {removal.commit[:10]} on {removal.when.date()}"
            if removal.commit
            else "removed from desired-state (not committed yet)"
        )
        grace = tenant.lifecycle.grace_seconds
        due = grace is not None and (b.ctx.now - removal.when).total_seconds() >= grace
        if tenant.lifecycle.removed_users == "delete":
            due = False  # deleted at once, by choice: no grace period to be over
        elif due and active and b.live.capabilities.can_delete_users:
            # Never suspended (no apply since the removal), or reactivated outside git: an
            # active account is suspended first, never deleted in one step.
            b.changes.append(
                _suspend(
                    name,
                    f"{since}; grace period {tenant.lifecycle.delete_after} is over, but the "
                    "account is active: suspended first, deleted by a later plan",
                    base,
                )
            )
            _record_access(b, name, r, None)
            return
        if (tenant.lifecycle.removed_users == "delete" or due) and (
            b.live.capabilities.can_delete_users
        ):
            b.changes.append(
                Change(
                    action="delete",
                    resource_type="User",
                    key=name,
                    reason=since
                    + (f"; grace period {tenant.lifecycle.delete_after} is over" if due else ""),
                    **base,
                )
            )
            _record_access(b, name, r if active else {}, None)
            return
        if active:
            until = ""
            if not b.live.capabilities.can_delete_users:
                if grace is not None or tenant.lifecycle.removed_users == "delete":
                    until = "; this tenant does not delete users by sync: it stays suspended"
            elif grace is not None:
                until = f"; deleted after {(removal.when + dt.timedelta(seconds=grace)).date()}"
            b.changes.append(_suspend(name, since + until, base))
            _record_access(b, name, r, None)
        return
    mode = tenant.ownership.users
    if mode is OwnershipMode.report:
        b.warn(
            f"drift: user {name!r} is in the tenant but not in desired-state",
            "add it to desired-state, or set ownership.users to suspend or delete",
            name,
            "unmanaged",
        )
    elif mode is OwnershipMode.suspend and active:
        b.changes.append(_suspend(name, "not in desired-state (ownership: suspend)", base))
        _record_access(b, name, r, None)
    elif mode is OwnershipMode.delete:
        if b.live.capabilities.can_delete_users:
            b.changes.append(
                Change(
                    action="delete",
                    resource_type="User",
                    key=name,
                    reason="not in desired-state (ownership: delete)",
                    **base,
                )
            )
            _record_access(b, name, r if active else {}, None)
        elif active:
            b.changes.append(
                _suspend(
                    name,
                    "not in desired-state (ownership: delete; this tenant suspends instead)",
                    base,
                )
            )
            _record_access(b, name, r, None)


def _someone_else(removal: Removal, r: Mapping[str, Any]) -> bool:
    """Whether live ``r``, found by the userName of a user removed from desired-state, holds
    another externalId than the removed entry had: then it is not the account desired-state
    described (say, a console account that took the name after ours failed to be created),
    and removing the entry must not suspend or delete it."""
    live = r.get("externalId")
    return bool(removal.external_id) and live not in (None, "") and str(live) != removal.external_id


def _suspend(name: str, reason: str, base: dict[str, Any]) -> Change:
    return Change(
        action="suspend",
        resource_type="User",
        key=name,
        reason=reason,
        fields=(FieldChange(path="active", before=True, after=False),),
        operations=({"op": "replace", "path": "active", "value": False},),
        **base,
    )


def _compare_group(b: _Builder, g: Any, r: dict[str, Any], how: str) -> None:
    fields, ops = [], []
    wanted = {"displayName": g.displayName, "externalId": g.externalId}
    for path, value in wanted.items():
        if value is None:
            continue
        before = r.get(path)
        same = (
            (str(before or "").casefold() == value.casefold())
            if path == "displayName"
            else before == value
        )
        if path == "displayName" and str(before or "") != value and same:
            same = True  # case differences are not changes
        if not same:
            fields.append(FieldChange(path=path, before=before, after=value))
            ops.append({"op": "replace", "path": path, "value": value})
    if not ops:
        return
    renamed = any(f.path == "displayName" for f in fields)
    if renamed and _taken(b, "Group", g.displayName, r):
        return
    action = (
        "rename"
        if renamed and how == "externalId"
        else ("adopt" if how != "externalId" and g.externalId else "update")
    )
    b.changes.append(
        Change(
            action=action,
            resource_type="Group",
            key=g.displayName,
            reason="group attributes differ from desired-state",
            id=str(r["id"]),
            version=(r.get("meta") or {}).get("version"),
            fields=tuple(fields),
            operations=tuple(ops),
            lookup={"displayName": g.displayName},
        )
    )


_VALUE = itemgetter("value")


def _member_ids(members: Any) -> set[str]:
    """The user ids a live group lists as members."""
    if not members:
        return set()
    try:
        ids = set(map(_VALUE, members))  # the reader checked: dicts with a string value
        if set(map(type, ids)) <= {str}:
            return ids
    except (KeyError, TypeError):
        pass
    return {str(m.get("value")) for m in members if isinstance(m, dict)}


def _holds_exactly(desired: Sequence[str], live_ids: set[str], ids: Mapping[str, str]) -> bool:
    """Whether a live group's member ids ``live_ids`` are exactly the users ``desired``
    (casefolded userNames, each once), by their live ``ids``: paired users have distinct ids,
    and one not paired has none, which no live group lists."""
    return len(desired) == len(live_ids) and live_ids.issuperset(map(ids.get, desired))


def same_members_python(desired: Sequence[str], members: Any, ids: Mapping[str, str]) -> bool:
    """Whether a live group's ``members`` are exactly the users ``desired``
    (:func:`_holds_exactly`). The reference of ``reconciler._speedups.same_members``."""
    return _holds_exactly(desired, _member_ids(members), ids)


_native_same: Callable[[Sequence[str], Any, Mapping[str, str]], bool | None] | None
try:
    from reconciler._speedups import same_members as _native_same
except ImportError:  # built without a C compiler: the reference runs
    _native_same = None


def same_members(desired: Sequence[str], members: Any, ids: Mapping[str, str]) -> bool:
    """:func:`same_members_python`, in C where built and the members are plain JSON."""
    if _native_same is not None:
        got = _native_same(desired, members, ids)
        if got is not None:
            return got
    return same_members_python(desired, members, ids)


def _members(
    b: _Builder,
    group: str,
    gid: str | None,
    version: str | None,
    desired: Sequence[str],
    live_ids: set[str],
    partial: bool,
) -> None:
    """Add and remove members of a group so that it holds ``desired`` (casefolded
    userNames, each once) and nobody else."""
    ids = b.ids
    if _holds_exactly(desired, live_ids, ids):
        return  # every desired member is a member already, and nobody else is
    by_name = b.state.user_by_name
    group_targeted = not partial or _targeted(group, b.targets)
    adds: list[tuple[str, str, str | None]] = []
    wanted_ids: set[str] = set()
    for cf in desired:
        uid = ids.get(cf)
        if uid is not None and uid in live_ids:
            wanted_ids.add(uid)  # a member already: nothing to do
            continue
        if cf in b.unmatched_desired:
            continue  # its match was ambiguous: which account to add is not known
        name = by_name[cf].userName if cf in by_name else cf
        if not group_targeted and not _targeted(name, b.targets):
            continue
        if uid is not None:
            wanted_ids.add(uid)
        adds.append((cf, name, uid))
    adds.sort()
    add_names = [name for _, name, _ in adds]
    add_values = [{"value": uid if uid else {scimmap.USER_REF: name}} for _, name, uid in adds]
    if add_names:
        b.changes.append(
            Change(
                action="add_member",
                resource_type="Group",
                key=group,
                reason=f"member of {group} in desired-state",
                id=gid,
                version=version,
                members=tuple(add_names),
                operations=({"op": "add", "path": "members", "value": add_values},),
                lookup={"displayName": group},
            )
        )
    mode = b.state.tenant.ownership.users
    remove = []
    for uid in sorted(live_ids - wanted_ids - b.contested_ids):
        paired = b.name_of_id.get(uid)
        if paired is not None:
            name = paired
            if partial and not _targeted(name, b.targets) and not _targeted(group, b.targets):
                continue
            remove.append((by_name[name].userName if name in by_name else name, uid))
        elif (
            mode in (OwnershipMode.suspend, OwnershipMode.delete)
            and not partial
            and (r := b.live_by_id.get(uid)) is not None
        ):
            if str(r.get("userName", "")).casefold() in b.ctx.removed:
                continue  # removed users keep their groups while suspended
            remove.append((str(r.get("userName") or uid), uid))
    if remove:
        remove.sort(key=lambda r: r[0].casefold())
        b.changes.append(
            Change(
                action="remove_member",
                resource_type="Group",
                key=group,
                reason=f"not a member of {group} in desired-state",
                id=gid,
                version=version,
                members=tuple(n for n, _ in remove),
                operations=_remove_ops(uid for _, uid in remove),
                lookup={"displayName": group},
            )
        )


def _removed_group(
    b: _Builder, r: dict[str, Any], removal: Removal, only: set[str] | None = None
) -> None:
    """A group removed from desired-state: emptied now (its members lose what it gives them),
    deleted once the grace period is over (or at once with ``removed_groups: delete``) and
    empty. A group still holding members when its time is up is emptied first, like a user
    suspended before it is deleted. ``only``: the member ids a partial plan covers (the
    group itself is not targeted): those leave it, and it is neither emptied nor deleted."""
    name = str(r.get("displayName") or r.get("id"))
    lifecycle = b.state.tenant.lifecycle
    since = (
        f"group removed from desired-state in {removal.commit[:10]} on {removal.when.date()}"
        if removal.commit
        else "group removed from desired-state (not committed yet)"
    )
    grace = lifecycle.grace_seconds
    can_delete = b.live.capabilities.can_delete_groups
    at_once = lifecycle.removed_groups == "delete"
    due = at_once or (grace is not None and (b.ctx.now - removal.when).total_seconds() >= grace)
    gid, version = str(r["id"]), (r.get("meta") or {}).get("version")
    members = sorted(_member_ids(r.get("members")) if only is None else only)
    names = sorted(((_live_name(b, uid), uid) for uid in members), key=lambda m: m[0].casefold())
    # Both changes name who leaves (a deleted group's members are counted against
    # membership_removals too).
    base: dict[str, Any] = dict(
        resource_type="Group",
        key=name,
        members=tuple(n for n, _ in names),
        id=gid,
        version=version,
        lookup={"displayName": name},
    )
    if due and can_delete and (at_once or not members) and only is None:
        why = "" if at_once else f"; grace period {lifecycle.delete_after} is over"
        b.changes.append(Change(action="delete", reason=since + why, **base))
        return
    if not members:
        return  # emptied already: nothing to do until it is deleted, if ever
    if not can_delete:
        until = "; this tenant cannot delete groups: it stays, empty"
    elif due:
        until = (
            f"; grace period {lifecycle.delete_after} is over: emptied first, deleted by a "
            "later plan"
        )
    elif grace is not None:
        until = f"; deleted after {(removal.when + dt.timedelta(seconds=grace)).date()}"
    else:
        until = "; kept empty (delete_after: never)"
    if only is not None:
        until += "; this partial plan removes only its targets"
    b.changes.append(
        Change(
            action="remove_member",
            reason=since + until,
            operations=_remove_ops(uid for _, uid in names),
            **base,
        )
    )


def _remove_ops(uids: Iterable[str]) -> tuple[dict[str, Any], ...]:
    """PATCH operations removing members by id (the path apply's executor and verify read)."""
    return tuple({"op": "remove", "path": f'members[value eq "{uid}"]'} for uid in uids)


def _live_name(b: _Builder, uid: str) -> str:
    """A member's name: the desired userName it pairs with, else the live one, else a
    member group's displayName, else its id."""
    paired = b.name_of_id.get(uid)
    if paired is not None:
        user = b.state.user_by_name.get(paired)
        return user.userName if user is not None else paired
    r = b.live_by_id.get(uid)
    if r is not None:
        return str(r.get("userName") or uid)
    group = next((g for g in b.live.groups if str(g.get("id")) == uid), None)
    return f"group {group.get('displayName') or uid}" if group is not None else uid


def _unmanaged_group(b: _Builder, r: dict[str, Any]) -> None:
    name = str(r.get("displayName") or r.get("id"))
    mode = b.state.tenant.ownership.groups
    if mode is OwnershipMode.report:
        b.warn(
            f"drift: group {name!r} is in the tenant but not in desired-state",
            "add it to desired-state, or set ownership.groups to delete",
            name,
            "unmanaged",
        )
    elif mode is OwnershipMode.delete:
        if not b.live.capabilities.can_delete_groups:
            b.warn(
                f"group {name!r} is not in desired-state, and this tenant cannot delete groups",
                "remove it with the identity provider",
                name,
                "capability",
            )
            return
        members = sorted(
            (_live_name(b, uid) for uid in _member_ids(r.get("members"))), key=str.casefold
        )
        b.changes.append(
            Change(
                action="delete",
                resource_type="Group",
                key=name,
                reason="not in desired-state (ownership: delete)",
                members=tuple(members),
                id=str(r["id"]),
                version=(r.get("meta") or {}).get("version"),
                lookup={"displayName": name},
            )
        )


def _managers_named(b: _Builder, changes: Iterable[Change]) -> dict[str, str]:
    """The users a manager change refers to by live id, before and after (casefolded
    userName → id), so that readers of the plan see who they are, not their ids."""
    out: dict[str, str] = {}
    for c in changes:
        for f in c.fields:
            if f.path != scimmap.MANAGER_PATH:
                continue
            for v in (f.before, f.after):
                uid = v.get("value") if isinstance(v, dict) else None
                if not isinstance(uid, str):
                    continue  # none, or a placeholder for a user this plan creates
                name = b.name_of_id.get(uid)
                if name is None and (r := b.live_by_id.get(uid)) is not None:
                    name = str(r.get("userName") or "").casefold() or None
                if name is not None:
                    out[name] = uid
    return out


def _live_grants(users: Iterable[dict[str, Any]]) -> int:
    """How many grant values ``users`` hold (user × value): entitlements, roles and the
    access extension's grants, counted without normalising. The whole tenant's is the base
    of the lost_grants gate's relative limit (see :func:`_live_grants_of`)."""
    ext = scimmap.ACCESS_EXT
    n = 0
    for u in users:
        for name in ("entitlements", "roles"):
            v = u.get(name)
            if v:
                n += len(v) if isinstance(v, list) else 1
        access = u.get(ext)
        if access and isinstance(access, dict):
            for sub in scimmap.ACCESS_SUBS:
                v = access.get(sub)
                if v not in (None, "", []):
                    n += len(v) if isinstance(v, list) else 1
    return n


def _finish(b: _Builder, partial: bool) -> Plan:
    order = {stage: n for n, stage in enumerate(STAGES)}
    changes = sorted(
        b.changes, key=lambda c: (order[(c.resource_type, c.action)], c.key.casefold())
    )
    access = tuple(
        AccessChange(
            grant=grant,
            value=value,
            gains=tuple(sorted(b.gains.get((grant, value), ()), key=str.casefold)),
            loses=tuple(sorted(b.loses.get((grant, value), ()), key=str.casefold)),
        )
        for grant, value in sorted(set(b.gains) | set(b.loses))
        if b.gains.get((grant, value)) or b.loses.get((grant, value))
    )
    url = b.ctx.url or b.state.tenant.url
    sensitive = tuple(sorted(scimmap.attribute_path(a) for a in b.state.attributes if a.sensitive))
    # The live ids of the users the changes name (every paired user's would make a
    # 100,000-user plan carry 100,000 of them).
    named = {c.key.casefold() for c in changes if c.resource_type == "User"}
    for c in changes:
        named.update(m.casefold() for m in c.members)
    ids = {name: b.ids[name] for name in sorted(named) if name in b.ids}
    ids.update(_managers_named(b, changes))
    blocked = any(d.severity == "error" for d in b.diags)
    memberships = sum(len(g.get("members") or []) for g in b.live.groups)
    return Plan(
        etag=b.live.capabilities.etag,
        patch=b.live.capabilities.patch,
        live_memberships=memberships,
        live_grants=b.live_grants,
        tenant_url=url,
        desired_commit=b.ctx.commit,
        desired_uncommitted=b.ctx.uncommitted,
        created_at=b.ctx.now.isoformat(),
        partial=partial,
        targets=b.ctx.targets,
        live_users=len(b.live.users),
        live_groups=len(b.live.groups),
        summary=count_actions(changes),
        access=access,
        changes=tuple(changes),
        diagnostics=tuple(b.diags),
        blocked=blocked,
        ids=ids,
        sensitive_paths=sensitive,
        plan_hash=plan_hash(url, changes, blocked=blocked),
    )
