"""The plan hash: SHA-256 over a canonical form of the changes only.

No timestamps, no diagnostics, no rendering, no reasons: the same intent always hashes the
same, so the merge workflow can refuse a plan that differs from the one reviewed. A reason is
an explanation, not an intent, and it names commits ("removed from desired-state in abc123 on
2024-05-01"): a squash or rebase merge rewrites those commits, and the reviewed plan must still
match the merged one. What the tenant is asked to do (action, object, its live version, fields,
body, operations, members) is all hashed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from reconciler.plan.model import Change


def plan_hash(tenant_url: str, changes: Iterable[Change]) -> str:
    canonical = json.dumps(
        {
            "tenant": tenant_url,
            "changes": [c.model_dump(mode="json", exclude={"reason"}) for c in changes],
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
