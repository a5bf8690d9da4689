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
    def members(self) -> dict[str, frozenset[str]]:
        """Effective members of each group (casefolded displayName → casefolded userNames):
        the union of ``members:`` on the group and ``groups:`` on the users."""
        out: dict[str, set[str]] = {g.displayName.casefold(): set() for g in self.groups}
        for g in self.groups:
            out[g.displayName.casefold()].update(m.casefold() for m in g.members)
        for u in self.users:
            for name in u.groups:
                out.setdefault(name.casefold(), set()).add(u.userName.casefold())
        return {k: frozenset(v) for k, v in out.items()}

    @cached_property
    def groups_of(self) -> dict[str, frozenset[str]]:
        """Groups (casefolded displayNames) of each user (casefolded userName)."""
        out: dict[str, set[str]] = {u.userName.casefold(): set() for u in self.users}
        for group, users in self.members.items():
            for u in users:
                out.setdefault(u, set()).add(group)
        return {k: frozenset(v) for k, v in out.items()}

    def summary(self) -> str:
        return (
            f"{len(self.users)} users, {len(self.groups)} groups, {len(self.rules)} rules, "
            f"{len(self.attributes)} custom attributes"
        )
