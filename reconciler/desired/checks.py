"""Cross-reference checks over a whole desired state (pure: data in, findings out).

Schema checks happen per file while loading; these need every file at once: duplicates,
unknown references, manager cycles, custom attribute values, verified email domains.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.desired.models import Attribute, AttrType
from reconciler.desired.state import DesiredState, Source

# Core SCIM user attributes a rule condition may test, besides custom attributes.
CORE_CONDITION_ATTRIBUTES = (
    "userName",
    "displayName",
    "title",
    "userType",
    "locale",
    "timezone",
    "preferredLanguage",
    "active",
    "externalId",
)


def cascading(message: str) -> bool:
    """A reference finding that another file's error can cause (an unreadable declaration)."""
    return "unknown " in message


@dataclass(frozen=True)
class Finding:
    source: Source
    subpath: tuple[str | int, ...]
    message: str
    hint: str = ""
    at_key: bool = False
    severity: str = "error"
    # Another place the message refers to ("first declared at …"), resolved to file:line later.
    related: tuple[Source, tuple[str | int, ...]] | None = None
    # For an unknown reference: the name referred to (not reported when an entry of that
    # name is declared but invalid: that entry's own error is the one to fix).
    ref: str = ""


def _suggest(name: str, choices: Iterable[str], listed: Iterable[str] = ()) -> str:
    """A did-you-mean for an unknown ``name``. When the closest name is one ``listed``
    beside it already, writing it would make a duplicate: it is named as listed instead."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    if not close:
        return ""
    if close[0].casefold() in {n.casefold() for n in listed}:
        return f"'{close[0]}' is listed here already: remove this entry, or "
    return f"did you mean '{close[0]}'? "


def _duplicates(
    state: DesiredState,
    items: Sequence[Any],
    sources: Sequence[Source],
    key: Any,
    field: str,
    what: str,
    hint: str,
) -> Iterator[Finding]:
    seen: dict[Any, Source] = {}
    for obj, src in zip(items, sources, strict=True):
        k = key(obj)
        if k is None:
            continue
        if k in seen:
            yield Finding(
                src,
                (field,),
                f"duplicate {what} {getattr(obj, field)!r}",
                hint,
                related=(seen[k], (field,)),
            )
        else:
            seen[k] = src


def check(state: DesiredState) -> list[Finding]:
    out: list[Finding] = []
    out += _duplicates(
        state,
        state.users,
        state.user_sources,
        lambda u: u.userName.casefold(),
        "userName",
        "userName",
        "userNames are unique regardless of case (SCIM); remove or rename one of them",
    )
    out += _duplicates(
        state,
        state.users,
        state.user_sources,
        lambda u: u.externalId,
        "externalId",
        "externalId",
        "externalId identifies one person in your directory; give each user its own",
    )
    out += _duplicates(
        state,
        state.groups,
        state.group_sources,
        lambda g: g.displayName.casefold(),
        "displayName",
        "group",
        "group names are unique regardless of case; merge the two groups",
    )
    out += _duplicates(
        state,
        state.groups,
        state.group_sources,
        lambda g: g.externalId,
        "externalId",
        "group externalId",
        "give each group its own externalId",
    )
    out += _duplicates(
        state,
        state.rules,
        state.rule_sources,
        lambda r: r.priority,
        "priority",
        "rule priority",
        "priorities decide which rule wins; give every rule a different number",
    )
    out += _duplicates(
        state,
        state.rules,
        state.rule_sources,
        lambda r: r.name.casefold(),
        "name",
        "rule name",
        "rule names appear in plans and history; make them unique",
    )
    out += _duplicates(
        state,
        state.attributes,
        state.attribute_sources,
        lambda a: a.name,
        "name",
        "attribute",
        "declare each custom attribute once",
    )
    out += _group_references(state)
    out += _managers(state)
    out += _attribute_values(state)
    out += _email_domains(state)
    out += _rule_references(state)
    return out


def _group_references(state: DesiredState) -> Iterator[Finding]:
    names = [g.displayName for g in state.groups]
    known = state.group_by_name
    on_group: dict[tuple[str, str], Source] = {}
    for g, src in zip(state.groups, state.group_sources, strict=True):
        first: dict[str, int] = {}
        for i, m in enumerate(g.members):
            if m.casefold() in first:
                yield Finding(
                    src,
                    ("members", i),
                    f"member {m!r} is listed twice in group {g.displayName!r}",
                    "remove one of the two",
                    related=(src, ("members", first[m.casefold()])),
                )
                continue
            first[m.casefold()] = i
            if m.casefold() not in state.user_by_name:
                yield Finding(
                    src,
                    ("members", i),
                    f"group {g.displayName!r} lists unknown member {m!r}",
                    _suggest(m, [u.userName for u in state.users], g.members)
                    + "declare the user in users/*.yaml first (members are userNames)",
                    ref=m,
                )
            on_group[(g.displayName.casefold(), m.casefold())] = Source(
                src.file, (*src.path, "members", i)
            )
    for u, src in zip(state.users, state.user_sources, strict=True):
        listed: dict[str, int] = {}
        for i, name in enumerate(u.groups):
            if name.casefold() in listed:
                yield Finding(
                    src,
                    ("groups", i),
                    f"group {name!r} is listed twice for this user",
                    "remove one of the two",
                    related=(src, ("groups", listed[name.casefold()])),
                )
                continue
            listed[name.casefold()] = i
            if name.casefold() not in known:
                yield Finding(
                    src,
                    ("groups", i),
                    f"unknown group {name!r}",
                    _suggest(name, names, u.groups) + "declare it in groups/*.yaml first",
                    ref=name,
                )
            elif (name.casefold(), u.userName.casefold()) in on_group:
                yield Finding(
                    src,
                    ("groups", i),
                    f"membership of {u.userName!r} in {name!r} is declared twice: here and in "
                    "the group's members",
                    "declare each membership in one place: remove one of the two",
                    related=(on_group[(name.casefold(), u.userName.casefold())], ()),
                )


def _managers(state: DesiredState) -> Iterator[Finding]:
    by_name = state.user_by_name
    usernames = [u.userName for u in state.users]
    manager_of: dict[str, str] = {}
    for u, src in zip(state.users, state.user_sources, strict=True):
        if u.manager is None:
            continue
        m = u.manager.casefold()
        if m == u.userName.casefold():
            yield Finding(src, ("manager",), "a user cannot be their own manager", "remove manager")
        elif m not in by_name:
            yield Finding(
                src,
                ("manager",),
                f"unknown manager {u.manager!r}",
                _suggest(u.manager, usernames) + "manager is the userName of a declared user",
                ref=u.manager,
            )
        else:
            manager_of[u.userName.casefold()] = m
    # Report each cycle once, at the member of the cycle declared first.
    reported: set[str] = set()
    index = {u.userName.casefold(): i for i, u in enumerate(state.users)}
    for start in manager_of:
        path: list[str] = []
        seen: set[str] = set()
        cur: str | None = start
        while cur is not None and cur not in seen:
            seen.add(cur)
            path.append(cur)
            cur = manager_of.get(cur)
        if cur is None or cur in reported:
            continue
        cycle = path[path.index(cur) :]
        reported.update(cycle)
        first = min(cycle, key=lambda n: index[n])
        i = index[first]
        names = [state.users[index[n]].userName for n in cycle]
        at = names.index(state.users[i].userName)
        ring = names[at:] + names[:at] + [names[at]]
        yield Finding(
            state.user_sources[i],
            ("manager",),
            "manager cycle: " + " → ".join(ring),
            "a reporting line must end at someone with no manager; break the cycle",
        )


def _type_ok(attr: Attribute, v: Any) -> bool:
    match attr.type:
        case AttrType.string | AttrType.reference:
            return isinstance(v, str)
        case AttrType.boolean:
            return isinstance(v, bool)
        case AttrType.integer:
            return isinstance(v, int) and not isinstance(v, bool)
        case AttrType.decimal:
            return isinstance(v, int | float) and not isinstance(v, bool)
        case AttrType.dateTime:
            if isinstance(v, dt.date):
                return True
            if isinstance(v, str):
                try:
                    dt.datetime.fromisoformat(v)
                except ValueError:
                    return False
                return True
    return False


_TYPE_HINT = {
    AttrType.string: "quote the value to make it a string, e.g. '1234'",
    AttrType.reference: "write a URI or identifier as a string",
    AttrType.boolean: "write true or false",
    AttrType.integer: "write a whole number",
    AttrType.decimal: "write a number",
    AttrType.dateTime: "write an ISO 8601 date-time, e.g. 2026-07-01T09:00:00Z",
}


def _attribute_values(state: DesiredState) -> Iterator[Finding]:
    attrs = state.attribute_by_name
    required = [a for a in state.attributes if a.required]
    for u, src in zip(state.users, state.user_sources, strict=True):
        for name, value in u.attributes.items():
            attr = attrs.get(name)
            if attr is None:
                yield Finding(
                    src,
                    ("attributes", name),
                    f"unknown custom attribute {name!r}",
                    _suggest(name, attrs) + "declare it in attributes.yaml",
                    at_key=True,
                    ref=name,
                )
                continue
            yield from _check_value(src, attr, value)
        for attr in required:
            if attr.name not in u.attributes:
                yield Finding(
                    src,
                    ("userName",),
                    f"user {u.userName!r} lacks required attribute {attr.name!r}",
                    f"add 'attributes: {{{attr.name}: …}}' to this user",
                )


def _check_value(src: Source, attr: Attribute, value: Any) -> Iterator[Finding]:
    at = ("attributes", attr.name)
    if value is None:
        if attr.required:
            yield Finding(
                src, at, f"{attr.name} is required and cannot be empty", "give it a value"
            )
        return
    if attr.multi_valued:
        if not isinstance(value, list):
            yield Finding(
                src, at, f"{attr.name} is multi-valued: write a list", f"{attr.name}: [a, b]"
            )
            return
        values: list[tuple[int | None, Any]] = list(enumerate(value))
    else:
        if isinstance(value, list | dict):
            yield Finding(
                src, at, f"{attr.name} takes a single {attr.type} value", "write one value"
            )
            return
        values = [(None, value)]
    for i, v in values:
        where = at if i is None else (*at, i)
        if not _type_ok(attr, v):
            yield Finding(
                src,
                where,
                f"{attr.name} must be {_a(attr.type)}, not {type(v).__name__} {v!r}"
                if not attr.sensitive
                else f"{attr.name} must be {_a(attr.type)}",
                _TYPE_HINT[attr.type],
            )
        elif attr.allowed_values is not None and not _allowed(attr, v):
            shown = "" if attr.sensitive else f" {v!r}"
            yield Finding(
                src,
                where,
                f"{attr.name}:{shown} is not an allowed value",
                "allowed: " + ", ".join(str(a) for a in attr.allowed_values),
            )


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _allowed(attr: Attribute, v: Any) -> bool:
    allowed = attr.allowed_values or []
    if isinstance(v, str) and not attr.case_exact:
        return v.casefold() in {str(a).casefold() for a in allowed}
    return v in allowed


def _domain(address: str) -> str:
    return address.rsplit("@", 1)[-1].lower()


def _email_domains(state: DesiredState) -> Iterator[Finding]:
    verified = state.tenant.verified_domains
    if not verified:
        return
    listed = ", ".join(verified)

    def ok(addr: str) -> bool:
        d = _domain(addr)
        return any(d == v or d.endswith("." + v) for v in verified)

    for u, src in zip(state.users, state.user_sources, strict=True):
        for i, e in enumerate(u.emails):
            if not ok(e.value):
                yield Finding(
                    src,
                    ("emails", i, "value"),
                    f"email {e.value!r} is outside the verified domains",
                    f"use an address in {listed}, or add the domain to verified_domains "
                    "in tenant.yaml once the tenant has verified it",
                )
        if "@" in u.userName and not u.emails and not ok(u.userName):
            yield Finding(
                src,
                ("userName",),
                f"userName {u.userName!r} is outside the verified domains",
                f"use an address in {listed}",
            )


def _rule_references(state: DesiredState) -> Iterator[Finding]:
    groups = state.group_by_name
    names = [g.displayName for g in state.groups]
    attrs = list(state.attribute_by_name) + list(CORE_CONDITION_ATTRIBUTES)
    for r, src in zip(state.rules, state.rule_sources, strict=True):
        for field in ("groups_any", "groups_all"):
            for i, name in enumerate(getattr(r.match, field)):
                if name.casefold() not in groups:
                    yield Finding(
                        src,
                        ("match", field, i),
                        f"rule {r.name!r} refers to unknown group {name!r}",
                        _suggest(name, names) + "declare it in groups/*.yaml",
                        ref=name,
                    )
        for i, c in enumerate(r.match.conditions):
            if c.attribute not in attrs:
                yield Finding(
                    src,
                    ("match", "conditions", i, "attribute"),
                    f"rule {r.name!r} tests unknown attribute {c.attribute!r}",
                    _suggest(c.attribute, attrs)
                    + "conditions test custom attributes or core user attributes",
                    ref=c.attribute,
                )
