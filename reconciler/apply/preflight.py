"""What apply checks of a plan before it writes anything: tenant.yaml's protected accounts and
safety gates, as they are when applying. Pure.

The plan checked both when it was made, but with tenant.yaml as it was then: an account may
have been protected, or a limit tightened, by a change merged since (the reviewed plan of a
pull request is applied after the merge), and a plan file can be edited and rehashed. Apply
therefore re-checks what it is about to do against the rules it runs under. Gates allowed
deliberately when the plan was made (``--allow``, recorded in the plan) stay allowed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from reconciler.desired.models import Safety
from reconciler.errors import InputError
from reconciler.plan.gates import ALL, check_gates, losses
from reconciler.plan.model import Change, Plan
from reconciler.plan.protection import Protection, harm, protected_by_name

_SHOWN = 20


def _listed(items: list[str]) -> str:
    more = len(items) - _SHOWN
    return "; ".join(items[:_SHOWN]) + (f"; and {more} more" if more > 0 else "")


def check_plan(
    plan: Plan, safety: Safety, protection: Protection, done: Collection[int] = ()
) -> None:
    """Refuse, before connecting, a plan that harms an account tenant.yaml protects by name
    or exceeds one of its safety gates (every problem at once). ``done``: the indexes of
    changes an interrupted apply of this plan already made (resumed: not checked again)."""
    problems = []
    todo = [c for i, c in enumerate(plan.changes) if i not in done]
    harmed = protected_by_name(todo, protection)
    if harmed:
        problems.append(f"protected accounts (tenant.yaml protected:): {_listed(harmed)}")
    allow = {a.gate: ALL if a.up_to == "all" else a.up_to for a in plan.allowances}
    # Changed rules and minimum holders are checks of git's desired state, which the plan
    # made; the gates here are those on what the plan's changes do to the tenant.
    measured = losses(plan, (), 0, plan.live_grants, plan.live_memberships)
    gate_errors, _ = check_gates(plan, safety, allow, measured)
    gated = [d.message for d in gate_errors if d.severity == "error"]
    if problems or gated:
        what = "the rest of this plan is not applied" if done else "this plan is not applied"
        raise InputError(
            f"{what}: tenant.yaml, as it is now, does not allow it: "
            + " | ".join(problems + gated),
            "tenant.yaml changed since the plan was made, or the plan file was edited: make a "
            "new plan and review it (reconciler plan --out plan.json"
            + ("; --allow GATE=N there for a gate exceeded deliberately)" if gated else ")"),
        )


def harmed_by_selector(
    protection: Protection, checks: list[tuple[Change, Mapping[str, Any] | None]]
) -> list[str]:
    """The changes that would harm an account a protected selector matches, judged on the
    account as the tenant holds it now (``None``: it is gone, nothing to protect)."""
    return [
        f"{c.key} would be {harm(c)}"
        for c, live in checks
        if live is not None and protection(c.key, live)
    ]


def refuse_selected(harmed: list[str]) -> None:
    if harmed:
        raise InputError(
            "this plan is not applied, and nothing was written: tenant.yaml's protected "
            f"selectors match accounts it would change: {_listed(harmed)}",
            "protected accounts are never suspended, deleted, renamed or stripped; make a new "
            "plan, or change tenant.yaml's protected list deliberately",
        )
