"""Rule evaluation (compile mode): which rule gives each user each grant.

Priority 1 is the highest. A single-valued grant (role, userGroup, settingsTemplate) comes from
the highest-priority matching rule that grants it; multi-valued grants (products, deviceGroups,
roles, entitlements) are merged over every matching rule. Pure: a desired state in, plain data
out. History, policies and the plan all use this one evaluator.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from reconciler.desired.models import MULTI_GRANTS, SINGLE_GRANTS, Condition, Rule, User
from reconciler.desired.state import DesiredState


@dataclass(frozen=True)
class Because:
    """Why a user holds a grant value: the rule and the group(s) that matched."""

    rule: str
    priority: int
    via: tuple[str, ...]

    def __str__(self) -> str:
        if len(self.via) > 1:
            via = f" via groups {', '.join(self.via[:-1])} and {self.via[-1]}"
        else:
            via = f" via group {self.via[0]}" if self.via else ""
        return f"rule '{self.rule}' (priority {self.priority}){via}"


@dataclass
class EffectiveAccess:
    """A user's grants after rules, each value with the rule that gave it."""

    single: dict[str, tuple[str, Because]] = field(default_factory=dict)
    multi: dict[str, dict[str, list[Because]]] = field(default_factory=dict)
    rules: list[str] = field(default_factory=list)
    # Single-valued grants that a matching rule would give, but a higher-priority one wins.
    outranked: dict[str, list[tuple[str, Because]]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """``{"role": "member", "products": ["GoTo Meeting"], …}`` (sorted lists)."""
        out: dict[str, Any] = {k: "" for k in SINGLE_GRANTS}
        out.update({k: v for k, (v, _) in self.single.items()})
        for k in MULTI_GRANTS:
            out[k] = sorted(self.multi.get(k, {}))
        return out

    def explain(self, grant: str, value: str) -> str:
        if grant in self.single and self.single[grant][0] == value:
            return str(self.single[grant][1])
        becauses = self.multi.get(grant, {}).get(value, [])
        return "; ".join(str(b) for b in becauses)

    def explain_loss(self, grant: str, value: str) -> str:
        """Why ``value`` of ``grant`` is not granted although a matching rule gives it (a
        higher-priority rule wins), or ``""``."""
        for lost, because in self.outranked.get(grant, ()):
            if lost == value:
                winner = self.single[grant][1]
                return (
                    f"{because} grants it, but rule '{winner.rule}' (priority {winner.priority}) "
                    "wins"
                )
        return ""


def _attr_value(user: User, name: str) -> Any:
    if name in user.attributes:
        return user.attributes[name]
    return getattr(user, name, None)


def _condition(user: User, c: Condition) -> bool:
    v = _attr_value(user, c.attribute)
    if c.op == "exists":
        return v is not None
    if c.op == "absent":
        return v is None
    if v is None:
        return c.op in ("ne", "not_in")
    s = str(v).casefold()
    match c.op:  # exhaustive over ConditionOp
        case "eq":
            return s == str(c.value).casefold()
        case "ne":
            return s != str(c.value).casefold()
        case "in":
            return s in {str(x).casefold() for x in c.value}
        case "not_in":
            return s not in {str(x).casefold() for x in c.value}
        case "starts_with":
            return s.startswith(str(c.value).casefold())
        case _:  # "ends_with"
            return s.endswith(str(c.value).casefold())


def matches(rule: Rule, user: User | None, groups: frozenset[str]) -> tuple[str, ...] | None:
    """The groups through which ``rule`` matches ``user`` (``()`` when it matches on
    conditions alone), or ``None`` when it does not match. ``groups`` are casefolded;
    ``user`` may be None for a rule without conditions."""
    m = rule.match
    via_any = [g for g in m.groups_any if g.casefold() in groups]
    if m.groups_any and not via_any:
        return None
    if any(g.casefold() not in groups for g in m.groups_all):
        return None
    if m.conditions and (user is None or not all(_condition(user, c) for c in m.conditions)):
        return None
    return tuple(via_any) + tuple(m.groups_all)


class Evaluator:
    """Effective access of one user at a time (``evaluate`` does every user).

    Users with the same groups (and the same values of the attributes rule conditions test)
    get the same access, so it is computed once per such signature and shared: the object is
    the same for those users and must not be mutated.
    """

    def __init__(self, state: DesiredState) -> None:
        self.rules = sorted(state.rules, key=lambda r: r.priority)
        self.tested = sorted({c.attribute for r in self.rules for c in r.match.conditions})
        self.relevant = frozenset(
            g.casefold() for r in self.rules for g in (*r.match.groups_any, *r.match.groups_all)
        )
        self.state = state
        self.cache: dict[Any, EffectiveAccess] = {}
        # Without conditions, by the user's set of groups as it is (users with the same
        # groups share one set object: DesiredState.user_groups).
        self.by_groups: dict[frozenset[str], EffectiveAccess] | None = None if self.tested else {}

    def __call__(self, user: User, key: str) -> EffectiveAccess:
        """``key``: the user's casefolded userName."""
        mine = self.state.groups_of.get(key, _NONE)
        by_groups = self.by_groups
        if by_groups is not None:
            acc = by_groups.get(mine)
            if acc is None:
                acc = by_groups[mine] = self._signed(user, mine)
            return acc
        return self._signed(user, mine)

    def each(self, state: DesiredState) -> list[EffectiveAccess]:
        """The effective access of each of ``state``'s users, in order, computed once per
        signature."""
        users, mine = state.users, state.user_groups
        by_groups = self.by_groups
        if by_groups is None:
            return list(map(self._signed, users, mine))
        # Without conditions no rule reads the user, only its groups (those the rules name
        # are the signature): no user is needed. At 100,000 users there are tens of
        # thousands of sets of groups, each intersected in C rather than by a call apiece.
        missing = list(set(mine).difference(by_groups))
        cache, rules = self.cache, self.rules
        for groups, signature in zip(missing, map(self.relevant.__and__, missing), strict=True):
            acc = cache.get(signature)
            if acc is None:
                acc = cache[signature] = _access(rules, None, signature)
            by_groups[groups] = acc
        return list(map(by_groups.__getitem__, mine))

    def _signed(self, user: User | None, mine: frozenset[str]) -> EffectiveAccess:
        """``user``: None only when no rule has conditions (``self.tested`` empty)."""
        groups = mine & self.relevant
        # Without conditions, the groups alone are the signature.
        signature: Any = groups
        if self.tested:
            assert user is not None
            signature = (groups, tuple(str(_attr_value(user, a)) for a in self.tested))
        acc = self.cache.get(signature)
        if acc is None:
            acc = self.cache[signature] = _access(self.rules, user, groups)
        return acc


_NONE: frozenset[str] = frozenset()


def evaluate(state: DesiredState) -> dict[str, EffectiveAccess]:
    """Effective access of every desired user, keyed by casefolded userName (see
    :class:`Evaluator`)."""
    access = Evaluator(state)
    out: dict[str, EffectiveAccess] = {}
    for user in state.users:
        key = user.userName.casefold()
        out[key] = access(user, key)
    return out


def _access(rules: list[Rule], user: User | None, groups: frozenset[str]) -> EffectiveAccess:
    acc = EffectiveAccess()
    for rule in rules:
        via = matches(rule, user, groups)
        if via is None:
            continue
        because = Because(rule.name, rule.priority, via)
        acc.rules.append(rule.name)
        g = rule.grants
        for k in SINGLE_GRANTS:
            value = getattr(g, k)
            if value and k not in acc.single:
                acc.single[k] = (value, because)
            elif value and value != acc.single[k][0]:
                acc.outranked.setdefault(k, []).append((value, because))
        for k in MULTI_GRANTS:
            for value in getattr(g, k):
                acc.multi.setdefault(k, {}).setdefault(value, []).append(because)
    return acc


def rule_matches(access: Iterable[EffectiveAccess]) -> dict[str, int]:
    """How many users each rule matches; ``access``: each user's effective access."""
    counts: dict[str, int] = {}
    for acc in access:
        for name in acc.rules:
            counts[name] = counts.get(name, 0) + 1
    return counts


def lint(state: DesiredState, access: Collection[EffectiveAccess]) -> list[tuple[Rule, str]]:
    """Warnings: rules matching nobody, and shadowed rules (never win a single-valued grant
    and add no multi-valued value that other matching rules do not already give).
    ``access``: each user's effective access."""
    counts = rule_matches(access)
    out: list[tuple[Rule, str]] = []
    for rule in state.rules:
        if not counts.get(rule.name):
            out.append((rule, f"rule '{rule.name}' matches no user"))
            continue
        contributes = False
        for acc in access:
            if rule.name not in acc.rules:
                continue
            if any(b.rule == rule.name for _, b in acc.single.values()):
                contributes = True
                break
            for values in acc.multi.values():
                if any(len(bs) == 1 and bs[0].rule == rule.name for bs in values.values()):
                    contributes = True
                    break
            if contributes:
                break
        if not contributes:
            out.append(
                (
                    rule,
                    f"rule '{rule.name}' is shadowed: higher-priority rules already give every "
                    "grant it would, for every user it matches",
                )
            )
    return out
