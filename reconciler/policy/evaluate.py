"""Evaluate compiled policies against subjects; each false expression is a violation."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import cel

from reconciler.desired.state import DesiredState, Source
from reconciler.policy.loader import CompiledPolicy, PolicySet
from reconciler.policy.subjects import (
    group_names,
    group_subject,
    masker,
    rule_subject,
    tenant_subject,
    user_subject,
)

# CEL's string extensions that cel-rust lacks and policies commonly need.
FUNCTIONS = {
    "lowerAscii": lambda s: s.lower(),
    "upperAscii": lambda s: s.upper(),
}


@dataclass(frozen=True)
class Violation:
    """A subject that fails a policy. ``source`` points at the subject's YAML when known."""

    policy: str
    severity: str
    subject: str
    key: str
    message: str
    source: Source | None = None


def _render(p: CompiledPolicy, ctx: cel.Context) -> str:
    out = []
    for part in p.message_parts:
        if isinstance(part, str):
            out.append(part)
        else:
            try:
                out.append(str(part.execute(ctx)))
            except (KeyError, TypeError, ValueError, RuntimeError):
                out.append("?")
    text = "".join(out).strip()
    return text or p.policy.description or f"violates {p.policy.name}"


# Which fields of a subject the policies read: None for all of them, else field → None (all
# of it) or the set of its keys that are read (``user.attributes.costCenter``).
Fields = dict[str, set[str] | None] | None
_FIELD = re.compile(r"\s*\.\s*([A-Za-z_]\w*)")
_WHOLE = frozenset({"size", "exists", "exists_one", "all", "map", "filter"})


def fields_used(sources: Iterable[str], variable: str) -> Fields:
    """The fields of ``variable`` that CEL ``sources`` read. Any use this cannot follow
    (``user`` passed whole, ``user.attributes["x"]``) keeps the whole value."""
    text = "\n".join(sources)
    out: dict[str, set[str] | None] = {}
    for m in re.finditer(rf"\b{re.escape(variable)}\b", text):
        field = _FIELD.match(text, m.end())
        if field is None:
            return None  # the subject used whole
        name = field.group(1)
        sub = _FIELD.match(text, field.end())
        if sub is None or sub.group(1) in _WHOLE:
            out[name] = None
        else:
            keys = out.setdefault(name, set())
            if keys is not None:
                keys.add(sub.group(1))
    return out


def _pruned(data: dict[str, Any], fields: Fields) -> dict[str, Any]:
    if fields is None:
        return data
    out: dict[str, Any] = {}
    for name, keys in fields.items():
        if name not in data:
            continue
        value = data[name]
        if keys is not None and isinstance(value, dict):
            value = {k: value[k] for k in keys if k in value}
        out[name] = value
    return out


def _cel_of(policies: list[CompiledPolicy]) -> list[str]:
    """The CEL of the policies: expressions and message placeholders."""
    return [p.policy.expression for p in policies] + [
        part.source for p in policies for part in p.message_parts if not isinstance(part, str)
    ]


def evaluate(
    policies: list[CompiledPolicy],
    subjects: Iterable[tuple[str, dict[str, Any], Source | None]],
    variable: str,
    tenant: dict[str, Any],
    mask: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> list[Violation]:
    """Run every policy over every subject ``(key, data, source)``. An expression that cannot
    be evaluated for a subject (a missing field, a type mismatch) counts as a violation: a
    guardrail that silently passes on bad data is no guardrail.

    Converting data to CEL costs more than evaluating a compiled expression (about a
    microsecond a string), so one context a subject serves every policy, and it holds only
    the fields the policies read. ``mask``: the subject as a violation's message may show it
    (sensitive values hidden); expressions always see it whole."""
    out: list[Violation] = []
    if not policies:
        return out
    sources = _cel_of(policies)
    fields = fields_used(sources, variable)
    tenant = _pruned(tenant, fields_used(sources, "tenant"))
    for key, data, source in subjects:
        ctx = cel.Context({variable: _pruned(data, fields), "tenant": tenant}, functions=FUNCTIONS)
        shown: cel.Context | None = None  # made for the first violation that needs it
        for p in policies:
            try:
                ok = p.program.execute(ctx)
            except (KeyError, TypeError, ValueError, RuntimeError) as exc:
                out.append(
                    Violation(
                        p.policy.name,
                        p.policy.severity,
                        variable,
                        key,
                        f"policy {p.policy.name!r} could not be evaluated for {key}: {exc}; "
                        "guard optional fields with has(...)",
                        source,
                    )
                )
                continue
            if ok is not True:
                if shown is None:
                    masked = mask(data) if mask is not None else data
                    shown = (
                        ctx
                        if masked is data
                        else cel.Context(
                            {variable: _pruned(masked, fields), "tenant": tenant},
                            functions=FUNCTIONS,
                        )
                    )
                out.append(
                    Violation(
                        p.policy.name, p.policy.severity, variable, key, _render(p, shown), source
                    )
                )
    return out


def evaluate_state(
    policies: PolicySet,
    state: DesiredState,
    grants: Mapping[str, Mapping[str, Any]] | None = None,
    rule_matches: Mapping[str, int] | None = None,
) -> list[Violation]:
    """User, group and rule policies over a desired state. ``grants`` maps a casefolded
    userName to its effective grants; ``rule_matches`` a rule name to how many users it
    matches. Both come from rule evaluation, which runs here when they are not given: a
    policy on ``user.grants`` or ``rule.matched`` must see the real values."""
    tenant = tenant_subject(state.tenant)
    if grants is None or rule_matches is None:
        from reconciler.plan.rules import evaluate as evaluate_rules
        from reconciler.plan.rules import rule_matches as count_matches

        access = evaluate_rules(state)
        if grants is None:
            grants = {user: acc.as_dict() for user, acc in access.items()}
        if rule_matches is None:
            rule_matches = count_matches(access.values())
    names = group_names(state)
    users = (
        (u.userName, user_subject(state, u, grants.get(u.userName.casefold()), names), src)
        for u, src in zip(state.users, _sources(state.user_sources, state.users), strict=True)
    )
    groups = (
        (g.displayName, group_subject(state, g), src)
        for g, src in zip(state.groups, _sources(state.group_sources, state.groups), strict=True)
    )
    rules = (
        (r.name, rule_subject(state, r, rule_matches.get(r.name, 0)), src)
        for r, src in zip(state.rules, _sources(state.rule_sources, state.rules), strict=True)
    )
    return [
        *evaluate(policies.for_subject("user"), users, "user", tenant, masker(state, "user")),
        *evaluate(policies.for_subject("group"), groups, "group", tenant),
        *evaluate(policies.for_subject("rule"), rules, "rule", tenant, masker(state, "rule")),
    ]


def _sources(sources: tuple[Source, ...], objs: tuple[Any, ...]) -> list[Source | None]:
    return list(sources) if len(sources) == len(objs) else [None] * len(objs)


def evaluate_plan(policies: PolicySet, plan: Any, tenant: dict[str, Any]) -> list[Violation]:
    """Change and plan policies over a built plan (``plan`` is a :class:`Plan`)."""
    changes = (
        (
            f"{c.action} {c.resource_type} {c.key}",
            {
                "action": c.action,
                "resource_type": c.resource_type,
                "key": c.key,
                "reason": c.reason,
                "members": list(c.members),
                "before": {
                    f.path.rsplit(":", 1)[-1]: f.before for f in c.fields if not f.sensitive
                },
                "after": {f.path.rsplit(":", 1)[-1]: f.after for f in c.fields if not f.sensitive},
            },
            None,
        )
        for c in plan.changes
    )
    summary = {
        "summary": dict(plan.summary),
        "changes": len(plan.changes),
        "access": [
            {"grant": a.grant, "value": a.value, "gains": list(a.gains), "loses": list(a.loses)}
            for a in plan.access
        ],
        "live_users": plan.live_users,
        "live_groups": plan.live_groups,
    }
    return [
        *evaluate(policies.for_subject("change"), changes, "change", tenant),
        *evaluate(policies.for_subject("plan"), [("plan", summary, None)], "plan", tenant),
    ]
