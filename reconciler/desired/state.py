"""The loaded desired state: validated objects plus where each one was written."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from reconciler.desired.models import Attribute, Group, Rule, Tenant, User


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
        return self._memberships[0]

    @cached_property
    def groups_of(self) -> dict[str, frozenset[str]]:
        """Groups (casefolded displayNames) of each user (casefolded userName)."""
        return self._memberships[1]

    @cached_property
    def _memberships(self) -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
        """``members`` and ``groups_of``, in one pass over the users (each is the other
        inverted). At 100,000 users a plan needs both, so both are built at once."""
        folded: dict[str, str] = {}  # a group name as written → casefolded, once a spelling

        def fold(name: str) -> str:
            cf = folded.get(name)
            if cf is None:
                cf = folded[name] = name.casefold()
            return cf

        members: dict[str, set[str]] = {fold(g.displayName): set() for g in self.groups}
        listed: dict[str, set[str]] = {}  # userName → the groups whose members: list it
        for g in self.groups:
            for m in g.members:
                listed.setdefault(m.casefold(), set()).add(fold(g.displayName))
        groups_of: dict[str, frozenset[str]] = {}
        # Users with the same groups share one set: less memory, and rules are evaluated
        # once per set of groups (rules.Evaluator).
        shared: dict[frozenset[str], frozenset[str]] = {}
        for name, user in zip(self.user_names, self.users, strict=True):
            mine = frozenset(map(fold, user.groups))
            extra = listed.pop(name, None)
            if extra:
                mine |= extra
            before = groups_of.get(name)
            if before:
                mine |= before
            groups_of[name] = mine = shared.setdefault(mine, mine)
            for group in mine:
                found = members.get(group)
                if found is None:
                    found = members[group] = set()
                found.add(name)
        for name, extra in listed.items():  # listed, but no such user
            groups_of[name] = frozenset(extra)
            for group in extra:
                members[group].add(name)
        return {k: frozenset(v) for k, v in members.items()}, groups_of

    def summary(self) -> str:
        return (
            f"{len(self.users)} users, {len(self.groups)} groups, {len(self.rules)} rules, "
            f"{len(self.attributes)} custom attributes"
        )
