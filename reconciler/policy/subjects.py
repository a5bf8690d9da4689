"""What each policy subject sees: plain dicts built from the desired state (and its grants).

Optional single values are ``""`` and optional lists ``[]``, so expressions rarely need
``has()``; custom attributes appear only when set (``has(user.attributes.costCenter)``).
"""

from __future__ import annotations

from collections.abc import Mapping
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
