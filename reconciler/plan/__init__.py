"""The plan: desired vs live → a reviewable, hashable plan (pure core in build.py)."""

from reconciler.plan.build import PlanContext, Removal, build_plan
from reconciler.plan.model import FORMAT_VERSION, Change, Plan
from reconciler.plan.rules import EffectiveAccess, evaluate

__all__ = [
    "FORMAT_VERSION",
    "Change",
    "EffectiveAccess",
    "Plan",
    "PlanContext",
    "Removal",
    "build_plan",
    "evaluate",
]
