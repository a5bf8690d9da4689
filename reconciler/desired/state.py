"""The loaded desired state: validated objects plus where each one was written."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from operator import attrgetter
from pathlib import Path

from reconciler.desired.models import Attribute, Group, Rule, Tenant, User

_GROUPS = attrgetter("groups")


@dataclass(frozen=True)
class Source:
    """Where an object was written: its file and its path inside the file's data."""

    file: Path
    path: tuple[str | int, ...]


@dataclass(frozen=True)
class DesiredState:
    root: Path
    tenant: Tenant
    users: tuple[User, ...]
    groups: tuple[Group, ...]
    rules: tuple[Rule, ...]
    attributes: tuple[Attribute, ...]
    user_sources: tuple[Source, ...] = ()
    group_sources: tuple[Source, ...] = ()
    rule_sources: tuple[Source, ...] = ()
    attribute_sources: tuple[Source, ...] = ()
    tenant_source: Path | None = None

    @cached_property
    def attribute_by_name(self) -> dict[str, Attribute]:
        return {a.name: a for a in self.attributes}

    @cached_property
    def group_by_name(self) -> dict[str, Group]:
        """Groups by displayName, case-insensitively (SCIM displayName is caseExact=false)."""
        return {g.displayName.casefold(): g for g in self.groups}

    @cached_property
    def user_by_name(self) -> dict[str, User]:
        """Users by userName, case-insensitively (SCIM userName is caseExact=false)."""
        return {u.userName.casefold(): u for u in self.users}

    @cached_property
    def user_names(self) -> list[str]:
        """The casefolded userName of each user, in the order of ``users``: the same string
        objects as the keys of ``user_by_name`` and ``groups_of`` and the users in
        ``members``."""
        names = list(self.user_by_name)
        if len(names) != len(self.users):  # two users with one name: an invalid state
            names = [u.userName.casefold() for u in self.users]
        return names

    @cached_property
    def members(self) -> dict[str, frozenset[str]]:
        """Effective members of each group (casefolded displayName → casefolded userNames):
        the union of ``members:`` on the group and ``groups:`` on the users."""
        return {group: frozenset(names) for group, names in self.member_lists.items()}

    @cached_property
    def member_lists(self) -> dict[str, list[str]]:
        """``members``, each group's as a list without repeats (mostly in the order of
        ``users``: walking it reads the users' names in the order they were made, which at
        100,000 users is much kinder to the processor's caches than a set's order)."""
        return self._memberships[0]

    @cached_property
    def groups_of(self) -> dict[str, frozenset[str]]:
        """Groups (casefolded displayNames) of each user (casefolded userName); also of a
        name a group's ``members:`` lists that is no user. Built when first asked for: a plan
        without lost grants to explain goes by ``user_groups``."""
        groups_of = dict(zip(self.user_names, self.user_groups, strict=True))
        for name, extra in self._memberships[1].items():
            groups_of.setdefault(name, extra)
        return groups_of

    @cached_property
    def user_groups(self) -> list[frozenset[str]]:
        """``groups_of`` of each user, in the order of ``users`` (users with the same groups
        share one set)."""
        return self._memberships[2]

    @cached_property
    def _memberships(
        self,
    ) -> tuple[dict[str, list[str]], dict[str, frozenset[str]], list[frozenset[str]]]:
        """``member_lists``, the groups of each name ``members:`` lists that is no user (for
        ``groups_of``), and ``user_groups``, in one go: at 100,000 users a plan needs them
        all."""
        folded: dict[str, str] = {}  # a group name as written → casefolded, once a spelling
        names = self.user_names
        # The C pass, where built, takes users with distinct names (a valid state).
        unique = len(self.user_by_name) == len(self.users)
        got = _native(self.users, names, folded) if _native is not None and unique else None
        sets, gathered = got or user_groups_python(self.users, names, folded)

        def fold(name: str) -> str:
            cf = folded.get(name)
            if cf is None:
                cf = folded[name] = name.casefold()
            return cf

        listed: dict[str, set[str]] = {}  # userName → the groups whose members: list it
        for g in self.groups:
            for m in g.members:
                listed.setdefault(m.casefold(), set()).add(fold(g.displayName))
        where: dict[str, list[int]] = {}  # a userName → the users holding it
        shared: dict[frozenset[str], frozenset[str]] = {}
        if listed or not unique:
            for i, name in enumerate(names):
                where.setdefault(name, []).append(i)
            shared = {s: s for s in sets}
        for name, extra in listed.items():
            for i in where.get(name, ()):
                sets[i] = shared.setdefault(sets[i] | extra, sets[i] | extra)
            for group in extra:
                gathered.setdefault(group, []).append(name)
        for at in where.values():
            if len(at) > 1:  # two users with one name (an invalid state): all their groups
                union = frozenset().union(*(sets[i] for i in at))
                union = shared.setdefault(union, union)
                for i in at:
                    sets[i] = union
        strangers = {  # listed, but no such user
            name: frozenset(extra) for name, extra in listed.items() if name not in where
        }
        members: dict[str, list[str]] = {fold(g.displayName): [] for g in self.groups}
        members.update(gathered)
        if listed or not unique:  # a name may be listed twice now
            members = {group: list(dict.fromkeys(names)) for group, names in members.items()}
        return members, strangers, sets

    def summary(self) -> str:
        return (
            f"{len(self.users)} users, {len(self.groups)} groups, {len(self.rules)} rules, "
            f"{len(self.attributes)} custom attributes"
        )


def user_groups_python(
    users: Sequence[User], names: Sequence[str], folded: dict[str, str]
) -> tuple[list[frozenset[str]], dict[str, list[str]]]:
    """Each user's groups, casefolded, as a set (users with the same groups share one set
    object: less memory, and rules are evaluated once per set), and each group's members:
    casefolded group name → the ``names`` of its users (each once, in no set order).
    ``folded``: a group name as written → casefolded, filled in as names are met.

    The reference of ``reconciler._speedups.user_groups``. By whole lists: most users'
    lists of groups repeat, so each distinct list is folded once, and members are gathered
    by set of groups rather than one membership at a time."""

    def fold(name: str) -> str:
        cf = folded.get(name)
        if cf is None:
            cf = folded[name] = name.casefold()
        return cf

    shared: dict[frozenset[str], frozenset[str]] = {}
    lists = list(map(tuple, map(_GROUPS, users)))
    distinct: dict[tuple[str, ...], frozenset[str]] = dict.fromkeys(lists, frozenset())
    for spelt in distinct:
        mine = frozenset(map(fold, spelt))
        distinct[spelt] = shared.setdefault(mine, mine)
    sets = list(map(distinct.__getitem__, lists))
    by_set: dict[frozenset[str], list[str]] = {}
    for name, mine in zip(names, sets, strict=True):
        found = by_set.get(mine)
        if found is None:
            by_set[mine] = [name]
        else:
            found.append(name)
    members: dict[str, list[str]] = {}
    for mine, holders in by_set.items():
        for group in mine:
            found = members.get(group)
            if found is None:
                members[group] = list(holders)
            else:
                found += holders
    return sets, members


_native: (
    Callable[
        [Sequence[User], Sequence[str], dict[str, str]],
        tuple[list[frozenset[str]], dict[str, list[str]]] | None,
    ]
    | None
)
try:
    from reconciler._speedups import user_groups as _native
except ImportError:  # built without a C compiler: the reference runs
    _native = None
