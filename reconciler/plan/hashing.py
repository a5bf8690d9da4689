"""The plan hash: SHA-256 over a canonical form of the changes only.

No timestamps, no diagnostics, no rendering: the same intent always hashes the same, so the
merge workflow can refuse a plan that differs from the one reviewed. Three parts of a change
are left out because they are not intent:

- its ``reason``: an explanation that names commits ("removed from desired-state in abc123 on
  2024-05-01"); a squash or rebase merge rewrites those, and the reviewed plan must still match
  the merged one;
- its fields' ``why``: which rule gives a grant (renaming a rule changes no access);
- its live ``version``: apply's stale check, which on many tenants moves when nothing managed
  changed (a login, a sync) or is a timestamp itself.

Whether the plan is blocked (has errors) is hashed too. A SHA-256 is no signature: it shows an
edit that did not recompute it, and the merge workflow's comparison of plans; it cannot stop a
forger, who can recompute it. What the hash leaves out but the changes determine (the summary,
the access table as far as the changes show it) is checked against them by :func:`edited`.

What the tenant is asked to do (action, object, fields before and after, body, operations,
members) is all hashed: a managed value changed in the tenant since the review changes a
"before" and therefore the hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from reconciler import urls
from reconciler.errors import InputError
from reconciler.plan.accesscheck import check_access
from reconciler.plan.model import Change, Plan, count_actions

_NOT_INTENT: Any = {"reason": True, "version": True, "fields": {"__all__": {"why"}}}


def plan_hash(tenant_url: str, changes: Iterable[Change], *, blocked: bool = False) -> str:
    """``tenant_url`` is hashed in its canonical form (``local:./t.db`` is ``local:t.db``,
    ``HTTP://H/v2/`` is ``http://h/v2``), so one tenant spelled two ways (a --tenant typed in
    the pull request's job, tenant.yaml's url in the merge's) gives one hash; the plan keeps
    the URL as written. ``blocked``: the plan has errors and cannot be applied. Hashed (only
    when set, so an applicable plan hashes as it always did): unblocking a plan by editing
    the file shows."""
    content: dict[str, Any] = {
        "tenant": urls.canonical(tenant_url),
        "changes": [c.model_dump(mode="json", exclude=_NOT_INTENT) for c in changes],
    }
    if blocked:
        content["blocked"] = True
    canonical = json.dumps(
        content,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def edited(plan: Plan) -> str:
    """What of a plan read from a file no longer agrees with itself (it was edited after it
    was made), or ``""``."""
    if plan_hash(plan.tenant_url, plan.changes, blocked=plan.blocked) != plan.plan_hash:
        if plan_hash(plan.tenant_url, plan.changes, blocked=not plan.blocked) == plan.plan_hash:
            return "the plan's blocked flag does not match its plan_hash"
        return "the plan's changes do not match its plan_hash"
    if plan.summary != count_actions(plan.changes):
        return "the plan's summary does not count its changes"
    if plan.blocked != any(d.severity == "error" for d in plan.diagnostics):
        return "the plan's blocked flag does not agree with its errors"
    mismatches = check_access(plan).mismatches
    if mismatches:
        more = len(mismatches) - 1
        return (
            f"the plan's access table does not match its changes ({mismatches[0]}"
            + (f"; and {more} more" if more else "")
            + ")"
        )
    return ""


def ensure_unedited(plan: Plan, where: str = "") -> None:
    """Refuse a plan that was edited after it was made (see :func:`edited`). ``where``: the
    file it was read from, for the message."""
    problem = edited(plan)
    if problem:
        raise InputError(
            f"{where + ': ' if where else ''}{problem}: it was edited after it was made, and is "
            "not what was reviewed",
            "make a new plan with `reconciler plan --out plan.json` and review it",
        )
