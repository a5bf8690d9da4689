"""The plan hash: SHA-256 over a canonical form of the changes only.

No timestamps, no diagnostics, no rendering: the same intent always hashes the same, so the
merge workflow can refuse a plan that differs from the one reviewed. The live ``version`` a
change records is left out too: it is apply's stale check, not intent, and on many tenants it
moves when nothing managed changed (a login, a sync) or is a timestamp itself. What a change
would do (its fields before and after, its operations, its object's id) is all in.
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
            "changes": [c.model_dump(mode="json", exclude={"version"}) for c in changes],
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
