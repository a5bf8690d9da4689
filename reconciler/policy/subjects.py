"""What each policy subject sees: plain dicts built from the desired state (and its grants).

Optional single values are ``""`` and optional lists ``[]``, so expressions rarely need
``has()``; custom attributes appear only when set (``has(user.attributes.costCenter)``).

Expressions see every value; a violation's message sees a ``sensitive`` attribute's value as
``***`` (:func:`masker`): messages go to the pull-request comment, as the plan's masked
fields do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reconciler.desired.models import Group, Rule, Tenant, User
from reconciler.desired.state import DesiredState

GRANT_KEYS = (
    "role",
    "userGroup",
    "settingsTemplate",
    "products",
    "deviceGroups",
    "roles",
    "entitlements",
)
EMPTY_GRANTS: dict[str, Any] = {
    "role": "",
    "userGroup": "",
    "settingsTemplate": "",
    "products": [],
    "deviceGroups": [],
    "roles": [],
    "entitlements": [],
}


def tenant_subject(t: Tenant) -> dict[str, Any]:
    return {
        "url": t.url,
        "profile": str(t.profile),
        "verified_domains": list(t.verified_domains),
        "protected": [p for p in t.protected if isinstance(p, str)],
    }


def group_names(state: DesiredState) -> dict[str, str]:
    """Casefolded displayName → displayName, for :func:`user_subject` (built once a run)."""
    return {g.displayName.casefold(): g.displayName for g in state.groups}


def user_subject(
    state: DesiredState,
    u: User,
    grants: Mapping[str, Any] | None,
    names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    names = group_names(state) if names is None else names
    groups = sorted(
        names.get(g, g) for g in state.groups_of.get(u.userName.casefold(), frozenset())
    )
    return {
        "userName": u.userName,
        "externalId": u.externalId or "",
        "displayName": u.displayName or "",
        "title": u.title or "",
        "userType": u.userType or "",
        "active": u.active,
        "emails": [e.value for e in u.emails],
        "manager": u.manager or "",
        "groups": groups,
        "attributes": dict(u.attributes),
        "grants": {**EMPTY_GRANTS, **(grants or {})},
    }


def group_subject(state: DesiredState, g: Group) -> dict[str, Any]:
    by_name = state.user_by_name
    members = state.members.get(g.displayName.casefold(), frozenset())
    return {
        "displayName": g.displayName,
        "externalId": g.externalId or "",
        "description": g.description or "",
        "members": sorted(by_name[m].userName if m in by_name else m for m in members),
    }


def rule_subject(state: DesiredState, r: Rule, matched: int) -> dict[str, Any]:
    grants = r.grants.model_dump()
    return {
        "name": r.name,
        "priority": r.priority,
        "groups_any": list(r.match.groups_any),
        "groups_all": list(r.match.groups_all),
        "conditions": [c.model_dump() for c in r.match.conditions],
        "grants": {k: grants[k] if grants[k] is not None else "" for k in GRANT_KEYS},
        "matched": matched,
        "population": len(state.users),
    }


MASK = "***"
Subject = dict[str, Any]


def masker(state: DesiredState, variable: str) -> Callable[[Subject], Subject] | None:
    """What a ``variable`` subject looks like to a violation's message: the values of the
    state's ``sensitive`` attributes masked (a user's, and a rule condition's on one). None
    when there is nothing to mask."""
    sensitive = {a.name.casefold() for a in state.attributes if a.sensitive}
    if not sensitive:
        return None
    if variable == "user":

        def user(data: Subject) -> Subject:
            attrs = data.get("attributes")
            if not attrs or not any(k.casefold() in sensitive for k in attrs):
                return data
            masked = {k: MASK if k.casefold() in sensitive else v for k, v in attrs.items()}
            return {**data, "attributes": masked}

        return user
    if variable == "rule":

        def rule(data: Subject) -> Subject:
            conditions = data.get("conditions")
            if not conditions:
                return data
            return {
                **data,
                "conditions": [
                    {**c, "value": MASK}
                    if str(c.get("attribute", "")).casefold() in sensitive
                    and c.get("value") is not None
                    else c
                    for c in conditions
                ],
            }

        return rule
    return None
