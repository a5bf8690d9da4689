"""Fast listing answers exactly what scim2-server answers.

The embedded tenant pages a cached sorted order and splices cached JSON per resource; the
third-party core sorts and serialises everything on each request. Both run in process on the
same writes (same ids, clock and versions) and every listing is compared, before and after
writes that move, change, add and remove resources.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
from pathlib import Path
from typing import Any

import httpx
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.memory import AsyncInMemoryStorage, InMemoryStorage

from reconciler.tenant.app import build_app
from reconciler.tenant.provider import build_provider
from reconciler.tenant.settings import TenantSettings

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)

QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("Users", {}),
    ("Users", {"startIndex": 1, "count": 7}),
    ("Users", {"startIndex": 8, "count": 7}),
    ("Users", {"startIndex": 29, "count": 7}),
    ("Users", {"startIndex": 100, "count": 7}),
    ("Users", {"count": 0}),
    ("Users", {"sortBy": "userName"}),
    ("Users", {"sortBy": "userName", "sortOrder": "descending", "startIndex": 3, "count": 5}),
    ("Users", {"sortBy": "name.familyName", "count": 10}),
    ("Users", {"sortBy": f"{ENTERPRISE}:department", "sortOrder": "descending"}),
    ("Users", {"attributes": "userName", "count": 5}),
    ("Users", {"excludedAttributes": "emails,name", "startIndex": 4, "count": 5}),
    ("Users", {"filter": 'userName sw "u1"', "sortBy": "userName"}),
    ("Users", {"filter": "active eq false"}),
    ("Groups", {}),
    ("Groups", {"excludedAttributes": "members"}),
    ("Groups", {"sortBy": "displayName", "sortOrder": "descending", "count": 2}),
]


def _reference() -> ASGIApplication:
    """scim2-server itself: its in-memory storage and service, our tenant's schemas."""
    storage = InMemoryStorage(clock=lambda: NOW)
    counter = itertools.count(1)
    storage.generate_id = lambda *_: f"id{next(counter):04d}"  # type: ignore[method-assign]
    return ASGIApplication(AsyncInMemoryStorage(storage), build_provider(TenantSettings()))


def _ours(db: Path) -> ASGIApplication:
    app = build_app(db)
    counter = itertools.count(1)
    app.persistent.generate_id = lambda *_: f"id{next(counter):04d}"  # type: ignore[method-assign]
    app.persistent.clock = lambda: NOW
    return app


def user(i: int) -> dict[str, Any]:
    return {
        "schemas": [CORE, ENTERPRISE],
        "userName": f"u{(i * 7) % 30:02d}@x.example",
        "name": {"givenName": f"G{i % 4}", "familyName": f"F{i % 5}"},
        "active": i % 6 != 0,
        "emails": [{"value": f"u{i}@x.example", "type": "work", "primary": True}],
        ENTERPRISE: {
            "department": ["Sales", "Support", "Ops"][i % 3],
            # References the server publishes as URLs (ids are deterministic: id0001, …).
            **({"manager": {"value": "id0001", "$ref": "Users/id0001"}} if i % 5 == 1 else {}),
        }
        if i % 4
        else {},
    }


async def _scenario(app: ASGIApplication) -> list[Any]:
    seen: list[Any] = []
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://t.example/v2/") as c:

        async def look() -> None:
            for path, params in QUERIES:
                r = await c.get(path, params=params)
                seen.append((path, params, r.status_code, r.json()))

        ids = [(await c.post("Users", json=user(i))).json()["id"] for i in range(30)]
        for g in range(3):
            members = [{"value": u, "$ref": f"Users/{u}"} for u in ids[g * 5 : g * 5 + 8]]
            body = {"schemas": [GROUP], "displayName": f"group {g}", "members": members}
            assert (await c.post("Groups", json=body)).status_code == 201
        await look()
        # Writes that move a user in every order, change what a listing shows, add and remove.
        op = {"op": "replace", "path": "userName", "value": "aaa@x.example"}
        await c.patch(f"Users/{ids[20]}", json={"schemas": [PATCH], "Operations": [op]})
        op = {"op": "replace", "path": "name.familyName", "value": "A-first"}
        await c.patch(f"Users/{ids[21]}", json={"schemas": [PATCH], "Operations": [op]})
        op = {"op": "replace", "path": "active", "value": False}
        await c.patch(f"Users/{ids[22]}", json={"schemas": [PATCH], "Operations": [op]})
        assert (await c.delete(f"Users/{ids[29]}")).status_code == 204
        await c.post("Users", json=user(31))
        op = {"op": "add", "path": "members", "value": [{"value": ids[28]}]}
        await c.patch(
            f"Groups/{(await c.get('Groups')).json()['Resources'][0]['id']}",
            json={"schemas": [PATCH], "Operations": [op]},
        )
        await look()
    return seen


def test_listings_equal_scim2_servers_before_and_after_writes(tmp_path: Path) -> None:
    ours = asyncio.run(_scenario(_ours(tmp_path / "t.db")))
    reference = asyncio.run(_scenario(_reference()))
    assert len(ours) == 2 * len(QUERIES)
    for mine, theirs in zip(ours, reference, strict=True):
        assert mine == theirs, mine[:2]
    assert any(r[3].get("totalResults", 0) > 20 for r in ours)
    published = json.dumps(ours)
    assert '"$ref": "http://t.example/v2/Users/id0001"' in published  # manager and members
