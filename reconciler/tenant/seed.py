"""Fill a tenant database directly and fast (for demos and benchmarks), bypassing HTTP."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from pathlib import Path
from typing import Any

from reconciler.tenant.store import Store

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
FIRST = ["Ada", "Ben", "Chen", "Dana", "Emeka", "Fatima", "Grace", "Hugo", "Ines", "Jonas"]
LAST = ["Abe", "Berg", "Costa", "Diaz", "Eriksson", "Fischer", "Garcia", "Haddad", "Ito"]
DEPARTMENTS = ["Sales", "Support", "Engineering", "Marketing", "Finance", "People"]


def _meta(kind: str, n: int, now: str) -> dict[str, Any]:
    return {"resourceType": kind, "created": now, "lastModified": now, "version": f'W/"{n}"'}


def seed(db: Path, users: int, groups: int, *, seed: int = 0, domain: str = "example.com") -> None:
    """Add ``users`` users and ``groups`` groups (each user in 1 to 4 groups). Seeding a
    database again adds more: numbering (userName, externalId, displayName) continues after
    what it holds, so nothing is replaced or duplicated."""
    store = Store(db)
    u0, g0 = store.count("User"), store.count("Group")
    rng = random.Random(f"{seed}:{u0}:{g0}")  # noqa: S311  (test data, not secrets)
    now = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    rows: list[tuple[str, str, dict[str, Any]]] = []
    ids: list[str] = []
    for i in range(u0, u0 + users):
        uid = uuid.UUID(int=rng.getrandbits(128)).hex
        ids.append(uid)
        first, last = rng.choice(FIRST), rng.choice(LAST)
        name = f"{first.lower()}.{last.lower()}.{i}@{domain}"
        rows.append(
            (
                "User",
                uid,
                {
                    "schemas": [CORE_USER, ENTERPRISE],
                    "id": uid,
                    "externalId": f"s{i:07d}",
                    "meta": _meta("User", g0 + i + 1, now),
                    "userName": name,
                    "name": {"givenName": first, "familyName": last},
                    "displayName": f"{first} {last}",
                    "active": True,
                    "emails": [{"value": name, "type": "work", "primary": True}],
                    ENTERPRISE: {
                        "employeeNumber": f"{i:07d}",
                        "department": rng.choice(DEPARTMENTS),
                    },
                },
            )
        )
    members: list[list[str]] = [[] for _ in range(groups)]
    version = u0 + g0 + users
    if groups:
        for uid in ids:
            for g in rng.sample(range(groups), k=min(groups, rng.randint(1, 4))):
                members[g].append(uid)
    for k in range(groups):
        g = g0 + k
        gid = uuid.UUID(int=rng.getrandbits(128)).hex
        rows.append(
            (
                "Group",
                gid,
                {
                    "schemas": [CORE_GROUP],
                    "id": gid,
                    "externalId": f"sg{g:05d}",
                    "meta": _meta("Group", version + k + 1, now),
                    "displayName": f"group-{g:05d}",
                    "members": [{"value": m} for m in members[k]] or None,
                },
            )
        )
    store.put_many((t, i, {k: v for k, v in b.items() if v is not None}) for t, i, b in rows)
    store.close()
