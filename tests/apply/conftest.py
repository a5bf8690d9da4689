"""Shared pieces for apply tests: a desired state on disk, an in-process tenant, faults."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from reconciler.desired.loader import load
from reconciler.desired.state import DesiredState
from reconciler.live import LiveState
from reconciler.plan.build import PlanContext, build_plan
from reconciler.plan.model import Plan
from reconciler.scim import open_client, read_live
from reconciler.tenant.app import build_app

BASE = "http://tenant.test/v2"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"


def write_state(
    root: Path, users: int, *, extra: str = "", tenant: str = "", groups: int = 2
) -> DesiredState:
    root.mkdir(parents=True, exist_ok=True)
    (root / "tenant.yaml").write_text(f"url: {BASE}\nprofile: generic\n{tenant}")
    lines = ["groups:"] + [
        f"  - displayName: Team {g}\n    externalId: g{g}" for g in range(groups)
    ]
    lines.append(
        "rules:\n  - name: Team 0\n    priority: 1\n    match: {groups_any: [Team 0]}\n"
        "    grants: {products: [GoTo Meeting], role: member}"
    )
    lines.append("users:")
    for i in range(users):
        lines.append(
            f"  - userName: user{i}@x.example\n    externalId: 'e{i}'\n    title: T{i}\n"
            f"    emails: [user{i}@x.example]\n    groups: [Team {i % groups}]"
            + (f"\n    manager: user{i - 1}@x.example" if i else "")
        )
    (root / "state.yaml").write_text("\n".join(lines) + "\n" + extra)
    result = load(root)
    assert result.ok and result.state is not None, result.diagnostics
    return result.state


class FaultTransport(httpx.AsyncBaseTransport):
    """The real tenant in process, with a hook that may stage a fault per request."""

    def __init__(self, db: Path, fault: Callable[[httpx.Request, int], Any] | None = None) -> None:
        self.inner = httpx.ASGITransport(app=build_app(db))  # type: ignore[arg-type]
        self.fault = fault
        self.count = 0
        self.sent: list[tuple[str, str]] = []
        self.bodies: list[bytes] = []

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.sent if m != "GET"]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.count += 1
        self.sent.append((request.method, request.url.path))
        self.bodies.append(request.content)
        if self.fault is not None:
            staged = self.fault(request, self.count)
            if isinstance(staged, httpx.Response):
                return staged
            if staged == "store-then-timeout":
                await self.inner.handle_async_request(request)
                raise httpx.ReadTimeout("timed out after the tenant stored it", request=request)
        return await self.inner.handle_async_request(request)


def read(transport: httpx.AsyncBaseTransport) -> LiveState:
    async def main() -> LiveState:
        async with open_client(BASE, transport=transport, rate_limit=1000) as c:
            return await read_live(c)

    return asyncio.run(main())


def plan_for(state: DesiredState, transport: httpx.AsyncBaseTransport) -> Plan:
    return build_plan(state, read(transport), PlanContext(now=dt.datetime.now(dt.UTC), url=BASE))
