"""What apply checks of a plan before it writes anything: tenant.yaml's protected accounts and
safety gates, as they are when applying. Pure.

The plan checked both when it was made, but with tenant.yaml as it was then: an account may
have been protected, or a limit tightened, by a change merged since (the reviewed plan of a
pull request is applied after the merge), and a plan file can be edited and rehashed. Apply
therefore re-checks what it is about to do against the rules it runs under. Gates allowed
deliberately when the plan was made (``--allow``, recorded in the plan) stay allowed.

Every problem is reported at once: when names or gates refuse the plan and tenant.yaml also
has protected selectors, apply still reads (GET only) the accounts the selectors must judge,
and the refusal names what they match too, or says that they could not be checked.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Problems:
    """What tenant.yaml, as it is now, says against a plan before connecting: changes that
    harm accounts protected by name, and safety gates exceeded."""

    harmed: tuple[str, ...] = ()
    gated: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.harmed or self.gated)


def plan_problems(
    plan: Plan, safety: Safety, protection: Protection, done: Collection[int] = ()
) -> Problems:
    """Every change that harms an account tenant.yaml protects by name, and every safety gate
    the plan exceeds. ``done``: the indexes of changes an interrupted apply of this plan
    already made (resumed: not checked again)."""
    todo = [c for i, c in enumerate(plan.changes) if i not in done]
    allow = {a.gate: ALL if a.up_to == "all" else a.up_to for a in plan.allowances}
    # Changed rules and minimum holders are checks of git's desired state, which the plan
    # made; the gates here are those on what the plan's changes do to the tenant.
    measured = losses(plan, (), 0, plan.live_grants, plan.live_memberships)
    gate_errors, _ = check_gates(plan, safety, allow, measured)
    return Problems(
        harmed=tuple(protected_by_name(todo, protection)),
        gated=tuple(d.message for d in gate_errors if d.severity == "error"),
    )


def refuse(
    problems: Problems,
    *,
    resumed: bool = False,
    selected: Sequence[str] = (),
    unchecked: str = "",
) -> None:
    """Refuse the plan when anything is against it, naming every problem: ``problems``,
    ``selected`` (changes harming accounts a protected selector matches in the tenant now,
    :func:`harmed_by_selector`) and ``unchecked`` (why the selectors could not be judged)."""
    if not problems:
        return
    parts = []
    if problems.harmed:
        parts.append(
            f"protected accounts (tenant.yaml protected:): {_listed(list(problems.harmed))}"
        )
    if selected:
        parts.append(
            "protected selectors (tenant.yaml protected:), on the accounts as the tenant holds "
            f"them now: {_listed(list(selected))}"
        )
    parts += problems.gated
    if unchecked:
        parts.append(
            f"protected selectors were not checked ({unchecked}): more accounts it would change "
            "may be protected"
        )
    what = "the rest of this plan is not applied" if resumed else "this plan is not applied"
    raise InputError(
        f"{what}, and nothing {'more ' if resumed else ''}was written: tenant.yaml, as it is "
        "now, does not allow it: " + " | ".join(parts),
        "tenant.yaml changed since the plan was made, or the plan file was edited: make a "
        "new plan and review it (reconciler plan --out plan.json"
        + ("; --allow GATE=N there for a gate exceeded deliberately)" if problems.gated else ")"),
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
