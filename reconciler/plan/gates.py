"""Safety gates, protected accounts and minimum holders: limits on every kind of access loss.

Pure. Each gate counts one dimension of loss in a plan — deletions, suspensions, removed
memberships, lost grants, changed rules — against an absolute (``max``) and a relative
(``max_percent`` of what the tenant has) limit. A plan over a limit is blocked unless the
reviewer allowed that many deliberately (``--allow suspensions=40``). Every allowance given
is recorded in the plan, also one for a gate the plan does not exceed: apply checks the gates
again with tenant.yaml as it is then, and a limit tightened since the review must not refuse
what the reviewer allowed.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from reconciler.desired.models import Limit, MinHolders, Safety, Tenant
from reconciler.errors import UsageError
from reconciler.plan.model import Allowance, Plan, PlanDiagnostic
from reconciler.plan.rules import EffectiveAccess

GATES = ("deletions", "suspensions", "membership_removals", "lost_grants", "rule_changes")
ALL = 10**9


@dataclass(frozen=True)
class Loss:
    count: int
    base: int
    who: tuple[str, ...]
    what: str


def parse_allow(items: list[str]) -> dict[str, int]:
    """``["suspensions=40", "deletions=all"]`` (also comma-separated) → {gate: up to}."""
    out: dict[str, int] = {}
    for item in (part.strip() for raw in items for part in raw.split(",")):
        if not item:
            continue
        gate, _, n = item.partition("=")
        gate = gate.strip().replace("-", "_")
        if gate == "deletes":
            gate = "deletions"
        if gate not in GATES:
            close = difflib.get_close_matches(gate, GATES, n=1)
            raise UsageError(
                f"--allow {item!r} is not GATE=N: no safety gate is called {gate!r}",
                (f"did you mean {close[0]}={n or 'N'}? " if close else "")
                + f"gates: {', '.join(GATES)}; e.g. --allow suspensions=40 or deletions=all",
            )
        if not (n.isdigit() or n == "all"):
            raise UsageError(
                f"--allow {item!r} is not GATE=N",
                f"write how many to allow, a number or all: e.g. --allow {gate}=40 or {gate}=all",
            )
        out[gate] = ALL if n == "all" else int(n)
    return out


def losses(
    plan: Plan, rule_changes: tuple[str, ...], rules: int, live_grants: int, live_members: int
) -> dict[str, Loss]:
    deleted = [c.key for c in plan.changes if c.action == "delete"]
    suspended = [c.key for c in plan.changes if c.action == "suspend"]
    # A group deleted with members removes them too (the plan names them on the delete).
    removed = [
        f"{m} from {c.key}"
        for c in plan.changes
        if c.action == "remove_member" or (c.action == "delete" and c.resource_type == "Group")
        for m in c.members
    ]
    # Lost grants listed per user: "alice (products GoTo Meeting, GoTo Webinar; role admin)".
    by_user: dict[str, dict[str, list[str]]] = {}
    count = 0
    for a in plan.access:
        for who in a.loses:
            by_user.setdefault(who, {}).setdefault(a.grant, []).append(a.value)
            count += 1
    lost = [
        f"{who} ({'; '.join(g + ' ' + ', '.join(vs) for g, vs in grants.items())})"
        for who, grants in sorted(by_user.items(), key=lambda kv: kv[0].casefold())
    ]
    return {
        "deletions": Loss(
            len(deleted), plan.live_users + plan.live_groups, tuple(deleted), "deleted"
        ),
        "suspensions": Loss(len(suspended), plan.live_users, tuple(suspended), "suspended"),
        "membership_removals": Loss(
            len(removed), live_members, tuple(removed), "removed from groups"
        ),
        "lost_grants": Loss(
            count,
            live_grants,
            tuple(lost),
            f"lost by {len(lost)} user{'s' if len(lost) != 1 else ''}",
        ),
        "rule_changes": Loss(len(rule_changes), rules, rule_changes, "changed"),
    }


def _over(limit: Limit, loss: Loss) -> str:
    if limit.max is not None and loss.count > limit.max:
        return f"limit {limit.max}"
    if (
        limit.max_percent is not None
        and loss.base
        and loss.count * 100 / loss.base > limit.max_percent
    ):
        return f"limit {limit.max_percent:g}% of {loss.base}"
    return ""


def check_gates(
    plan: Plan,
    safety: Safety,
    allow: Mapping[str, int],
    measured: Mapping[str, Loss],
) -> tuple[list[PlanDiagnostic], list[Allowance]]:
    """The diagnostics of the gates ``measured`` exceeds, and an :class:`Allowance` for every
    gate ``allow`` names (``limit`` empty where the gate is not exceeded)."""
    diags: list[PlanDiagnostic] = []
    used: list[Allowance] = []
    for gate in GATES:
        loss = measured[gate]
        over = _over(getattr(safety, gate), loss)
        if not over:
            if gate in allow:
                used.append(Allowance(gate=gate, up_to=_up_to(allow[gate]), count=loss.count))
            continue
        allowed = allow.get(gate, 0)
        shown = ", ".join(loss.who[:20]) + (
            f" and {len(loss.who) - 20} more" if len(loss.who) > 20 else ""
        )
        if loss.count <= allowed:
            up_to = _up_to(allowed)
            used.append(Allowance(gate=gate, up_to=up_to, count=loss.count, limit=over))
            diags.append(
                PlanDiagnostic(
                    severity="warning",
                    message=f"safety gate {gate}: {loss.count} {loss.what} ({over}), allowed "
                    f"deliberately up to {up_to}: {shown}",
                    code="gate-allowed",
                    subject=gate,
                )
            )
            continue
        diags.append(
            PlanDiagnostic(
                severity="error",
                message=f"safety gate {gate}: {loss.count} would be {loss.what} ({over}): {shown}",
                hint=f"if this is intended, allow it deliberately: --allow {gate}={loss.count} "
                f"(or RECONCILER_ALLOW={gate}={loss.count}; in a pull request, the label "
                f"reconciler:allow-{gate.replace('_', '-')})",
                code="gate",
                subject=gate,
            )
        )
    return diags, used


def _up_to(allowed: int) -> int | Literal["all"]:
    return "all" if allowed >= ALL else allowed


def check_min_holders(
    tenant: Tenant, access: Mapping[str, EffectiveAccess], active: Mapping[str, bool]
) -> list[PlanDiagnostic]:
    """Holders counted on the state after the plan: the desired users that stay active."""
    out = []
    held: dict[int, dict[str, object]] = {}  # as_dict once per shared access object
    for rule in tenant.min_holders:
        holders = [
            user
            for user, acc in access.items()
            if active.get(user, True)
            and _holds(held.get(id(acc)) or held.setdefault(id(acc), acc.as_dict()), rule)
        ]
        if len(holders) < rule.min:
            out.append(
                PlanDiagnostic(
                    severity="error",
                    message=f"only {len(holders)} user(s) would hold {rule.grant} {rule.value!r}; "
                    f"at least {rule.min} must (min_holders)",
                    hint="grant it to more users, or lower min_holders in tenant.yaml deliberately",
                    code="min-holders",
                    subject=f"{rule.grant}:{rule.value}",
                )
            )
    return out


def _holds(grants: Mapping[str, object], rule: MinHolders) -> bool:
    held = grants.get(rule.grant)
    return rule.value in held if isinstance(held, list) else held == rule.value
