"""Guardrails on a built plan: policies, safety gates, minimum holders. Pure.

The plan core says what would change; this adds what the organisation allows: every policy
violation and every exceeded gate becomes a diagnostic, an error blocks the plan.
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.desired.state import DesiredState
from reconciler.plan.gates import check_gates, check_min_holders, losses
from reconciler.plan.hashing import plan_hash
from reconciler.plan.model import Plan, PlanDiagnostic
from reconciler.plan.rules import EffectiveAccess, rule_matches
from reconciler.policy import PolicySet
from reconciler.policy.evaluate import evaluate_plan, evaluate_state
from reconciler.policy.subjects import tenant_subject


def guard(
    plan: Plan,
    state: DesiredState,
    access: Mapping[str, EffectiveAccess],
    *,
    policies: PolicySet | None = None,
    allow: Mapping[str, int] | None = None,
    rule_changes: tuple[str, ...] = (),
) -> Plan:
    diags: list[PlanDiagnostic] = list(plan.diagnostics)
    if policies is not None:
        # Users of one access signature share one EffectiveAccess: one dict for all of them.
        shared: dict[int, dict[str, object]] = {}
        grants = {
            user: shared.get(id(acc)) or shared.setdefault(id(acc), acc.as_dict())
            for user, acc in access.items()
        }
        violations = evaluate_state(policies, state, grants, rule_matches(access.values()))
        violations += evaluate_plan(policies, plan, tenant_subject(state.tenant))
        diags += [
            PlanDiagnostic(
                severity="error" if v.severity == "error" else "warning",
                message=v.message,
                hint=f"policy {v.policy}",
                code=f"policy:{v.policy}",
                subject=v.key,
            )
            for v in violations
        ]
    measured = losses(plan, rule_changes, len(state.rules), plan.live_grants, plan.live_memberships)
    gate_diags, allowances = check_gates(plan, state.tenant.safety, allow or {}, measured)
    diags += gate_diags
    # Also for a partial plan: applying targets one by one must not strip the last holders.
    active = {u.userName.casefold(): u.active for u in state.users}
    diags += check_min_holders(state.tenant, access, active)
    blocked = any(d.severity == "error" for d in diags)
    return plan.model_copy(
        update={
            "diagnostics": tuple(diags),
            "allowances": tuple(allowances),
            "blocked": blocked,
            "plan_hash": plan_hash(plan.tenant_url, plan.changes, blocked=blocked),
        }
    )
