"""Policies as code: CEL expressions checked against users, groups, rules, changes and plans."""

from reconciler.policy.evaluate import Violation, evaluate_state
from reconciler.policy.loader import PolicySet, load_policies

__all__ = ["PolicySet", "Violation", "evaluate_state", "load_policies"]
